// Clients of the simulated cluster, through each member's public request
// surface (member.kv, member.watchHub): key-value operations recorded for the
// linearizability check, leases granted, kept alive for a while and then left
// to expire, and watches whose every message is recorded. Every client waits
// in simulated time and gives up after a simulated timeout (its operation's
// outcome is then unknown, as a real client's is).
import { create } from "@bufbuild/protobuf";
import {
  AuthRoleAddRequestSchema,
  AuthRoleDeleteRequestSchema,
  AuthRoleGrantPermissionRequestSchema,
  AuthRoleRevokePermissionRequestSchema,
  AuthUserAddRequestSchema,
  AuthUserDeleteRequestSchema,
  AuthUserGrantRoleRequestSchema,
  AuthUserRevokeRoleRequestSchema,
} from "../../gen/etcdserverpb/rpc_pb.js";
import {
  Compare_CompareResult,
  Compare_CompareTarget,
  CompareSchema,
  CompactionRequestSchema,
  DeleteRangeRequestSchema,
  LeaseGrantRequestSchema,
  PutRequestSchema,
  RangeRequestSchema,
  RequestOpSchema,
  TxnRequestSchema,
} from "../../gen/etcdserverpb/rpc_pb.js";
import type { Operation } from "../../testing/linearizability/history.js";
import type { KvInput, KvOutput } from "../../testing/linearizability/model.js";
import type { Member } from "../member.js";
import type { SimCluster, Slot } from "./cluster.js";
import { SIMULATION, type SimTime } from "./time.js";
import type { WatchMessage, Watcher } from "../../watch/hub.js";

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);

/** The keys of the checked history, and the range every checked watch covers. */
export const KV_PREFIX = "k/";
export const LEASE_PREFIX = "lease/";
const KEYS = ["a", "b", "c", "d"].map((k) => KV_PREFIX + k);

/** One lease as the workload used it. */
export interface LeaseRecord {
  id: bigint;
  ttlSeconds: number;
  /** Simulated ms: when each keep-alive that was answered with a TTL was sent. */
  renewedAt: number[];
  /** Simulated ms the grant was asked (the lease cannot have started earlier). */
  grantCalledAt: number;
  /** The workload stopped keeping it alive (it must expire by itself). */
  abandonedAt?: number;
  keyPut: boolean;
}

/** One watch as the workload saw it. */
export interface WatchRecord {
  slot: string;
  owner: number;
  startRevision: number;
  messages: WatchMessage[];
  /** The member crashed or the watch was canceled: later revisions are not owed to it. */
  endedAt?: number;
}

export interface WorkloadStats {
  ops: number;
  answered: number;
  failed: number;
  leases: number;
  renewals: number;
  watches: number;
  compactions: number;
  /** User and role changes proposed (answered or not). */
  authChanges: number;
}

export class Workload {
  readonly history: Operation<KvInput, KvOutput>[] = [];
  readonly leases: LeaseRecord[] = [];
  readonly watches: WatchRecord[] = [];
  readonly stats: WorkloadStats = { ops: 0, answered: 0, failed: 0, leases: 0, renewals: 0, watches: 0, compactions: 0, authChanges: 0 };
  private logical = 0;
  private values = 0;
  /** Clients stop issuing operations from this simulated time on. */
  stopAt = Number.POSITIVE_INFINITY;
  private readonly openWatches: Array<{ record: WatchRecord; watcher: Watcher }> = [];
  /** Revisions a compaction was asked at (whether or not it was answered). */
  readonly compactedAt = new Set<number>();

  constructor(
    private readonly time: SimTime,
    private readonly cluster: SimCluster,
    private readonly rand: () => number,
    private readonly opts: { clients: number; thinkMs: number; timeoutMs: number },
  ) {}

  /** Starts the clients; each runs until stopAt. */
  start(): void {
    for (let c = 0; c < this.opts.clients; c++) void this.kvClient(c);
    void this.leaseClient();
  }

  /** Resolves once no operation of this client is in flight and stopAt passed. */
  private async kvClient(client: number): Promise<void> {
    while (this.time.now < this.stopAt) {
      await this.sleep(1 + Math.floor(this.rand() * this.opts.thinkMs));
      const slot = this.pickLive();
      if (slot === undefined || this.time.now >= this.stopAt) continue;
      const r = this.rand();
      if (r < 0.05) this.watch(slot);
      else if (r < 0.07) void this.compact(slot.member!);
      else if (r < 0.09) void this.authChange(slot.member!);
      else await this.kvOp(client, slot.member!);
    }
  }

