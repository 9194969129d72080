// MvccStore against both backends: every Range option, Put / DeleteRange
// flags, Txn compares and nesting, compaction, errors, events, restart.
// (Randomized comparison against a reference model: store-random.test.ts.)

import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { toBinary } from "@bufbuild/protobuf";
import { RangeRequest_SortOrder as Order, RangeRequest_SortTarget as Target } from "../gen/etcdserverpb/rpc_pb";
import { Event_EventType, type KeyValue, KeyValueSchema } from "../gen/mvccpb/kv_pb";
import { EtcdError, Errors } from "../errors";
import { bytesToKeyString, compareBytes, getPrefix, inRange, toRangeEnd } from "./key-range";
import { backends, cmp, dec, delReq, enc, type Env, opDel, opPut, opRange, opTxn, putReq, rangeReq, txnReq } from "./test-support";
import { validateDeleteRange, validatePut, validateRange, validateTxn } from "./validate";

const keys = (kvs: KeyValue[]) => kvs.map((kv) => dec(kv.key));
const vals = (kvs: KeyValue[]) => kvs.map((kv) => dec(kv.value));
const kvSummary = (kv: KeyValue | undefined) =>
  kv && {
    key: dec(kv.key),
    value: dec(kv.value),
    create: Number(kv.createRevision),
    mod: Number(kv.modRevision),
    version: Number(kv.version),
    lease: kv.lease,
  };

/** The error `f` throws, or a failure if it throws none / another kind. */
function thrown(f: () => unknown): EtcdError {
  try {
    f();
  } catch (e) {
    if (e instanceof EtcdError) return e;
    throw e;
  }
  throw new Error("expected an EtcdError");
}

function expectError(f: () => unknown, expected: EtcdError) {
  const e = thrown(f);
  expect(e.message).toBe(expected.message);
  expect(e.code).toBe(expected.code);
}

