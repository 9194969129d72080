// The watch hub over a real MvccStore on the in-memory backend.
import { expect, test } from "bun:test";
import { Event_EventType } from "../gen/mvccpb/kv_pb.js";
import { MemoryKvBackend } from "../mvcc/memory-backend.js";
import { MvccStore } from "../mvcc/store.js";
import { dec, delReq, enc, putReq } from "../mvcc/test-support.js";
import { getPrefix, toRangeEnd } from "../mvcc/key-range.js";
import { type HubOptions, storeSource, type WatchMessage, WatchHub, type Watcher } from "./hub.js";

function setup(opts: HubOptions = {}) {
  let store = new MvccStore(new MemoryKvBackend());
  const hub = new WatchHub(storeSource(store), opts);
  const attach = (s: MvccStore) => (s.onEvents = (rev, evs) => hub.publish(rev, evs));
  attach(store);
  const put = (k: string, v: string) => {
    store.put(putReq(k, v));
    hub.committed();
  };
  const del = (k: string, end = "") => {
    store.deleteRange(delReq(k, { rangeEnd: enc(end) }));
    hub.committed();
  };
  return {
    hub,
    get store() {
      return store;
    },
    put,
    del,
    replace(s: MvccStore) {
      store = s;
      attach(s);
      hub.storeReplaced(storeSource(s));
    },
  };
}

const tick = () => new Promise((r) => setTimeout(r, 5));

/** Drains everything the watcher has, letting sync passes run, as "type key@rev" strings. */
async function drain(w: Watcher, rounds = 50): Promise<{ evs: string[]; msgs: WatchMessage[] }> {
  const msgs: WatchMessage[] = [];
  for (let i = 0; i < rounds; i++) {
    let m: WatchMessage | undefined;
    while ((m = w.next()) !== undefined) msgs.push(m);
    await tick();
    if (w.queued === 0 && w.state !== "unsynced") break;
  }
  let m: WatchMessage | undefined;
  while ((m = w.next()) !== undefined) msgs.push(m);
  const evs = msgs.flatMap((m) => m.events.map((e) => `${e.type === Event_EventType.PUT ? "PUT" : "DEL"} ${dec(e.kv!.key)}@${e.kv!.modRevision}`));
  return { evs, msgs };
}

const key = (k: string) => ({ key: enc(k), end: null });
const prefix = (k: string) => ({ key: enc(k), end: getPrefix(enc(k)) });

test("single key, prefix, range and from-key watchers get live events", async () => {
  const t = setup();
  const single = t.hub.watch({ ...key("a"), startRevision: 0 });
  const pre = t.hub.watch({ ...prefix("a"), startRevision: 0 });
  const range = t.hub.watch({ key: enc("b"), end: enc("d"), startRevision: 0 });
  const from = t.hub.watch({ key: enc("c"), end: toRangeEnd(new Uint8Array([0])), startRevision: 0 });
  t.put("a", "1");
  t.put("ab", "2");
  t.put("b", "3");
  t.put("d", "4");
  t.del("a");
  expect((await drain(single)).evs).toEqual(["PUT a@2", "DEL a@6"]);
  expect((await drain(pre)).evs).toEqual(["PUT a@2", "PUT ab@3", "DEL a@6"]);
  expect((await drain(range)).evs).toEqual(["PUT b@4"]);
  expect((await drain(from)).evs).toEqual(["PUT d@5"]);
});

test("events are buffered until committed and dropped on rollback", async () => {
  const t = setup();
  const w = t.hub.watch({ ...key("a"), startRevision: 0 });
  t.store.put(putReq("a", "1"));
  expect(w.queued).toBe(0);
  t.hub.rolledBack();
  t.store.put(putReq("a", "2"));
  t.hub.committed();
  expect((await drain(w)).evs).toEqual(["PUT a@3"]);
});

