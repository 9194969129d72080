// The Watch service's stream logic, driven directly (no transport): etcd's answers for
// create / cancel / progress requests, ids, ordering, prev_kv, fragments, progress_notify.
import { expect, test } from "bun:test";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { ResponseHeaderSchema, type WatchRequest, type WatchResponse, WatchCreateRequest_FilterType, WatchResponseSchema } from "../gen/etcdserverpb/rpc_pb.js";
import { ENCODED, type EncodedParts, unbatched } from "./context.js";
import { MemoryKvBackend } from "../mvcc/memory-backend.js";
import { MvccStore } from "../mvcc/store.js";
import { dec, enc, putReq } from "../mvcc/test-support.js";
import { TxnRequestSchema } from "../gen/etcdserverpb/rpc_pb.js";
import { storeSource, WatchHub } from "../watch/hub.js";
import { watchService } from "./watch.js";

/** An encoding given as parts, joined. */
function joinParts(parts: EncodedParts): Uint8Array {
  return parts instanceof Uint8Array ? parts : Buffer.concat(parts as Uint8Array[]);
}

function setup(extra: { maxRequestBytes?: number; progressIntervalMs?: number } = {}) {
  const store = new MvccStore(new MemoryKvBackend());
  const hub = new WatchHub(storeSource(store));
  store.onEvents = (rev, evs) => hub.publish(rev, evs);
  const svc = watchService({
    hub,
    header: (rev) => create(ResponseHeaderSchema, { clusterId: 1n, memberId: 2n, revision: BigInt(rev), raftTerm: 3n }),
    ...extra,
  });
  const put = (k: string, v: string) => {
    store.put(putReq(k, v));
    hub.committed();
  };
  // A request stream we push into, and a collector of responses.
  const pending: WatchRequest[] = [];
  let wake: (() => void) | undefined;
  let ended = false;
  const reqs: AsyncIterable<WatchRequest> = {
    async *[Symbol.asyncIterator]() {
      while (true) {
        if (pending.length > 0) yield pending.shift()!;
        else if (ended) return;
        else await new Promise<void>((r) => (wake = r));
      }
    },
  };
  const ac = new AbortController();
  const got: WatchResponse[] = [];
  const out = unbatched(svc.watch(reqs, { signal: ac.signal, requestHeader: { get: () => null } }) as AsyncIterable<WatchResponse>);
  let encodedChecked = 0;
  const done = (async () => {
    for await (const r of out) {
      // A response that carries its own encoding must say exactly what protobuf-es would.
      const parts = (r as { [ENCODED]?: EncodedParts })[ENCODED];
      if (parts !== undefined) {
        // The same message (the watch id may come after the events: any field order is valid).
        const own = fromBinary(WatchResponseSchema, joinParts(parts));
        expect(toBinary(WatchResponseSchema, own)).toEqual(toBinary(WatchResponseSchema, r));
        encodedChecked++;
      }
      got.push(r);
    }
  })();
  const send = (r: WatchRequest["requestUnion"]) => {
    pending.push({ requestUnion: r } as WatchRequest);
    wake?.();
  };
  const createReq = (v: Record<string, unknown>) =>
    send({
      case: "createRequest",
      value: {
        key: new Uint8Array(),
        rangeEnd: new Uint8Array(),
        startRevision: 0n,
        progressNotify: false,
        filters: [],
        prevKv: false,
        watchId: 0n,
        fragment: false,
        ...v,
      } as any,
    });
  return {
    store,
    hub,
    put,
    got,
    get encodedChecked() {
      return encodedChecked;
    },
    send,
    createReq,
    async settle(ms = 20) {
      await Bun.sleep(ms);
    },
    async stop() {
      ended = true;
      wake?.();
      ac.abort();
      await done;
    },
  };
}

test("created first, then events; auto ids from 0; header from header()", async () => {
  const t = setup();
  t.put("a", "0"); // rev 2
  t.createReq({ key: enc("a") });
  t.createReq({ key: enc("a"), startRevision: 1n });
  await t.settle();
  t.put("a", "1");
  await t.settle();
  const g = t.got;
  expect(g[0]).toMatchObject({ watchId: 0n, created: true, canceled: false });
  expect(g[0].header).toMatchObject({ clusterId: 1n, memberId: 2n, revision: 2n, raftTerm: 3n });
  expect(g[1]).toMatchObject({ watchId: 1n, created: true });
  const w1 = g.filter((r) => r.watchId === 1n && r.events.length > 0).flatMap((r) => r.events.map((e) => dec(e.kv!.value)));
  expect(w1).toEqual(["0", "1"]);
  const w0 = g.filter((r) => r.watchId === 0n && r.events.length > 0);
  expect(w0.map((r) => r.header!.revision)).toEqual([3n]);
  await t.stop();
});