describe.each(backends)("MvccStore on %s", (_name, makeEnv) => {
  let env: Env;
  const leases = new Set([7n, 9n, -5n, 0x7fffffffffffffffn]);
  beforeEach(() => {
    env = makeEnv({ leaseExists: (id) => leases.has(id) });
  });
  afterEach(() => env.close());

  const s = () => env.store;
  const put = (k: string, v: string, o = {}) => env.apply(() => s().put(putReq(k, v, o)));
  const get = (k: string | Uint8Array, o = {}) => env.apply(() => s().range(rangeReq(k, o)));
  const del = (k: string | Uint8Array, o = {}) => env.apply(() => s().deleteRange(delReq(k, o)));
  const txn = (...a: Parameters<typeof txnReq>) => env.apply(() => s().txn(txnReq(...a)));
  const compact = (rev: number) => env.apply(() => s().compact(rev));
  /** Everything observable: current rev, compact rev, all live keys, every stored revision. */
  const snapshot = () =>
    env.apply(() => ({
      rev: s().rev,
      compactRev: s().compactRev,
      all: s()
        .range(rangeReq("\0", { rangeEnd: enc("\0") }))
        .kvs.map(kvSummary),
      history: env.backend.readHistory(0, 0).map(kvSummary),
    }));

  test("a fresh store is at revision 1 and empty", () => {
    expect(s().rev).toBe(1);
    expect(s().compactRev).toBe(-1);
    const r = get("a");
    expect(r.header?.revision).toBe(1n);
    expect(r.kvs).toEqual([]);
    expect(r.count).toBe(0n);
    expect(r.more).toBe(false);
  });

  describe("put", () => {
    test("each put takes the next revision; version counts puts; create revision stays", () => {
      expect(put("a", "1").header?.revision).toBe(2n);
      expect(put("b", "1").header?.revision).toBe(3n);
      expect(put("a", "2").header?.revision).toBe(4n);
      expect(kvSummary(get("a").kvs[0])).toEqual({ key: "a", value: "2", create: 2, mod: 4, version: 2, lease: 0n });
      expect(s().rev).toBe(4);
    });

    test("prev_kv returns the previous value, nothing for a new key", () => {
      expect(put("a", "1", { prevKv: true }).prevKv).toBeUndefined();
      const r = put("a", "2", { prevKv: true });
      expect(kvSummary(r.prevKv)).toEqual({ key: "a", value: "1", create: 2, mod: 2, version: 1, lease: 0n });
      expect(put("a", "3").prevKv).toBeUndefined();
    });

    test("delete resets version and create revision", () => {
      put("a", "1");
      put("a", "2");
      del("a");
      put("a", "3");
      expect(kvSummary(get("a").kvs[0])).toEqual({ key: "a", value: "3", create: 5, mod: 5, version: 1, lease: 0n });
    });

    test("leases: known leases attach, unknown ones fail with lease not found, all 64 bits kept", () => {
      put("a", "1", { lease: 7n });
      expect(get("a").kvs[0].lease).toBe(7n);
      put("big", "1", { lease: 0x7fffffffffffffffn });
      expect(get("big").kvs[0].lease).toBe(0x7fffffffffffffffn);
      put("neg", "1", { lease: -5n });
      expect(get("neg").kvs[0].lease).toBe(-5n);
      const before = snapshot();
      expectError(() => put("a", "2", { lease: 8n }), Errors.leaseNotFound());
      expect(snapshot()).toEqual(before);
    });

    test("ignore_value keeps the value, ignore_lease keeps the lease, both bump the revision", () => {
      put("a", "1", { lease: 7n });
      // ignore_value alone takes the request's lease (here: none)
      const r = put("a", "", { ignoreValue: true, prevKv: true });
      expect(r.header?.revision).toBe(3n);
      expect(dec(r.prevKv!.value)).toBe("1");
      expect(kvSummary(get("a").kvs[0])).toEqual({ key: "a", value: "1", create: 2, mod: 3, version: 2, lease: 0n });
      put("a", "", { ignoreValue: true, lease: 9n });
      put("a", "2", { ignoreLease: true });
      expect(kvSummary(get("a").kvs[0])).toEqual({ key: "a", value: "2", create: 2, mod: 5, version: 4, lease: 9n });
      put("a", "", { ignoreValue: true, ignoreLease: true });
      expect(kvSummary(get("a").kvs[0])).toEqual({ key: "a", value: "2", create: 2, mod: 6, version: 5, lease: 9n });
      put("a", "3");
      expect(get("a").kvs[0].lease).toBe(0n);
    });

    test("ignore_value / ignore_lease on an absent key: key not found, nothing written", () => {
      put("b", "1");
      const before = snapshot();
      expectError(() => put("a", "", { ignoreValue: true }), Errors.keyNotFound());
      expectError(() => put("a", "x", { ignoreLease: true }), Errors.keyNotFound());
      expect(snapshot()).toEqual(before);
    });

    test("outside a txn the lease is checked before the key", () => {
      expectError(() => put("a", "", { ignoreValue: true, lease: 8n }), Errors.leaseNotFound());
    });

    test("by default every non-zero lease is unknown", () => {
      const plain = makeEnv();
      try {
        expectError(() => plain.apply(() => plain.store.put(putReq("a", "1", { lease: 1n }))), Errors.leaseNotFound());
        expect(plain.apply(() => plain.store.put(putReq("a", "1"))).header?.revision).toBe(2n);
      } finally {
        plain.close();
      }
    });

    test("binary keys and values, empty value", () => {
      const k = new Uint8Array([0, 255, 1]);
      env.apply(() => s().put({ ...putReq("x", ""), key: k, value: new Uint8Array([0, 0]) }));
      put("e", "");
      const r = get(k);
      expect(Array.from(r.kvs[0].key)).toEqual([0, 255, 1]);
      expect(Array.from(r.kvs[0].value)).toEqual([0, 0]);
      expect(get("e").kvs[0].value.length).toBe(0);
      expect(get("e").count).toBe(1n);
    });
  });

  describe("range", () => {
    // a..e at revisions 2..6, then c updated at 7 and b deleted at 8.
    beforeEach(() => {
      for (const [i, k] of ["a", "b", "c", "d", "e"].entries()) put(k, `v${5 - i}`);
      put("c", "v9");
      del("b");
    });
    const all = { rangeEnd: enc("\0") };

    test("single key, [key, end), from key, everything, prefix", () => {
      expect(keys(get("c").kvs)).toEqual(["c"]);
      expect(keys(get("cc").kvs)).toEqual([]);
      expect(keys(get("a", { rangeEnd: enc("d") }).kvs)).toEqual(["a", "c"]);
      expect(keys(get("c", all).kvs)).toEqual(["c", "d", "e"]);
      expect(keys(get("\0", all).kvs)).toEqual(["a", "c", "d", "e"]);
      put("ab", "x");
      put("abc", "x");
      expect(keys(get("ab", { rangeEnd: getPrefix(enc("ab")) }).kvs)).toEqual(["ab", "abc"]);
      expect(keys(get("d", { rangeEnd: enc("a") }).kvs)).toEqual([]);
    });

    test("header and count", () => {
      const r = get("a", all);
      expect(r.header?.revision).toBe(8n);
      expect(r.count).toBe(4n);
      expect(r.more).toBe(false);
    });

    test("limit sets more and keeps the full count", () => {
      let r = get("a", { ...all, limit: 2n });
      expect(keys(r.kvs)).toEqual(["a", "c"]);
      expect(r.more).toBe(true);
      expect(r.count).toBe(4n);
      r = get("a", { ...all, limit: 4n });
      expect(r.kvs.length).toBe(4);
      expect(r.more).toBe(false);
      expect(r.count).toBe(4n);
      r = get("a", { ...all, limit: 3n });
      expect(r.more).toBe(true);
      r = get("a", { ...all, limit: -1n });
      expect(r.kvs.length).toBe(4);
      expect(r.more).toBe(false);
      r = get("a", { ...all, limit: 1n << 62n });
      expect(r.kvs.length).toBe(4);
      expect(r.more).toBe(false);
      r = get("a", { limit: 1n });
      expect(keys(r.kvs)).toEqual(["a"]);
      expect(r.more).toBe(false);
    });

    test("keys_only and count_only", () => {
      let r = get("a", { ...all, keysOnly: true });
      expect(keys(r.kvs)).toEqual(["a", "c", "d", "e"]);
      expect(vals(r.kvs)).toEqual(["", "", "", ""]);
      expect(r.kvs[1].version).toBe(2n);
      r = get("a", { ...all, countOnly: true, limit: 1n });
      expect(r.kvs).toEqual([]);
      expect(r.count).toBe(4n);
      expect(r.more).toBe(false);
      r = get("a", { ...all, countOnly: true, revision: 4n });
      expect(r.count).toBe(3n);
      expect(r.header?.revision).toBe(8n);
    });

    test("sort on every target, both orders; NONE on a non-key target sorts ascending", () => {
      // values: a=v5 c=v9 d=v2 e=v1; versions: c=2, others 1; create: a2 c4 d5 e6; mod: a2 c7 d5 e6
      const sorted = (target: Target, order: Order) => keys(get("a", { ...all, sortTarget: target, sortOrder: order }).kvs);
      expect(sorted(Target.KEY, Order.NONE)).toEqual(["a", "c", "d", "e"]);
      expect(sorted(Target.KEY, Order.ASCEND)).toEqual(["a", "c", "d", "e"]);
      expect(sorted(Target.KEY, Order.DESCEND)).toEqual(["e", "d", "c", "a"]);
      expect(sorted(Target.VALUE, Order.ASCEND)).toEqual(["e", "d", "a", "c"]);
      expect(sorted(Target.VALUE, Order.DESCEND)).toEqual(["c", "a", "d", "e"]);
      expect(sorted(Target.VALUE, Order.NONE)).toEqual(["e", "d", "a", "c"]);
      expect(sorted(Target.CREATE, Order.DESCEND)).toEqual(["e", "d", "c", "a"]);
      expect(sorted(Target.CREATE, Order.NONE)).toEqual(["a", "c", "d", "e"]);
      expect(sorted(Target.MOD, Order.ASCEND)).toEqual(["a", "d", "e", "c"]);
      expect(sorted(Target.MOD, Order.DESCEND)).toEqual(["c", "e", "d", "a"]);
      // ties keep key order
      expect(sorted(Target.VERSION, Order.ASCEND)).toEqual(["a", "d", "e", "c"]);
      expect(sorted(Target.VERSION, Order.DESCEND)).toEqual(["c", "a", "d", "e"]);
    });

    test("sort with limit: an explicit order sorts everything, NONE sorts only the first limit+1 keys", () => {
      let r = get("a", { ...all, sortTarget: Target.VALUE, sortOrder: Order.DESCEND, limit: 2n });
      expect(keys(r.kvs)).toEqual(["c", "a"]);
      expect(r.more).toBe(true);
      expect(r.count).toBe(4n);
      // etcd fetches a, c, d (limit+1 in key order), sorts those by value, truncates to 2
      r = get("a", { ...all, sortTarget: Target.VALUE, limit: 2n });
      expect(keys(r.kvs)).toEqual(["d", "a"]);
      expect(r.more).toBe(true);
    });

    test("keys_only with a value sort sorts by the real values", () => {
      const r = get("a", { ...all, sortTarget: Target.VALUE, sortOrder: Order.ASCEND, keysOnly: true });
      expect(keys(r.kvs)).toEqual(["e", "d", "a", "c"]);
      expect(vals(r.kvs)).toEqual(["", "", "", ""]);
    });

    test("min/max mod/create revision filters; count ignores them", () => {
      const f = (o: object) => get("a", { ...all, ...o });
      expect(keys(f({ minModRevision: 6n }).kvs)).toEqual(["c", "e"]);
      expect(keys(f({ maxModRevision: 5n }).kvs)).toEqual(["a", "d"]);
      expect(keys(f({ minCreateRevision: 5n }).kvs)).toEqual(["d", "e"]);
      expect(keys(f({ maxCreateRevision: 4n }).kvs)).toEqual(["a", "c"]);
      const r = f({ minModRevision: 3n, maxModRevision: 6n, minCreateRevision: 5n, maxCreateRevision: 5n });
      expect(keys(r.kvs)).toEqual(["d"]);
      expect(r.count).toBe(4n);
      const l = f({ minModRevision: 5n, limit: 1n });
      expect(keys(l.kvs)).toEqual(["c"]);
      expect(l.more).toBe(true);
      expect(l.count).toBe(4n);
    });

    test("reads at past revisions", () => {
      const at = (rev: number, o = {}) => get("a", { ...all, revision: BigInt(rev), ...o });
      expect(keys(at(1).kvs)).toEqual([]);
      expect(keys(at(3).kvs)).toEqual(["a", "b"]);
      expect(vals(at(6).kvs)).toEqual(["v5", "v4", "v3", "v2", "v1"]);
      expect(vals(at(7).kvs)).toEqual(["v5", "v4", "v9", "v2", "v1"]);
      expect(keys(at(8).kvs)).toEqual(["a", "c", "d", "e"]);
      expect(at(6).header?.revision).toBe(8n);
      expect(kvSummary(get("c", { revision: 6n }).kvs[0])).toEqual({
        key: "c",
        value: "v3",
        create: 4,
        mod: 4,
        version: 1,
        lease: 0n,
      });
      // every option combined at a past revision
      const r = at(7, {
        limit: 2n,
        sortTarget: Target.MOD,
        sortOrder: Order.DESCEND,
        minCreateRevision: 3n,
        keysOnly: true,
      });
      expect(keys(r.kvs)).toEqual(["c", "e"]);
      expect(vals(r.kvs)).toEqual(["", ""]);
      expect(r.more).toBe(true);
      expect(r.count).toBe(5n);
      const p = at(6, { limit: 2n });
      expect(keys(p.kvs)).toEqual(["a", "b"]);
      expect(p.more).toBe(true);
      expect(p.count).toBe(5n);
      expect(at(5, { countOnly: true }).count).toBe(4n);
      expect(keys(get("b", { revision: 7n }).kvs)).toEqual(["b"]);
      expect(keys(get("b", { revision: 8n }).kvs)).toEqual([]);
      expect(keys(get("c", { revision: 6n, rangeEnd: enc("\0") }).kvs)).toEqual(["c", "d", "e"]);
    });

    test("future revision and revision 0 / negative", () => {
      expectError(() => get("a", { revision: 9n }), Errors.futureRev());
      expect(get("a", { revision: 0n }).count).toBe(1n);
      expect(get("a", { revision: -3n }).count).toBe(1n);
    });
  });

  describe("delete", () => {
    beforeEach(() => {
      for (const k of ["a", "b", "c", "d"]) put(k, k);
    });

    test("single key, range, from key, everything; deleted and prev_kvs", () => {
      let r = del("a", { prevKv: true });
      expect(r.deleted).toBe(1n);
      expect(r.header?.revision).toBe(6n);
      expect(keys(r.prevKvs)).toEqual(["a"]);
      expect(vals(r.prevKvs)).toEqual(["a"]);
      r = del("b", { rangeEnd: enc("c") });
      expect(r.deleted).toBe(1n);
      expect(r.prevKvs).toEqual([]);
      r = del("c", { rangeEnd: enc("\0"), prevKv: true });
      expect(r.deleted).toBe(2n);
      expect(keys(r.prevKvs)).toEqual(["c", "d"]);
      expect(s().rev).toBe(8);
      put("x", "1");
      put("y", "1");
      r = del("\0", { rangeEnd: enc("\0") });
      expect(r.deleted).toBe(2n);
      expect(get("\0", { rangeEnd: enc("\0") }).count).toBe(0n);
    });

    test("deleting nothing keeps the revision", () => {
      const r = del("zz", { prevKv: true });
      expect(r.deleted).toBe(0n);
      expect(r.header?.revision).toBe(5n);
      expect(s().rev).toBe(5);
      expect(del("a", { rangeEnd: enc("a") }).deleted).toBe(0n);
      expect(env.events.length).toBe(4);
    });

    test("a range delete writes one revision with increasing sub revisions", () => {
      env.events.length = 0;
      del("a", { rangeEnd: enc("\0") });
      expect(env.events.length).toBe(1);
      const { rev, events } = env.events[0];
      expect(rev).toBe(6);
      expect(events.map((e) => [e.type, dec(e.kv!.key), e.kv!.modRevision, dec(e.prevKv!.value)])).toEqual([
        [Event_EventType.DELETE, "a", 6n, "a"],
        [Event_EventType.DELETE, "b", 6n, "b"],
        [Event_EventType.DELETE, "c", 6n, "c"],
        [Event_EventType.DELETE, "d", 6n, "d"],
      ]);
      expect(events[0].kv!.createRevision).toBe(0n);
      expect(events[0].kv!.version).toBe(0n);
      expect(env.backend.readHistory(6, 0).map((kv) => [dec(kv.key), kv.modRevision, kv.createRevision])).toEqual([
        ["a", 6n, 0n],
        ["b", 6n, 0n],
        ["c", 6n, 0n],
        ["d", 6n, 0n],
      ]);
    });
  });

  describe("txn", () => {
    beforeEach(() => {
      put("a", "1", { lease: 7n }); // rev 2
      put("b", "2"); // rev 3
      put("b", "3"); // rev 4
    });

    const check = (c: ReturnType<typeof cmp>) => txn([c], []).succeeded;

    test("compares on every target and result", () => {
      // a: value 1, create 2, mod 2, version 1, lease 7; b: value 3, create 3, mod 4, version 2
      const cases: [ReturnType<typeof cmp>, boolean][] = [
        [cmp("a", "value", "=", "1"), true],
        [cmp("a", "value", "!=", "1"), false],
        [cmp("a", "value", ">", "0"), true],
        [cmp("a", "value", "<", "0"), false],
        [cmp("a", "value", "<", "10"), true], // bytewise: a prefix sorts first
        [cmp("a", "value", ">", ""), true],
        [cmp("b", "createRevision", "=", 3), true],
        [cmp("b", "createRevision", ">", 2), true],
        [cmp("b", "createRevision", "<", 3), false],
        [cmp("b", "createRevision", "!=", 3), false],
        [cmp("b", "modRevision", "=", 4), true],
        [cmp("b", "modRevision", "<", 5), true],
        [cmp("b", "modRevision", ">", 4), false],
        [cmp("b", "version", "=", 2), true],
        [cmp("b", "version", "!=", 1), true],
        [cmp("b", "version", ">", 2), false],
        [cmp("a", "lease", "=", 7), true],
        [cmp("a", "lease", ">", 6), true],
        [cmp("b", "lease", "=", 0), true],
        [cmp("b", "lease", "<", 0), false],
      ];
      for (const [c, want] of cases) expect([c.key, c.target, c.result, check(c)]).toEqual([c.key, c.target, c.result, want]);
      expect(s().rev).toBe(4);
    });

    test("absent keys compare as zeros, except a value compare, which always fails", () => {
      expect(check(cmp("x", "version", "=", 0))).toBe(true);
      expect(check(cmp("x", "createRevision", "=", 0))).toBe(true);
      expect(check(cmp("x", "modRevision", "<", 1))).toBe(true);
      expect(check(cmp("x", "lease", "=", 0))).toBe(true);
      expect(check(cmp("x", "version", ">", 0))).toBe(false);
      expect(check(cmp("x", "value", "=", ""))).toBe(false);
      expect(check(cmp("x", "value", "!=", "a"))).toBe(false);
    });

    test("range compares hold only if they hold for every key in the range", () => {
      expect(check(cmp("a", "version", ">", 0, "c"))).toBe(true);
      expect(check(cmp("a", "version", "=", 1, "c"))).toBe(false);
      expect(check(cmp("a", "modRevision", "<", 5, "\0"))).toBe(true);
      expect(check(cmp("b", "version", "=", 2, "\0"))).toBe(true);
      expect(check(cmp("c", "version", "=", 0, "\0"))).toBe(true); // empty range: zeros
      expect(check(cmp("c", "value", "=", "", "\0"))).toBe(false);
      expect(check(cmp("a", "value", "<", "4", "c"))).toBe(true);
    });

    test("the target union's case must match the target, else the zero value is used", () => {
      const c = cmp("b", "version", "=", 4);
      c.targetUnion = { case: "modRevision", value: 4n };
      expect(check(c)).toBe(false);
      c.targetUnion = { case: undefined };
      c.result = 1; // GREATER than 0
      expect(check(c)).toBe(true);
    });

    test("all compares must hold; success and failure branches; responses", () => {
      let r = txn(
        [cmp("a", "value", "=", "1"), cmp("b", "version", "=", 2)],
        [opPut(putReq("c", "x")), opRange(rangeReq("c")), opDel(delReq("a", { prevKv: true }))],
        [opPut(putReq("f", "x"))],
      );
      expect(r.succeeded).toBe(true);
      expect(r.header?.revision).toBe(5n);
      expect(r.responses.map((o) => o.response.case)).toEqual(["responsePut", "responseRange", "responseDeleteRange"]);
      const [p, g, d] = r.responses.map((o) => o.response.value!);
      expect((p as any).header.revision).toBe(5n);
      expect(keys((g as any).kvs)).toEqual(["c"]);
      expect((g as any).header.revision).toBe(5n);
      expect((d as any).deleted).toBe(1n);
      expect(vals((d as any).prevKvs)).toEqual(["1"]);
      expect(s().rev).toBe(5);
      expect(get("c").kvs[0].modRevision).toBe(5n);
      expect(get("f").kvs).toEqual([]);

      r = txn([cmp("a", "value", "=", "1"), cmp("b", "version", "=", 2)], [opPut(putReq("g", "x"))], [opPut(putReq("f", "x"))]);
      expect(r.succeeded).toBe(false);
      expect(keys(get("f").kvs)).toEqual(["f"]);
      expect(get("g").kvs).toEqual([]);
      expect(r.header?.revision).toBe(6n);
    });

    test("writes of one txn share a revision with sub revisions in op order; reads see earlier writes", () => {
      env.events.length = 0;
      const r = txn(
        [],
        [
          opRange(rangeReq("a")),
          opPut(putReq("x", "1")),
          opRange(rangeReq("x")),
          opDel(delReq("a")),
          opPut(putReq("b", "4", { prevKv: true })),
          opRange(rangeReq("\0", { rangeEnd: enc("\0") })),
          opDel(delReq("nothing")),
        ],
      );
      const resp = r.responses.map((o) => o.response.value as any);
      expect(resp[0].header.revision).toBe(4n);
      expect(keys(resp[0].kvs)).toEqual(["a"]);
      expect(resp[2].header.revision).toBe(5n);
      expect(keys(resp[2].kvs)).toEqual(["x"]);
      expect(keys(resp[5].kvs)).toEqual(["b", "x"]);
      expect(vals(resp[5].kvs)).toEqual(["4", "1"]);
      expect(dec(resp[4].prevKv.value)).toBe("3");
      expect(resp[6].deleted).toBe(0n);
      expect(resp[6].header.revision).toBe(5n); // a change happened earlier in the txn
      expect(r.header?.revision).toBe(5n);
      expect(env.events).toHaveLength(1);
      expect(env.events[0].events.map((e) => [e.type, dec(e.kv!.key), e.kv!.modRevision])).toEqual([
        [Event_EventType.PUT, "x", 5n],
        [Event_EventType.DELETE, "a", 5n],
        [Event_EventType.PUT, "b", 5n],
      ]);
      expect(kvSummary(get("b").kvs[0])).toEqual({ key: "b", value: "4", create: 3, mod: 5, version: 3, lease: 0n });
    });

    test("a range at an explicit revision inside a writing txn reads that revision", () => {
      const r = txn([], [opPut(putReq("a", "new")), opRange(rangeReq("a", { revision: 4n })), opRange(rangeReq("a"))]);
      const [, old, cur] = r.responses.map((o) => o.response.value as any);
      expect(vals(old.kvs)).toEqual(["1"]);
      expect(vals(cur.kvs)).toEqual(["new"]);
      expect(old.header.revision).toBe(5n);
    });

    test("a txn that changes nothing keeps the revision", () => {
      let r = txn([], [opRange(rangeReq("a"))]);
      expect(r.header?.revision).toBe(4n);
      r = txn([], [opDel(delReq("zz"))]);
      expect(r.header?.revision).toBe(4n);
      r = txn([], []);
      expect(r.succeeded).toBe(true);
      expect(r.header?.revision).toBe(4n);
      expect(s().rev).toBe(4);
    });

    test("nested txns: compares see the data before the outer txn ran; nested headers are empty", () => {
      const inner = txnReq([cmp("a", "value", "=", "1")], [opPut(putReq("then", "1"))], [opPut(putReq("else", "1"))]);
      const r = txn(
        [],
        [opPut(putReq("a", "changed")), opTxn(inner), opTxn(txnReq([cmp("a", "value", "=", "changed")], [opPut(putReq("t2", "1"))], [opRange(rangeReq("a"))]))],
      );
      expect(r.header?.revision).toBe(5n);
      const n1 = r.responses[1].response.value as any;
      const n2 = r.responses[2].response.value as any;
      expect(n1.succeeded).toBe(true);
      expect(n1.header.revision).toBe(0n);
      expect(n1.responses[0].response.case).toBe("responsePut");
      expect(n2.succeeded).toBe(false);
      expect(vals(n2.responses[0].response.value.kvs)).toEqual(["changed"]);
      expect(keys(get("\0", { rangeEnd: enc("\0") }).kvs)).toEqual(["a", "b", "then"]);
      // three levels
      const deep = txn([cmp("b", "version", "=", 3)], [], [opTxn(txnReq([], [opTxn(txnReq([cmp("x", "version", "=", 0)], [opPut(putReq("deep", "1"))]))]))]);
      expect(deep.succeeded).toBe(false);
      expect(keys(get("deep").kvs)).toEqual(["deep"]);
      expect(get("deep").kvs[0].modRevision).toBe(6n);
    });

    test("errors are found before anything is written", () => {
      put("c", "x");
      compact(3);
      const before = snapshot();
      const bad: [Parameters<typeof txnReq>, EtcdError][] = [
        [[[], [opPut(putReq("n", "1")), opRange(rangeReq("a", { revision: 99n }))]], Errors.futureRev()],
        [[[], [opPut(putReq("n", "1")), opRange(rangeReq("a", { revision: 2n }))]], Errors.compacted()],
        [[[], [opPut(putReq("n", "1")), opPut(putReq("m", "1", { lease: 8n }))]], Errors.leaseNotFound()],
        [[[], [opPut(putReq("n", "1")), opPut(putReq("zz", "", { ignoreValue: true }))]], Errors.keyNotFound()],
        [[[], [opPut(putReq("n", "1")), opPut(putReq("zz", "", { ignoreLease: true }))]], Errors.keyNotFound()],
        [[[], [opPut(putReq("n", "1")), opTxn(txnReq([], [opRange(rangeReq("a", { revision: 99n }))]))]], Errors.futureRev()],
        // put checks come before range checks, wherever they are
        [[[], [opRange(rangeReq("a", { revision: 99n })), opPut(putReq("m", "1", { lease: 8n }))]], Errors.leaseNotFound()],
        // in a txn the key is checked before the lease
        [[[], [opPut(putReq("zz", "", { ignoreValue: true, lease: 8n }))]], Errors.keyNotFound()],
        // a from-key delete earlier in the txn removes the key ignore_value needs (etcd 3.4 crashes here)
        [[[], [opDel(delReq("a", { rangeEnd: enc("\0") })), opPut(putReq("b", "", { ignoreValue: true }))]], Errors.keyNotFound()],
        // etcd checks txn ranges against the compact revision even when negative (checked on etcd 3.4.23)
        [[[], [opRange(rangeReq("a", { revision: -5n }))]], Errors.compacted()],
        [[[cmp("a", "version", "=", 5)], [opPut(putReq("n", "1"))], [opRange(rangeReq("a", { revision: 99n }))]], Errors.futureRev()],
      ];
      for (const [i, [args, err]] of bad.entries()) {
        let message = "no error";
        try {
          txn(...args);
        } catch (e) {
          message = (e as Error).message;
        }
        expect([i, message]).toEqual([i, err.message]);
        expect(snapshot()).toEqual(before);
      }
      // checks follow only the branch that runs
      expect(txn([cmp("a", "version", "=", 1)], [opPut(putReq("n", "1"))], [opRange(rangeReq("a", { revision: 99n }))]).succeeded).toBe(true);
      // a put after a delete of the same key brings it back for a later ignore_value (the store
      // alone; validateTxn would refuse this request)
      const ok = txn(
        [],
        [opTxn(txnReq([], [opDel(delReq("c"))])), opTxn(txnReq([], [opPut(putReq("c", "y"))])), opPut(putReq("c", "", { ignoreValue: true }))],
      );
      expect(ok.succeeded).toBe(true);
      expect(vals(get("c").kvs)).toEqual(["y"]);
      // the compact revision itself is readable, in and out of txns
      expect(vals((txn([], [opRange(rangeReq("b", { revision: 3n }))]).responses[0].response.value as any).kvs)).toEqual(["2"]);
    });
  });

  describe("compaction", () => {
    beforeEach(() => {
      put("a", "1"); // 2
      put("a", "2"); // 3
      put("b", "1"); // 4
      del("b"); // 5
      put("c", "1"); // 6
      put("a", "3"); // 7
      del("c"); // 8
      put("c", "2"); // 9
    });
    const history = () => env.backend.readHistory(0, 0).map((kv) => `${dec(kv.key)}@${kv.modRevision}${kv.createRevision === 0n ? "t" : ""}`);

    test("errors: at or below the compact revision, above the current one", () => {
      expectError(() => compact(10), Errors.futureRev());
      compact(4);
      expectError(() => compact(4), Errors.compacted());
      expectError(() => compact(3), Errors.compacted());
      expect(s().compactRev).toBe(4);
    });

    test("compacting at 0 on a fresh store works (etcd starts at compact revision -1)", () => {
      const fresh = makeEnv();
      try {
        fresh.apply(() => fresh.store.compact(0));
        expect(fresh.store.compactRev).toBe(0);
        expectError(() => fresh.apply(() => fresh.store.compact(0)), Errors.compacted());
      } finally {
        fresh.close();
      }
    });

    test("removes what no read at or after the compact revision can see, keeps the rest", () => {
      expect(history()).toEqual(["a@2", "a@3", "b@4", "b@5t", "c@6", "a@7", "c@8t", "c@9"]);
      const at = (rev: number) => get("\0", { rangeEnd: enc("\0"), revision: BigInt(rev) });
      const seen = [4, 5, 6, 7, 8, 9].map((r) => [keys(at(r).kvs), vals(at(r).kvs)]);
      compact(4);
      expect(history()).toEqual(["a@3", "b@4", "b@5t", "c@6", "a@7", "c@8t", "c@9"]);
      expect([4, 5, 6, 7, 8, 9].map((r) => [keys(at(r).kvs), vals(at(r).kvs)])).toEqual(seen);
      compact(5);
      expect(history()).toEqual(["a@3", "c@6", "a@7", "c@8t", "c@9"]);
      compact(8);
      expect(history()).toEqual(["a@7", "c@9"]);
      expect([8, 9].map((r) => [keys(at(r).kvs), vals(at(r).kvs)])).toEqual(seen.slice(4));
      expect(keys(at(8).kvs)).toEqual(["a"]);
      expectError(() => at(7), Errors.compacted());
      expectError(() => get("a", { revision: 1n }), Errors.compacted());
      // count_only at past revisions follows the same rule
      expect(get("\0", { rangeEnd: enc("\0"), revision: 8n, countOnly: true }).count).toBe(1n);
      compact(9);
      expect(history()).toEqual(["a@7", "c@9"]);
      expect(s().rev).toBe(9);
      expect(vals(get("\0", { rangeEnd: enc("\0"), revision: 9n }).kvs)).toEqual(["3", "2"]);
    });

    test("compaction changes neither current data nor the revision", () => {
      const before = get("\0", { rangeEnd: enc("\0") });
      compact(9);
      const after = get("\0", { rangeEnd: enc("\0") });
      expect(after.kvs.map(kvSummary)).toEqual(before.kvs.map(kvSummary));
      expect(s().rev).toBe(9);
      expect(put("d", "1").header?.revision).toBe(10n);
    });
  });

  test("events: puts carry prev_kv, deletes carry the key, revision and prev_kv", () => {
    put("a", "1");
    put("a", "2");
    del("a");
    expect(env.events.map(({ rev, events }) => [rev, events.map((e) => [e.type, kvSummary(e.kv), kvSummary(e.prevKv)])])).toEqual([
      [2, [[Event_EventType.PUT, { key: "a", value: "1", create: 2, mod: 2, version: 1, lease: 0n }, undefined]]],
      [
        3,
        [
          [
            Event_EventType.PUT,
            { key: "a", value: "2", create: 2, mod: 3, version: 2, lease: 0n },
            { key: "a", value: "1", create: 2, mod: 2, version: 1, lease: 0n },
          ],
        ],
      ],
      [
        4,
        [
          [
            Event_EventType.DELETE,
            { key: "a", value: "", create: 0, mod: 4, version: 0, lease: 0n },
            { key: "a", value: "2", create: 2, mod: 3, version: 2, lease: 0n },
          ],
        ],
      ],
    ]);
  });

  test("readHistory returns revisions from a revision on, in order, with a limit", () => {
    put("a", "1");
    put("b", "1");
    del("a");
    expect(env.backend.readHistory(3, 0).map((kv) => [dec(kv.key), kv.modRevision])).toEqual([
      ["b", 3n],
      ["a", 4n],
    ]);
    expect(env.backend.readHistory(0, 1).map((kv) => dec(kv.key))).toEqual(["a"]);
  });

  test("returned KeyValues are protobuf messages", () => {
    put("a", "1", { lease: 9n });
    const kv = get("a").kvs[0];
    expect(toBinary(KeyValueSchema, kv).length).toBeGreaterThan(0);
  });

  test("revisions survive a restart", () => {
    if (!env.reopen) return;
    put("a", "1");
    put("b", "1");
    del("b");
    compact(3);
    put("c", "1");
    del("c"); // rev 6, only tombstones at 6
    let store = env.reopen();
    expect(store.rev).toBe(6);
    expect(store.compactRev).toBe(3);
    expect(keys(get("\0", { rangeEnd: enc("\0") }).kvs)).toEqual(["a"]);
    expectError(() => get("a", { revision: 2n }), Errors.compacted());
    // compaction removed the newest revisions: the revision comes from the compact revision
    compact(6);
    store = env.reopen();
    expect(store.rev).toBe(6);
    expect(store.compactRev).toBe(6);
    expect(put("d", "1").header?.revision).toBe(7n);
    store = env.reopen();
    expect(store.rev).toBe(7);
  });
});