test("a revision's events stay together; live events carry prev_kv from the store", async () => {
  const t = setup();
  t.put("p1", "x");
  t.put("p2", "y");
  const w = t.hub.watch({ ...prefix("p"), startRevision: 0 });
  t.del("p", "q");
  const { msgs } = await drain(w);
  expect(msgs.length).toBe(1);
  expect(msgs[0].events.map((e) => dec(e.prevKv!.value))).toEqual(["x", "y"]);
  expect(msgs[0].revision).toBe(4);
});

test("filters NOPUT / NODELETE; fully filtered revisions send nothing", async () => {
  const t = setup();
  const noPut = t.hub.watch({ ...key("a"), startRevision: 0, noPut: true });
  const noDel = t.hub.watch({ ...key("a"), startRevision: 0, noDelete: true });
  t.put("a", "1");
  t.del("a");
  t.put("a", "2");
  const a = await drain(noPut);
  expect(a.evs).toEqual(["DEL a@3"]);
  expect(a.msgs.length).toBe(1);
  expect((await drain(noDel)).evs).toEqual(["PUT a@2", "PUT a@4"]);
  // Replayed too.
  const old = t.hub.watch({ ...key("a"), startRevision: 1, noPut: true });
  expect((await drain(old)).evs).toEqual(["DEL a@3"]);
});

test("replay from a past revision, then live, without gap or duplicate", async () => {
  const t = setup({ pageRows: 3, maxRevsPerMessage: 2 });
  for (let i = 0; i < 20; i++) t.put(`k${i % 3}`, `v${i}`);
  const w = t.hub.watch({ ...prefix("k"), startRevision: 5 });
  expect(w.state).toBe("unsynced");
  // Writes keep coming while it catches up.
  const seen: string[] = [];
  for (let i = 20; i < 40; i++) {
    t.put(`k${i % 3}`, `v${i}`);
    let m: WatchMessage | undefined;
    while ((m = w.next()) !== undefined) for (const e of m.events) seen.push(`${e.kv!.modRevision}`);
    await tick();
  }
  seen.push(...(await drain(w)).msgs.flatMap((m) => m.events.map((e) => `${e.kv!.modRevision}`)));
  expect(w.state).toBe("synced");
  const want = Array.from({ length: 41 - 5 + 1 }, (_, i) => `${i + 5}`);
  expect(seen).toEqual(want);
});

test("a multi-event revision larger than a page is never split", async () => {
  const t = setup({ pageRows: 2 });
  for (const k of ["m1", "m2", "m3", "m4", "m5"]) t.put(k, "v");
  t.del("m", "n"); // five events at revision 7
  t.put("m9", "x");
  const w = t.hub.watch({ ...prefix("m"), startRevision: 7 });
  const { msgs } = await drain(w);
  const rev7 = msgs.filter((m) => m.events.some((e) => e.kv!.modRevision === 7n));
  expect(rev7.length).toBe(1);
  expect(rev7[0].events.filter((e) => e.type === Event_EventType.DELETE && e.kv!.modRevision === 7n).length).toBe(5);
  expect(msgs.flatMap((m) => m.events).length).toBe(6);
});

test("a watcher with a future start revision waits for it", async () => {
  const t = setup();
  const w = t.hub.watch({ ...key("f"), startRevision: 4 });
  t.put("f", "1"); // rev 2
  t.put("f", "2"); // rev 3
  t.put("f", "3"); // rev 4
  expect((await drain(w)).evs).toEqual(["PUT f@4"]);
});

test("compacted start revision: canceled with the compact revision", async () => {
  const t = setup();
  for (let i = 0; i < 5; i++) t.put("c", `${i}`);
  t.store.compact(4);
  const w = t.hub.watch({ ...key("c"), startRevision: 2 });
  const { msgs } = await drain(w);
  expect(msgs).toEqual([{ events: [], revision: 0, compactRevision: 4 }]);
  expect(w.state).toBe("canceled");
  expect(w.compacted).toBe(true);
  // At the compact revision itself: fine.
  const ok = t.hub.watch({ ...key("c"), startRevision: 4 });
  expect((await drain(ok)).evs).toEqual(["PUT c@4", "PUT c@5", "PUT c@6"]);
});