  private async kvOp(client: number, m: Member): Promise<void> {
    const key = KEYS[Math.floor(this.rand() * KEYS.length)];
    const value = `v${++this.values}`;
    const r = this.rand();
    let input: KvInput;
    let run: () => Promise<KvOutput>;
    if (r < 0.35) {
      input = { op: "get", key };
      run = async () => {
        const res = await m.kv.range(create(RangeRequestSchema, { key: enc(key) }));
        return res.kvs[0] ? dec(res.kvs[0].value) : null;
      };
    } else if (r < 0.4) {
      // A serializable read is not linearizable by design: exercised, not checked.
      void this.settle(Promise.resolve().then(() => m.kv.range(create(RangeRequestSchema, { key: enc(key), serializable: true }))));
      return;
    } else if (r < 0.7) {
      input = { op: "put", key, value };
      run = async () => (await m.kv.put(create(PutRequestSchema, { key: enc(key), value: enc(value) })), null);
    } else if (r < 0.9) {
      const expected = this.rand() < 0.3 ? null : `v${Math.max(1, this.values - Math.floor(this.rand() * 4))}`;
      input = { op: "cas", key, expected, value };
      run = async () => (await m.kv.txn(casRequest(key, expected, value))).succeeded;
    } else {
      input = { op: "del", key };
      run = async () => (await m.kv.deleteRange(create(DeleteRangeRequestSchema, { key: enc(key) })), null);
    }
    const op: Operation<KvInput, KvOutput> = { clientId: client, input, call: ++this.logical };
    this.history.push(op);
    this.stats.ops++;
    const out = await this.settle(Promise.resolve().then(run));
    if (out.ok) {
      op.ret = ++this.logical;
      op.output = out.value;
      this.stats.answered++;
    } else this.stats.failed++;
  }

  /** Final reads through `m` of every checked key, once the cluster is calm. */
  async finalReads(m: Member): Promise<void> {
    for (const key of KEYS) {
      const op: Operation<KvInput, KvOutput> = { clientId: -1, input: { op: "get", key }, call: ++this.logical };
      this.history.push(op);
      const out = await this.settle(
        Promise.resolve().then(async () => {
          const res = await m.kv.range(create(RangeRequestSchema, { key: enc(key) }));
          return res.kvs[0] ? dec(res.kvs[0].value) : null;
        }),
      );
      if (out.ok) {
        op.ret = ++this.logical;
        op.output = out.value;
      }
    }
  }

  // ---- leases ----

  private async leaseClient(): Promise<void> {
    while (this.time.now < this.stopAt) {
      await this.sleep(50 + Math.floor(this.rand() * 300));
      const slot = this.pickLive();
      if (slot === undefined || this.time.now >= this.stopAt) continue;
      void this.useLease(slot.member!);
    }
  }

  /** Grants a lease, attaches a key, keeps it alive a few times (through any member), then abandons it. */
  private async useLease(m: Member): Promise<void> {
    const ttl = 1 + Math.floor(this.rand() * 2);
    const grantCalledAt = this.time.now;
    const granted = await this.settle(m.kv.leaseGrant(create(LeaseGrantRequestSchema, { TTL: BigInt(ttl) })));
    if (!granted.ok) return;
    const rec: LeaseRecord = { id: granted.value.ID, ttlSeconds: Number(granted.value.TTL), renewedAt: [], grantCalledAt, keyPut: false };
    this.leases.push(rec);
    this.stats.leases++;
    const put = await this.settle(m.kv.put(create(PutRequestSchema, { key: enc(`${LEASE_PREFIX}${rec.id}`), value: enc("x"), lease: rec.id })));
    rec.keyPut = put.ok;
    const renewals = Math.floor(this.rand() * 6);
    for (let i = 0; i < renewals && this.time.now < this.stopAt; i++) {
      await this.sleep(100 + Math.floor(this.rand() * rec.ttlSeconds * 500));
      const slot = this.pickLive();
      if (slot === undefined) continue;
      const sentAt = this.time.now;
      const r = await this.settle(slot.member!.kv.leaseRenew(rec.id));
      this.stats.renewals++;
      if (r.ok && typeof r.value === "number" && r.value > 0) rec.renewedAt.push(sentAt);
    }
    rec.abandonedAt = this.time.now;
  }

  // ---- watches ----

  /** A watch of every checked key on `slot`'s member, from the next revision or a recent one. */
  private watch(slot: Slot): void {
    const hub = slot.member!.watchHub;
    const back = Math.floor(this.rand() * 5);
    const startRevision = Math.max(1, hub.currentRev + 1 - back);
    const record: WatchRecord = { slot: slot.name, owner: slot.owner!, startRevision, messages: [] };
    const drain = () => {
      for (let m = watcher.next(); m !== undefined; m = watcher.next()) {
        record.messages.push(m);
        if (m.compactRevision !== 0) record.endedAt = this.time.now;
      }
    };
    // Read on a later event, as a stream would, not inside the publisher's call.
    const watcher = hub.watch({ key: enc(KV_PREFIX), end: enc("k0"), startRevision, onReady: () => void this.time.after(0, slot.owner!, drain) });
    this.watches.push(record);
    this.openWatches.push({ record, watcher });
    this.stats.watches++;
    drain();
  }

