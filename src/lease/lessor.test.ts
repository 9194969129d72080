// The lessor on a fake clock: apply operations (with the MVCC store attaching and detaching
// keys), the leader's expiry, renewals and checkpoints, and a seeded model test that replays
// exactly from its seed.
import { describe, expect, test } from "bun:test";
import { create } from "@bufbuild/protobuf";
import { DeleteRangeRequestSchema, PutRequestSchema, TxnRequestSchema, RequestOpSchema } from "../gen/etcdserverpb/rpc_pb.js";
import { Errors } from "../errors.js";
import { MemoryKvBackend } from "../mvcc/memory-backend.js";
import { MvccStore } from "../mvcc/store.js";
import { IndexedHeap } from "./indexed-heap.js";
import { Lessor, MAX_LEASE_TTL } from "./lessor.js";
import { bytesToKeyString as keyString } from "../mvcc/key-range.js";
import { MemoryLeaseBackend } from "./sqlite-lease-backend.js";

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);

function setup(opts: { minTtl?: number; checkpointIntervalMs?: number } = {}) {
  const clock = { t: 1_000_000 };
  const backend = new MemoryLeaseBackend();
  const lessor = new Lessor(backend, { minTtl: opts.minTtl ?? 2, checkpointIntervalMs: opts.checkpointIntervalMs ?? 0, now: () => clock.t });
  const kv = new MemoryKvBackend();
  const store = new MvccStore(kv, { leases: lessor });
  const put = (key: string, lease = 0n) => store.put(create(PutRequestSchema, { key: enc(key), value: enc("v"), lease }));
  const keysOf = (id: bigint) => [...(lessor.lookup(id)?.keys.values() ?? [])].map(dec).sort();
  const revoke = (id: bigint) => lessor.revoke(id, (keys) => (keys.length > 0 ? store.deleteKeys(keys) : 0));
  return { clock, backend, lessor, store, kv, put, keysOf, revoke };
}

describe("apply operations", () => {
  test("grant: minimum TTL, etcd's errors, persisted", () => {
    const { lessor, backend } = setup({ minTtl: 2 });
    expect(lessor.grant(1n, 1).ttl).toBe(2);
    expect(lessor.grant(2n, -5).ttl).toBe(2);
    expect(lessor.grant(3n, 60).ttl).toBe(60);
    expect(() => lessor.grant(3n, 60)).toThrow(Errors.leaseExists());
    expect(() => lessor.grant(4n, MAX_LEASE_TTL + 1)).toThrow(Errors.leaseTtlTooLarge());
    expect(() => lessor.grant(0n, 10)).toThrow(Errors.leaseNotFound());
    expect(lessor.grant(5n, MAX_LEASE_TTL).ttl).toBe(MAX_LEASE_TTL);
    expect([...backend.rows.keys()]).toEqual([1n, 2n, 3n, 5n]);
    expect(lessor.ids()).toEqual([1n, 2n, 3n, 5n]);
  });

  test("the store attaches and detaches keys on put, re-put, ignore_lease, delete and txn", () => {
    const { lessor, store, put, keysOf } = setup();
    lessor.grant(1n, 10);
    lessor.grant(2n, 10);
    put("a", 1n);
    put("b", 1n);
    put("c", 2n);
    expect(keysOf(1n)).toEqual(["a", "b"]);
    put("b", 2n); // moves to lease 2
    expect(keysOf(1n)).toEqual(["a"]);
    expect(keysOf(2n)).toEqual(["b", "c"]);
    store.put(create(PutRequestSchema, { key: enc("b"), value: enc("w"), ignoreLease: true }));
    expect(keysOf(2n)).toEqual(["b", "c"]);
    put("c"); // no lease now
    expect(keysOf(2n)).toEqual(["b"]);
    store.deleteRange(create(DeleteRangeRequestSchema, { key: enc("a") }));
    expect(keysOf(1n)).toEqual([]);
    store.txn(
      create(TxnRequestSchema, {
        success: [
          create(RequestOpSchema, { request: { case: "requestPut", value: create(PutRequestSchema, { key: enc("t"), value: enc("1"), lease: 1n }) } }),
          create(RequestOpSchema, { request: { case: "requestDeleteRange", value: create(DeleteRangeRequestSchema, { key: enc("b") }) } }),
        ],
      }),
    );
    expect(keysOf(1n)).toEqual(["t"]);
    expect(keysOf(2n)).toEqual([]);
    expect(() => put("x", 9n)).toThrow(Errors.leaseNotFound());
  });

  test("revoke deletes the lease's keys in byte order at one revision, then the lease", () => {
    const { lessor, store, put, revoke, backend } = setup();
    lessor.grant(7n, 10);
    const events: string[] = [];
    store.onEvents = (rev, evs) => events.push(`${rev}:${evs.map((e) => dec(e.kv!.key)).join(",")}`);
    for (const k of ["z", "a", "\u00ff", "m"]) put(k, 7n);
    events.length = 0;
    const before = store.rev;
    revoke(7n);
    expect(store.rev).toBe(before + 1);
    expect(events).toEqual([`${before + 1}:a,m,z,\u00ff`]);
    expect(lessor.exists(7n)).toBe(false);
    expect(backend.rows.has(7n)).toBe(false);
    expect(() => revoke(7n)).toThrow(Errors.leaseNotFound());
    // A lease without keys: no revision.
    lessor.grant(8n, 10);
    revoke(8n);
    expect(store.rev).toBe(before + 1);
  });

  test("reload rebuilds leases and attachments from storage", () => {
    const { lessor, backend, put } = setup();
    lessor.grant(1n, 10);
    lessor.checkpoint(1n, 4);
    put("k1", 1n);
    backend.keys = [
      { key: enc("k1"), lease: 1n },
      { key: enc("gone"), lease: 99n },
    ];
    lessor.reload();
    expect(lessor.lookup(1n)?.remainingTtl).toBe(4);
    expect([...lessor.lookup(1n)!.keys.keys()]).toEqual([keyString(enc("k1"))]);
    expect(lessor.exists(99n)).toBe(false);
  });
});