test("a slow watcher is bounded, demoted, and catches up from history in order", async () => {
  const t = setup({ queueLimit: 4 });
  const slow = t.hub.watch({ ...key("s"), startRevision: 0 });
  const fast = t.hub.watch({ ...key("s"), startRevision: 0 });
  const fastSeen: number[] = [];
  for (let i = 0; i < 100; i++) {
    t.put("s", `${i}`);
    let m: WatchMessage | undefined;
    while ((m = fast.next()) !== undefined) fastSeen.push(...m.events.map((e) => Number(e.kv!.modRevision)));
    expect(slow.queued).toBeLessThanOrEqual(4);
  }
  expect(slow.state).toBe("unsynced");
  expect(fastSeen.length).toBe(100);
  const revs = (await drain(slow)).msgs.flatMap((m) => m.events.map((e) => Number(e.kv!.modRevision)));
  expect(revs).toEqual(Array.from({ length: 100 }, (_, i) => i + 2));
  expect(slow.state).toBe("synced");
});

test("progress requests answer only synced watchers", async () => {
  const t = setup();
  t.put("x", "1");
  const w = t.hub.watch({ ...key("x"), startRevision: 0 });
  w.requestProgress();
  expect(w.next()).toEqual({ events: [], revision: 2, compactRevision: 0 });
  const u = t.hub.watch({ ...key("x"), startRevision: 1 });
  u.requestProgress();
  expect(u.queued).toBe(0);
});

test("cancel stops delivery", async () => {
  const t = setup();
  const w = t.hub.watch({ ...key("a"), startRevision: 0 });
  t.put("a", "1");
  w.cancel();
  t.put("a", "2");
  expect(w.next()).toBeUndefined();
  expect(t.hub.watcherCount).toEqual({ synced: 0, unsynced: 0 });
});

test("storeReplaced: watchers catch up from the new store's history from their next revision", async () => {
  const t = setup();
  t.put("r", "1"); // 2
  const w = t.hub.watch({ ...key("r"), startRevision: 0 });
  const other = t.hub.watch({ ...key("zz"), startRevision: 0 });
  t.put("r", "2"); // 3
  expect((await drain(w)).evs).toEqual(["PUT r@3"]);
  // A newer copy of the same history (as a leader's snapshot would be).
  const s2 = new MvccStore(new MemoryKvBackend());
  s2.put(putReq("r", "1"));
  s2.put(putReq("r", "2"));
  s2.put(putReq("r", "3")); // 4
  s2.put(putReq("zz", "a")); // 5
  t.replace(s2);
  expect(w.state).toBe("unsynced");
  t.put("r", "4"); // 6, live on the new store
  expect((await drain(w)).evs).toEqual(["PUT r@4", "PUT r@6"]);
  expect((await drain(other)).evs).toEqual(["PUT zz@5"]);
});

test("storeReplaced: a watcher whose next revision is compacted in the new store is canceled", async () => {
  const t = setup();
  const w = t.hub.watch({ ...key("r"), startRevision: 0 });
  const s2 = new MvccStore(new MemoryKvBackend());
  for (let i = 0; i < 5; i++) s2.put(putReq("r", `${i}`));
  s2.compact(5);
  t.replace(s2);
  const { msgs } = await drain(w);
  expect(msgs).toEqual([{ events: [], revision: 0, compactRevision: 5 }]);
});

test("storeSource.getAt gives the value before a replayed event", () => {
  const t = setup();
  t.put("g", "1");
  t.put("g", "2");
  const src = storeSource(t.store);
  expect(dec(src.getAt(enc("g"), 2)!.value)).toBe("1");
  expect(src.getAt(enc("g"), 1)).toBeNull();
  expect(src.getAt(enc("nope"), 3)).toBeNull();
});