describe("validate (v3rpc rules)", () => {
  const err = (f: () => void) => {
    try {
      f();
      return null;
    } catch (e) {
      return (e as EtcdError).message;
    }
  };
  const dup = Errors.duplicateKey().message;

  test("empty keys, ignore_value with a value, ignore_lease with a lease", () => {
    expect(err(() => validateRange(rangeReq("")))).toBe(Errors.emptyKey().message);
    expect(err(() => validateDeleteRange(delReq("")))).toBe(Errors.emptyKey().message);
    expect(err(() => validatePut(putReq("", "")))).toBe(Errors.emptyKey().message);
    expect(err(() => validatePut(putReq("a", "v", { ignoreValue: true })))).toBe(Errors.valueProvided().message);
    expect(err(() => validatePut(putReq("a", "", { ignoreLease: true, lease: 1n })))).toBe(Errors.leaseProvided().message);
    expect(err(() => validatePut(putReq("a", "", { ignoreValue: true, ignoreLease: true })))).toBeNull();
  });

  test("txn: too many ops per list, empty compare keys, empty ops, nested limits", () => {
    const puts = (n: number) => Array.from({ length: n }, (_, i) => opPut(putReq(`k${i}`, "")));
    expect(err(() => validateTxn(txnReq([], puts(4)), 4))).toBeNull();
    expect(err(() => validateTxn(txnReq([], puts(5)), 4))).toBe(Errors.tooManyOps().message);
    expect(err(() => validateTxn(txnReq([], [], puts(5)), 4))).toBe(Errors.tooManyOps().message);
    expect(err(() => validateTxn(txnReq([cmp("", "version", "=", 0)], [])))).toBe(Errors.emptyKey().message);
    expect(err(() => validateTxn(txnReq([], [opRange(rangeReq(""))])))).toBe(Errors.emptyKey().message);
    const empty = opPut(putReq("a", ""));
    empty.request = { case: undefined };
    expect(err(() => validateTxn(txnReq([], [empty])))).toBe(Errors.keyNotFound().message);
    // a nested txn gets what the outer lists leave: 4 - 2 = 2
    expect(err(() => validateTxn(txnReq([], [opTxn(txnReq([], puts(2))), empty]), 4))).toBe(Errors.keyNotFound().message);
    expect(err(() => validateTxn(txnReq([], [opTxn(txnReq([], puts(3))), opRange(rangeReq("a"))]), 4))).toBe(Errors.tooManyOps().message);
    expect(err(() => validateTxn(txnReq([], [opTxn(txnReq([], puts(2))), opRange(rangeReq("a"))]), 4))).toBeNull();
  });

  test("txn: no key put twice or put and deleted in one branch, nested included", () => {
    const v = (success: ReturnType<typeof opPut>[], failure: ReturnType<typeof opPut>[] = []) => err(() => validateTxn(txnReq([], success, failure)));
    expect(v([opPut(putReq("a", "")), opPut(putReq("a", ""))])).toBe(dup);
    expect(v([opPut(putReq("a", ""))], [opPut(putReq("a", ""))])).toBeNull();
    expect(v([opDel(delReq("a")), opPut(putReq("a", ""))])).toBe(dup);
    expect(v([opPut(putReq("b", "")), opDel(delReq("a", { rangeEnd: enc("c") }))])).toBe(dup);
    expect(v([opPut(putReq("c", "")), opDel(delReq("a", { rangeEnd: enc("c") }))])).toBeNull();
    expect(v([opDel(delReq("a")), opDel(delReq("a"))])).toBeNull();
    expect(v([opRange(rangeReq("a")), opPut(putReq("a", ""))])).toBeNull();
    // etcd takes a delete's "\0" range end literally here: a from-key delete overlaps no put
    expect(v([opDel(delReq("a", { rangeEnd: enc("\0") })), opPut(putReq("b", ""))])).toBeNull();
    // nested
    const nested = (s: ReturnType<typeof opPut>[], f: ReturnType<typeof opPut>[] = []) => opTxn(txnReq([], s, f));
    expect(v([nested([opPut(putReq("a", ""))]), opPut(putReq("a", ""))])).toBe(dup);
    expect(v([nested([opPut(putReq("a", ""))], [opPut(putReq("a", ""))])])).toBeNull();
    expect(v([nested([opPut(putReq("a", ""))]), nested([opPut(putReq("a", ""))])])).toBe(dup);
    expect(v([nested([], [opPut(putReq("a", ""))]), nested([opPut(putReq("a", ""))])])).toBe(dup);
    expect(v([opDel(delReq("a")), nested([opPut(putReq("a", ""))])])).toBe(dup);
    expect(v([nested([opDel(delReq("a"))]), opPut(putReq("a", ""))])).toBe(dup);
    expect(v([nested([opDel(delReq("a"))]), nested([opPut(putReq("a", ""))])])).toBe(dup);
    // a nested put before a nested delete of the same key passes (etcd checks puts against deletes seen so far)
    expect(v([nested([opPut(putReq("a", ""))]), nested([opDel(delReq("a"))])])).toBeNull();
    expect(v([nested([nested([opDel(delReq("a", { rangeEnd: enc("b") }))])]), opPut(putReq("a", ""))])).toBe(dup);
  });
});