describe("leader operations", () => {
  test("nothing expires before promote; after it, TTL + extend from promotion", () => {
    const { clock, lessor } = setup();
    lessor.grant(1n, 10);
    clock.t += 60_000;
    expect(lessor.expired(10)).toEqual([]);
    expect(lessor.renew(1n)).toBe("notPrimary");
    lessor.promote(1000);
    clock.t += 10_999;
    expect(lessor.expired(10)).toEqual([]);
    clock.t += 1;
    expect(lessor.expired(10)).toEqual([1n]);
    // Put back for a retry 3 s later, not reported again meanwhile.
    expect(lessor.expired(10)).toEqual([]);
    clock.t += 3000;
    expect(lessor.expired(10)).toEqual([1n]);
  });

  test("a lease granted on the leader expires after its TTL; renew pushes it back; an expired one is not renewed", () => {
    const { clock, lessor } = setup();
    lessor.promote(0);
    lessor.grant(1n, 5);
    clock.t += 4000;
    expect(lessor.renew(1n)).toEqual({ ttl: 5 });
    clock.t += 4999;
    expect(lessor.expired(10)).toEqual([]);
    expect(lessor.remainingMs(1n)).toBe(1);
    clock.t += 1;
    expect(lessor.renew(1n)).toBe("expired");
    expect(lessor.expired(10)).toEqual([1n]);
    expect(lessor.renew(2n)).toBe("notFound");
    lessor.demote();
    expect(lessor.remainingMs(1n)).toBe(Infinity);
    expect(lessor.expired(10)).toEqual([]);
  });

  test("a lease reported expired stays expired while its revoke goes through the log (review B1)", () => {
    const { clock, lessor } = setup();
    lessor.promote(0);
    lessor.grant(1n, 5);
    clock.t += 5000;
    expect(lessor.expired(10)).toEqual([1n]); // the driver proposes the revoke now
    clock.t += 10;
    expect(lessor.renew(1n)).toBe("expired");
    expect(lessor.remainingMs(1n)!).toBeLessThanOrEqual(0);
    expect(lessor.dueCheckpoints(10)).toEqual([]);
  });

  test("a lease renewed after being scheduled is not reported until its new expiry", () => {
    const { clock, lessor } = setup();
    lessor.promote(0);
    lessor.grant(1n, 5);
    clock.t += 4000;
    lessor.renew(1n);
    clock.t += 4000;
    expect(lessor.expired(10)).toEqual([]);
    clock.t += 1000;
    expect(lessor.expired(10)).toEqual([1n]);
  });

  test("an attached key is a copy, not a view pinning the message it was decoded from (review B3)", () => {
    const { lessor, put } = setup();
    lessor.grant(1n, 60);
    const message = new Uint8Array(1024 * 1024);
    message.set(enc("pinned"), 100);
    lessor.attach(1n, message.subarray(100, 106));
    const key = [...lessor.lookup(1n)!.keys.values()][0];
    expect(key.buffer.byteLength).toBeLessThan(1024);
    expect(dec(key)).toBe("pinned");
    put("x", 1n);
  });

  test("expired() honours its limit and reports the earliest first", () => {
    const { clock, lessor } = setup();
    lessor.promote(0);
    for (let i = 1; i <= 5; i++) lessor.grant(BigInt(i), 10 + i);
    clock.t += 60_000;
    expect(lessor.expired(2)).toEqual([1n, 2n]);
    expect(lessor.expired(10)).toEqual([3n, 4n, 5n]);
  });

  test("checkpoints: only leases outliving the interval; a new leader counts from the checkpoint", () => {
    const { clock, lessor } = setup({ checkpointIntervalMs: 10_000 });
    lessor.promote(0);
    lessor.grant(1n, 60);
    lessor.grant(2n, 5); // shorter than the interval: never checkpointed
    clock.t += 9_999;
    expect(lessor.dueCheckpoints(100)).toEqual([]);
    clock.t += 1;
    expect(lessor.dueCheckpoints(100)).toEqual([[1n, 50]]);
    expect(lessor.dueCheckpoints(100)).toEqual([]); // rescheduled only when applied
    lessor.checkpoint(1n, 50);
    expect(lessor.needsReset(1n)).toBe(true);
    // The leader changes: the new one counts 50 s (plus its extension), not 60.
    lessor.demote();
    lessor.promote(1000);
    expect(lessor.remainingMs(1n)).toBe(51_000);
    // A renewal first resets the checkpoint (the caller proposes remaining 0), then renews.
    lessor.checkpoint(1n, 0);
    expect(lessor.needsReset(1n)).toBe(false);
    expect(lessor.renew(1n)).toEqual({ ttl: 60 });
    expect(lessor.remainingMs(1n)).toBe(60_000);
  });

  test("renewing with a checkpoint on record is a bug the lessor refuses", () => {
    const { lessor } = setup({ checkpointIntervalMs: 1000 });
    lessor.promote(0);
    lessor.grant(1n, 60);
    lessor.checkpoint(1n, 30);
    expect(() => lessor.renew(1n)).toThrow(/invariant/);
  });

  test("promote spreads a pile-up: at most 3/4 of the revoke rate expire in any second", () => {
    const { clock, lessor } = setup();
    for (let i = 1; i <= 3000; i++) lessor.grant(BigInt(i), 10);
    const t0 = clock.t;
    lessor.promote(0, 1000);
    const perSecond = new Map<number, number>();
    const seen = new Set<bigint>();
    for (let s = 0; s < 20; s++) {
      clock.t = t0 + (s + 1) * 1000;
      // First reports only (an unrevoked lease is reported again 3 s later).
      const fresh = lessor.expired(100_000).filter((id) => !seen.has(id));
      for (const id of fresh) seen.add(id);
      perSecond.set(s, fresh.length);
    }
    const total = [...perSecond.values()].reduce((a, b) => a + b, 0);
    expect(total).toBe(3000);
    for (const n of perSecond.values()) expect(n).toBeLessThanOrEqual(750 + 1);
  });
});