  /** Takes what every live watcher has queued, marking those whose member is gone. */
  drainWatches(): void {
    for (const w of this.openWatches) {
      if (w.record.endedAt !== undefined) continue;
      if (!this.time.isAlive(w.record.owner)) {
        w.record.endedAt = this.time.now;
        continue;
      }
      for (let m = w.watcher.next(); m !== undefined; m = w.watcher.next()) {
        w.record.messages.push(m);
        if (m.compactRevision !== 0) w.record.endedAt = this.time.now;
      }
    }
  }

  private async compact(m: Member): Promise<void> {
    const rev = m.state.store.rev - 1 - Math.floor(this.rand() * 20);
    if (rev < 2) return;
    this.stats.compactions++;
    this.compactedAt.add(rev);
    await this.settle(m.kv.compact(create(CompactionRequestSchema, { revision: BigInt(rev) })));
  }

  /**
   * One change to users and roles, through the log like a put: the checks compare every
   * member's auth store. Users have no password (bcrypt would run on real threads, outside
   * simulated time); names come from small sets so adds, grants and deletes meet.
   */
  private async authChange(m: Member): Promise<void> {
    const user = `u${Math.floor(this.rand() * 3)}`;
    const role = `r${Math.floor(this.rand() * 3)}`;
    const key = enc(KEYS[Math.floor(this.rand() * KEYS.length)]!);
    const change: Array<() => Promise<unknown>> = [
      () => m.auth.userAdd(create(AuthUserAddRequestSchema, { name: user, options: { noPassword: true } })),
      () => m.auth.roleAdd(create(AuthRoleAddRequestSchema, { name: role })),
      () => m.auth.userGrantRole(create(AuthUserGrantRoleRequestSchema, { user, role })),
      () => m.auth.roleGrantPermission(create(AuthRoleGrantPermissionRequestSchema, { name: role, perm: { key, permType: Math.floor(this.rand() * 3) } })),
      () => m.auth.roleRevokePermission(create(AuthRoleRevokePermissionRequestSchema, { role, key })),
      () => m.auth.userRevokeRole(create(AuthUserRevokeRoleRequestSchema, { name: user, role })),
      () => m.auth.roleDelete(create(AuthRoleDeleteRequestSchema, { role })),
      () => m.auth.userDelete(create(AuthUserDeleteRequestSchema, { name: user })),
    ];
    this.stats.authChanges++;
    await this.settle(Promise.resolve().then(change[Math.floor(this.rand() * change.length)]!));
  }

  // ---- helpers ----

  pickLive(): Slot | undefined {
    const live = this.cluster.live();
    return live.length === 0 ? undefined : live[Math.floor(this.rand() * live.length)];
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => void this.time.after(ms, SIMULATION, resolve));
  }

  /** The call's outcome, or not ok once the client's simulated timeout passed first. */
  private settle<T>(p: Promise<T>): Promise<{ ok: true; value: T } | { ok: false }> {
    return new Promise((resolve) => {
      let done = false;
      const cancel = this.time.after(this.opts.timeoutMs, SIMULATION, () => {
        if (done) return;
        done = true;
        resolve({ ok: false });
      });
      p.then(
        (value) => {
          if (done) return;
          done = true;
          cancel();
          resolve({ ok: true, value });
        },
        () => {
          if (done) return;
          done = true;
          cancel();
          resolve({ ok: false });
        },
      );
    });
  }
}

/** A compare-and-set as one txn: the put happens iff the key holds `expected` (null: the key is absent). */
function casRequest(key: string, expected: string | null, value: string) {
  const compare =
    expected === null
      ? create(CompareSchema, {
          key: enc(key),
          target: Compare_CompareTarget.VERSION,
          result: Compare_CompareResult.EQUAL,
          targetUnion: { case: "version", value: 0n },
        })
      : create(CompareSchema, {
          key: enc(key),
          target: Compare_CompareTarget.VALUE,
          result: Compare_CompareResult.EQUAL,
          targetUnion: { case: "value", value: enc(expected) },
        });
  const put = create(RequestOpSchema, { request: { case: "requestPut", value: create(PutRequestSchema, { key: enc(key), value: enc(value) }) } });
  return create(TxnRequestSchema, { compare: [compare], success: [put] });
}