test("duplicate id and empty range: created+canceled with id -1 and etcd's reasons", async () => {
  const t = setup();
  t.createReq({ key: enc("a"), watchId: 7n });
  t.createReq({ key: enc("b"), watchId: 7n });
  t.createReq({ key: enc("b"), rangeEnd: enc("a") });
  await t.settle();
  expect(t.got[0]).toMatchObject({ watchId: 7n, created: true, canceled: false });
  expect(t.got[1]).toMatchObject({ watchId: -1n, created: true, canceled: true, cancelReason: "mvcc: duplicate watch ID provided on the WatchStream" });
  expect(t.got[2]).toMatchObject({ watchId: -1n, created: true, canceled: true, cancelReason: "mvcc: watcher range is empty" });
  await t.stop();
});

test("cancel answers canceled=true and stops events; unknown id gets no answer", async () => {
  const t = setup();
  t.createReq({ key: enc("a") });
  await t.settle();
  t.send({ case: "cancelRequest", value: { watchId: 0n } as any });
  t.send({ case: "cancelRequest", value: { watchId: 42n } as any });
  await t.settle();
  t.put("a", "1");
  await t.settle();
  expect(t.got.length).toBe(2);
  expect(t.got[1]).toMatchObject({ watchId: 0n, canceled: true, created: false });
  await t.stop();
});

test("progress request: watch id -1 with the current revision", async () => {
  const t = setup();
  t.put("a", "1");
  t.send({ case: "progressRequest", value: {} as any });
  await t.settle();
  expect(t.got[0]).toMatchObject({ watchId: -1n, created: false, canceled: false, events: [] });
  expect(t.got[0].header!.revision).toBe(2n);
  await t.stop();
});

test("prev_kv for live and replayed events, filters, compaction cancel", async () => {
  const t = setup();
  t.put("k", "1"); // 2
  t.put("k", "2"); // 3
  t.createReq({ key: enc("k"), startRevision: 2n, prevKv: true });
  t.createReq({ key: enc("k"), filters: [WatchCreateRequest_FilterType.NOPUT] });
  await t.settle();
  t.put("k", "3"); // 4
  await t.settle();
  const evs = t.got.filter((r) => r.watchId === 0n).flatMap((r) => r.events);
  expect(evs.map((e) => [dec(e.kv!.value), e.prevKv ? dec(e.prevKv.value) : null])).toEqual([
    ["1", null],
    ["2", "1"],
    ["3", "2"],
  ]);
  expect(t.got.filter((r) => r.watchId === 1n && r.events.length > 0)).toEqual([]);
  t.store.compact(3);
  t.createReq({ key: enc("k"), startRevision: 2n });
  await t.settle();
  const last = t.got[t.got.length - 1];
  expect(last).toMatchObject({ watchId: 2n, canceled: true, compactRevision: 3n, events: [] });
  await t.stop();
});

test("fragment splits a large revision; without it one response", async () => {
  const t = setup({ maxRequestBytes: 300 });
  for (let i = 0; i < 10; i++) t.put(`f${i}`, "x".repeat(100));
  t.createReq({ key: enc("f"), rangeEnd: enc("g"), startRevision: 1n, fragment: true });
  await t.settle();
  const frags = t.got.filter((r) => r.watchId === 0n && r.events.length > 0);
  expect(frags.length).toBeGreaterThan(1);
  expect(frags.slice(0, -1).every((r) => r.fragment)).toBe(true);
  expect(frags[frags.length - 1].fragment).toBe(false);
  expect(frags.flatMap((r) => r.events).length).toBe(10);
  await t.stop();
});

test("progress_notify sends a progress response per interval when idle", async () => {
  const t = setup({ progressIntervalMs: 50 });
  t.createReq({ key: enc("p"), progressNotify: true });
  await t.settle(180);
  const prog = t.got.filter((r) => r.watchId === 0n && !r.created && r.events.length === 0);
  expect(prog.length).toBeGreaterThanOrEqual(2);
  expect(prog[0].header!.revision).toBe(1n);
  await t.stop();
});