describe("key ranges", () => {
  test("range_end rules", () => {
    expect(toRangeEnd(new Uint8Array(0))).toBeNull();
    expect(toRangeEnd(new Uint8Array([0]))!.length).toBe(0);
    expect(Array.from(toRangeEnd(enc("b"))!)).toEqual([98]);
    expect(inRange(enc("a"), enc("a"), null)).toBe(true);
    expect(inRange(enc("ab"), enc("a"), null)).toBe(false);
    expect(inRange(enc("zzz"), enc("a"), new Uint8Array(0))).toBe(true);
    expect(inRange(enc("b"), enc("a"), enc("b"))).toBe(false);
    expect(inRange(new Uint8Array([0]), new Uint8Array([0]), new Uint8Array(0))).toBe(true);
  });

  test("prefix ends", () => {
    expect(Array.from(getPrefix(enc("ab")))).toEqual([97, 99]);
    expect(Array.from(getPrefix(new Uint8Array([97, 255])))).toEqual([98]);
    expect(Array.from(getPrefix(new Uint8Array([255, 255])))).toEqual([0]);
    expect(Array.from(getPrefix(new Uint8Array(0)))).toEqual([0]);
  });

  test("byte order is memcmp order, also for latin1 key strings", () => {
    const ks = [[1], [0, 5], [0], [255], [1, 0], [128]].map((a) => new Uint8Array(a));
    const byBytes = [...ks].sort(compareBytes).map((k) => Array.from(k));
    const byString = [...ks].sort((a, b) => (bytesToKeyString(a) < bytesToKeyString(b) ? -1 : 1)).map((k) => Array.from(k));
    expect(byBytes).toEqual([[0], [0, 5], [1], [1, 0], [128], [255]]);
    expect(byString).toEqual(byBytes);
  });
});

describe("storage schema", () => {
  test("openDatabase creates the directory, migrates idempotently and refuses a newer schema", async () => {
    const { mkdtempSync, rmSync } = await import("node:fs");
    const { tmpdir } = await import("node:os");
    const { join } = await import("node:path");
    const { openDatabase } = await import("../storage/db");
    const dir = mkdtempSync(join(tmpdir(), "tsetcd-db-"));
    try {
      const path = join(dir, "a", "b", "t.db");
      let db = openDatabase(path);
      expect((db.query("PRAGMA journal_mode").get() as any).journal_mode).toBe("wal");
      expect((db.query("PRAGMA synchronous").get() as any).synchronous).toBe(2); // FULL
      db.close();
      db = openDatabase(path);
      db.exec("PRAGMA user_version = 99");
      db.close();
      expect(() => openDatabase(path)).toThrow(/newer/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