describe("IndexedHeap", () => {
  test("matches a reference under random sets and deletes (seeded)", () => {
    let seed = 12345;
    const rand = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
    const heap = new IndexedHeap();
    const ref = new Map<bigint, number>();
    for (let i = 0; i < 20_000; i++) {
      const id = BigInt(Math.floor(rand() * 200));
      const op = rand();
      if (op < 0.6) {
        const t = Math.floor(rand() * 1000);
        heap.set(id, t);
        ref.set(id, t);
      } else if (op < 0.8) {
        heap.delete(id);
        ref.delete(id);
      } else {
        const top = heap.peek();
        let best: [bigint, number] | undefined;
        for (const [k, t] of ref) if (best === undefined || t < best[1] || (t === best[1] && k < best[0])) best = [k, t];
        expect(top === undefined ? undefined : [top.id, top.time]).toEqual(best);
      }
      expect(heap.size).toBe(ref.size);
    }
  });
});

describe("model test (seeded: a failing seed replays exactly)", () => {
  for (const seed of [1, 2, 3, 4, 5, 6, 7, 8]) {
    test(`seed ${seed}`, () => {
      let s = seed;
      const rand = () => (s = (s * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
      const pick = <T>(xs: T[]) => xs[Math.floor(rand() * xs.length)];
      const { clock, lessor, store, kv, put, revoke, backend } = setup({ checkpointIntervalMs: 5000 });
      // The model: lease → ttl, key → lease, and the leader's expiry per lease.
      const leases = new Map<bigint, number>();
      const keyLease = new Map<string, bigint>();
      const keys = ["a", "b", "c", "d", "e", "f"];
      let primary = false;
      for (let step = 0; step < 3000; step++) {
        const r = rand();
        if (r < 0.15) {
          const id = BigInt(1 + Math.floor(rand() * 8));
          const ttl = 1 + Math.floor(rand() * 20);
          if (leases.has(id)) expect(() => lessor.grant(id, ttl)).toThrow(Errors.leaseExists());
          else {
            lessor.grant(id, ttl);
            leases.set(id, Math.max(ttl, 2));
          }
        } else if (r < 0.4) {
          const k = pick(keys);
          const id = rand() < 0.3 ? 0n : BigInt(1 + Math.floor(rand() * 8));
          if (id !== 0n && !leases.has(id)) expect(() => put(k, id)).toThrow(Errors.leaseNotFound());
          else {
            put(k, id);
            if (id === 0n) keyLease.delete(k);
            else keyLease.set(k, id);
          }
        } else if (r < 0.5) {
          const k = pick(keys);
          store.deleteRange(create(DeleteRangeRequestSchema, { key: enc(k) }));
          keyLease.delete(k);
        } else if (r < 0.6) {
          const id = BigInt(1 + Math.floor(rand() * 8));
          if (!leases.has(id)) expect(() => revoke(id)).toThrow(Errors.leaseNotFound());
          else {
            revoke(id);
            leases.delete(id);
            for (const [k, l] of [...keyLease]) if (l === id) keyLease.delete(k);
          }
        } else if (r < 0.7) {
          clock.t += Math.floor(rand() * 3000);
          // The leader revokes what expired, as the driver would through the log.
          for (const id of lessor.expired(100)) {
            revoke(id);
            leases.delete(id);
            for (const [k, l] of [...keyLease]) if (l === id) keyLease.delete(k);
          }
          for (const [id, rem] of lessor.dueCheckpoints(100)) lessor.checkpoint(id, rem);
        } else if (r < 0.8) {
          const id = BigInt(1 + Math.floor(rand() * 8));
          if (lessor.needsReset(id)) lessor.checkpoint(id, 0);
          const got = lessor.renew(id);
          if (!primary) expect(got).toBe("notPrimary");
          else if (!leases.has(id)) expect(got).toBe("notFound");
          else if (got !== "expired") expect(got).toEqual({ ttl: leases.get(id)! });
        } else if (r < 0.85) {
          if (primary) lessor.demote();
          else lessor.promote(Math.floor(rand() * 2000));
          primary = !primary;
        } else if (r < 0.88) {
          lessor.reload();
          primary = false;
        } else {
          // The store and the lessor agree with the model, and with each other's storage.
          expect(lessor.ids()).toEqual([...leases.keys()].sort((a, b) => (a < b ? -1 : 1)));
          expect([...backend.rows.keys()].sort((a, b) => (a < b ? -1 : 1))).toEqual(lessor.ids());
          for (const [id] of leases) {
            const want = [...keyLease]
              .filter(([, l]) => l === id)
              .map(([k]) => k)
              .sort();
            expect([...lessor.lookup(id)!.keys.values()].map(dec).sort()).toEqual(want);
          }
          for (const k of keys) {
            const got = kv.getLatest(enc(k), false);
            expect(got === null ? undefined : got.lease === 0n ? undefined : got.lease).toBe(keyLease.get(k));
          }
        }
        // What reload() reads: the live keys with a lease.
        backend.keys = [...keyLease].map(([k, lease]) => ({ key: enc(k), lease }));
      }
    });
  }
});