test("a client that does not read its answers cannot queue them without bound: requests stop being read", async () => {
  // etcd: the control answers wait in a channel of 16; when it is full the stream stops
  // receiving, so gRPC flow control holds the client back. Here: 10,000 progress requests,
  // one answer read.
  const store = new MvccStore(new MemoryKvBackend());
  const hub = new WatchHub(storeSource(store));
  const svc = watchService({ hub, header: (rev) => create(ResponseHeaderSchema, { revision: BigInt(rev) }) });
  let pulled = 0;
  const reqs: AsyncIterable<WatchRequest> = {
    async *[Symbol.asyncIterator]() {
      for (let i = 0; i < 10_000; i++) {
        pulled++;
        yield { requestUnion: { case: "progressRequest", value: {} } } as WatchRequest;
      }
    },
  };
  const ac = new AbortController();
  const out = unbatched(svc.watch(reqs, { signal: ac.signal, requestHeader: { get: () => null } }) as AsyncIterable<WatchResponse>)[Symbol.asyncIterator]();
  const first = await out.next();
  expect(first.value!.watchId).toBe(-1n);
  await Bun.sleep(50);
  expect(pulled).toBeLessThanOrEqual(32);
  // Reading on lets the requests flow again: every one is answered, in order.
  let answered = 1;
  while (answered < 10_000) {
    const r = await out.next();
    expect(r.value!.watchId).toBe(-1n);
    answered++;
  }
  expect(pulled).toBe(10_000);
  ac.abort();
  await out.return?.(undefined);
});

test("responses assembled from encoded parts are byte for byte protobuf-es's (ids, sizes, prev_kv, many events)", async () => {
  const t = setup();
  t.put("e", "0"); // rev 2
  // Watch ids 0..299: one-byte and two-byte varints; half with prev_kv.
  for (let i = 0; i < 300; i++) t.createReq({ key: enc("e"), watchId: i === 0 ? 0n : BigInt(i), prevKv: i % 2 === 0 });
  // Replayed (prev_kv looked up) and live events; values from empty to 20 KiB (multi-byte lengths).
  t.createReq({ key: enc("e"), watchId: 100_000n, startRevision: 1n, prevKv: true });
  t.createReq({ key: enc("e"), watchId: 2n ** 40n, startRevision: 2n });
  await t.settle();
  for (const v of ["", "x", "y".repeat(200), "z".repeat(20_000)]) {
    t.put("e", v);
    await t.settle(5);
  }
  // Several events in one revision.
  t.store.txn(create(TxnRequestSchema, { success: [0, 1, 2].map((i) => ({ request: { case: "requestPut" as const, value: putReq(`e${i}`, "t") } })) }));
  t.hub.committed();
  t.createReq({ key: enc("e"), rangeEnd: enc("f"), watchId: 7777n, startRevision: 1n });
  await t.settle(50);
  const withEvents = t.got.filter((r) => r.events.length > 0);
  expect(withEvents.length).toBeGreaterThan(300); // at least one per watcher (gathering joins revisions)
  expect(t.encodedChecked).toBe(withEvents.length);
  await t.stop();
});

test("a watcher that fell behind gets its queued revisions joined into one response, whole revisions only", async () => {
  const t = setup();
  t.createReq({ key: enc("m"), rangeEnd: enc("n") });
  t.createReq({ key: enc("m"), rangeEnd: enc("n") });
  await t.settle();
  // Three revisions committed before the stream runs again (one of two events).
  t.put("m1", "a");
  t.put("m2", "b");
  t.store.txn(
    create(TxnRequestSchema, {
      success: [{ request: { case: "requestPut", value: putReq("m3", "c") } }, { request: { case: "requestPut", value: putReq("m4", "d") } }],
    } as any),
  );
  t.hub.committed();
  await t.settle();
  const events = t.got.filter((r) => r.events.length > 0);
  // One response per watcher, with all four events of the three revisions, in order.
  expect(events.map((r) => [r.watchId, r.events.map((e) => dec(e.kv!.key)), r.header!.revision])).toEqual([
    [0n, ["m1", "m2", "m3", "m4"], 4n],
    [1n, ["m1", "m2", "m3", "m4"], 4n],
  ]);
  expect(t.encodedChecked).toBe(2);
  await t.stop();
});

test("a heavy fan-out gathers the next revisions before answering again (fewer, fuller responses), losing nothing", async () => {
  const t = setup();
  const WATCHERS = 100;
  const PUTS = 20;
  for (let i = 0; i < WATCHERS; i++) t.createReq({ key: enc("g") });
  await t.settle();
  for (let i = 0; i < PUTS; i++) {
    t.put("g", `v${i}`);
    await Bun.sleep(1); // one revision per turn: without gathering, one response each
  }
  await t.settle(100);
  const withEvents = t.got.filter((r) => r.events.length > 0);
  const perWatcher = new Map<bigint, string[]>();
  for (const r of withEvents) perWatcher.set(r.watchId, [...(perWatcher.get(r.watchId) ?? []), ...r.events.map((e) => dec(e.kv!.value))]);
  expect(perWatcher.size).toBe(WATCHERS);
  for (const vs of perWatcher.values()) expect(vs).toEqual(Array.from({ length: PUTS }, (_, i) => `v${i}`));
  expect(withEvents.length).toBeLessThan((WATCHERS * PUTS * 3) / 4);
  await t.stop();
});
