import { describe, expect, test } from "bun:test";
import { checkLinearizable, type CheckResult } from "./check.ts";
import type { Operation } from "./history.ts";
import { kvModel, type KvInput, type KvOutput, type KvState, type Model } from "./model.ts";
import { mulberry32, randInt } from "../prng.ts";

type Op = Operation<KvInput, KvOutput>;
type Result = CheckResult<KvInput, KvOutput>;

// Terse constructors: ret undefined = the client never heard back.
const get = (c: number, key: string, call: number, ret?: number, output?: string | null): Op => ({ clientId: c, input: { op: "get", key }, call, ret, output });
const put = (c: number, key: string, value: string, call: number, ret?: number): Op => ({
  clientId: c,
  input: { op: "put", key, value },
  call,
  ret,
  output: ret === undefined ? undefined : null,
});
const cas = (c: number, key: string, expected: string | null, value: string, call: number, ret?: number, output?: boolean): Op => ({
  clientId: c,
  input: { op: "cas", key, expected, value },
  call,
  ret,
  output,
});

const check = (h: Op[]) => checkLinearizable(kvModel, h);
const ok = (h: Op[]) => expect(check(h)).toEqual({ ok: true });
const bad = (h: Op[]) => expect(check(h).ok).toBe(false);

describe("hand-written histories", () => {
  test("empty and sequential histories", () => {
    ok([]);
    ok([put(1, "x", "1", 0, 1), get(2, "x", 2, 3, "1"), get(2, "y", 4, 5, null)]);
  });

  test("stale read after a completed write fails", () => {
    bad([put(1, "x", "1", 0, 1), put(1, "x", "2", 2, 3), get(2, "x", 4, 5, "1")]);
  });

  test("a read concurrent with a write may see either value, but not go back", () => {
    ok([put(1, "x", "1", 0, 10), get(2, "x", 1, 2, null), get(2, "x", 3, 4, "1")]);
    ok([put(1, "x", "1", 0, 10), get(2, "x", 1, 2, "1"), get(3, "x", 1, 2, null)]); // overlapping readers
    bad([put(1, "x", "1", 0, 10), get(2, "x", 1, 2, "1"), get(2, "x", 3, 4, null)]);
  });

  test("readers must agree on the order of two concurrent writes", () => {
    const writes = [put(1, "x", "a", 0, 10), put(2, "x", "b", 0, 10)];
    ok([...writes, get(3, "x", 1, 2, "a"), get(3, "x", 3, 4, "b"), get(4, "x", 1, 2, "a"), get(4, "x", 3, 4, "b")]);
    bad([...writes, get(3, "x", 1, 2, "a"), get(3, "x", 3, 4, "b"), get(4, "x", 1, 2, "b"), get(4, "x", 3, 4, "a")]);
  });

  test("a CAS cannot succeed twice from the same value", () => {
    const init = put(1, "x", "0", 0, 1);
    ok([init, cas(2, "x", "0", "1", 2, 5, true), cas(3, "x", "0", "2", 2, 5, false)]);
    bad([init, cas(2, "x", "0", "1", 2, 5, true), cas(3, "x", "0", "2", 2, 5, true)]);
    ok([init, cas(2, "x", "0", "1", 2, 5, true), cas(3, "x", "1", "2", 2, 5, true), get(4, "x", 6, 7, "2")]);
    ok([cas(1, "x", null, "a", 0, 1, true), cas(1, "x", null, "b", 2, 3, false)]); // null = absent
    bad([cas(1, "x", "a", "b", 0, 1, true)]); // nothing to swap
  });

  test("a read of a value never written fails", () => {
    bad([put(1, "x", "1", 0, 10), get(2, "x", 1, 2, "7")]);
  });

  test("touching intervals (ret == call) are concurrent", () => {
    ok([put(1, "x", "1", 0, 5), get(2, "x", 5, 6, null)]);
    bad([put(1, "x", "1", 0, 4), get(2, "x", 5, 6, null)]);
  });

  test("pending operations may or may not have taken effect", () => {
    ok([put(1, "x", "1", 0), get(2, "x", 5, 6, "1")]); // it took effect
    ok([put(1, "x", "1", 0), get(2, "x", 5, 6, null)]); // it did not (yet)
    ok([put(1, "x", "1", 0), get(2, "x", 5, 6, null), get(2, "x", 7, 8, "1")]); // late effect
    ok([cas(1, "x", null, "c", 0), get(2, "x", 5, 6, "c")]); // pending CAS, output unknown
    ok([get(1, "x", 0), put(2, "x", "1", 0, 1)]); // a pending read constrains nothing
  });

  test("pending operations cannot explain everything", () => {
    // Once observed, the effect cannot be undone.
    bad([put(1, "x", "1", 0), get(2, "x", 5, 6, "1"), get(2, "x", 7, 8, null)]);
    // Invoked after the read completed: cannot be what it saw.
    bad([get(2, "x", 0, 1, "1"), put(1, "x", "1", 2)]);
    // A pending CAS whose expectation never holds cannot take effect.
    bad([cas(1, "x", "nope", "c", 0), get(2, "x", 5, 6, "c")]);
  });

  test("a failure names the offending key's partition and a witness", () => {
    const h = [put(1, "x", "1", 0, 1), put(1, "y", "1", 0, 1), get(2, "x", 2, 3, "1"), put(1, "y", "2", 2, 3), get(2, "y", 4, 5, "1"), get(2, "x", 4, 5, "1")];
    const r = check(h);
    if (r.ok !== false) throw new Error("expected a violation");
    expect(r.partition.every((op) => op.input.key === "y")).toBe(true);
    expect(r.longestPrefix).toEqual([h[1], h[3]]); // both writes fit; the stale read does not
    expect(r.explanation).toContain('get("y") -> "1"');
  });

  test("malformed records are rejected, not judged", () => {
    expect(() => check([get(1, "x", 5, 4, null)])).toThrow(/before its call/);
  });
});

// ---- randomized ---------------------------------------------------------------

interface GenOptions {
  n: number;
  clients: number;
  keys: number;
  /** Max distance of call / return from the linearization point (0 = sequential). */
  spread: number;
  /** Fraction of operations whose client never hears back. */
  pending: number;
}

// A sequential execution stretched in real time: op i takes effect at time
// 10*i and its interval contains that point, so the history is linearizable
// by construction. Written values are unique, so a read names its write.
function genHistory(seed: number, o: GenOptions): Op[] {
  const rand = mulberry32(seed);
  const state = new Map<string, string>();
  const written: string[] = [];
  const h: Op[] = [];
  for (let i = 0; i < o.n; i++) {
    const key = `k${randInt(rand, o.keys)}`;
    const t = 10 * i;
    const cur = state.get(key) ?? null;
    let input: KvInput;
    let output: KvOutput;
    const roll = rand();
    if (roll < 0.4) {
      input = { op: "get", key };
      output = cur;
    } else if (roll < 0.8) {
      input = { op: "put", key, value: `v${i}` };
      output = null;
    } else {
      const expected = rand() < 0.5 || written.length === 0 ? cur : written[randInt(rand, written.length)];
      input = { op: "cas", key, expected, value: `v${i}` };
      output = cur === expected;
    }
    if (input.op !== "get" && (input.op === "put" || output === true)) {
      state.set(key, input.value);
      written.push(input.value);
    }
    const op: Op = { clientId: randInt(rand, o.clients), input, call: t - randInt(rand, o.spread + 1), output, ret: t + randInt(rand, o.spread + 1) };
    if (rand() < o.pending) {
      op.ret = undefined;
      op.output = undefined;
    }
    h.push(op);
  }
  return h;
}

// Changes the reply of one completed get or cas (index chosen by the seed).
function corrupt(seed: number, h: Op[], neverWritten: boolean): Op[] | undefined {
  const rand = mulberry32(seed ^ 0x5eed);
  const candidates = h.map((op, i) => i).filter((i) => h[i].ret !== undefined && h[i].input.op !== "put" && (!neverWritten || h[i].input.op === "get"));
  if (candidates.length === 0) return undefined;
  const i = candidates[randInt(rand, candidates.length)];
  const op = h[i];
  let output: KvOutput;
  if (op.input.op === "cas") output = !op.output;
  else if (neverWritten) output = "never-written";
  else {
    // Another value this key really held at some point, or absent.
    const values = [null, ...h.filter((o) => o.input.key === op.input.key && o.input.op !== "get").map((o) => (o.input as { value: string }).value)];
    const others = values.filter((v) => v !== op.output);
    output = others[randInt(rand, others.length)];
  }
  const copy = h.slice();
  copy[i] = { ...op, output };
  return copy;
}

function expectSeed(seed: number, r: Result, want: Result["ok"]): void {
  if (r.ok !== want) throw new Error(`seed ${seed}: expected ok=${want}, got ${JSON.stringify(r.ok)}`);
}

const unpartitioned: Model<KvState, KvInput, KvOutput> = { ...kvModel, partition: undefined };

describe("randomized histories", () => {
  test("histories generated from a sequential execution are linearizable", () => {
    for (let seed = 1; seed <= 300; seed++) {
      const h = genHistory(seed, { n: 60, clients: 5, keys: 3, spread: 30, pending: 0.1 });
      expectSeed(seed, check(h), true);
    }
  });

  test("a read returning a never-written value always fails", () => {
    for (let seed = 1; seed <= 300; seed++) {
      const h = corrupt(seed, genHistory(seed, { n: 60, clients: 5, keys: 3, spread: 30, pending: 0.1 }), true);
      if (h) expectSeed(seed, check(h), false);
    }
  });

  test("in a sequential history any corrupted reply fails", () => {
    for (let seed = 1; seed <= 300; seed++) {
      const h = corrupt(seed, genHistory(seed, { n: 40, clients: 3, keys: 2, spread: 0, pending: 0 }), false);
      if (h) expectSeed(seed, check(h), false);
    }
  });

  test("corrupted concurrent histories usually fail; partitioning never changes the verdict", () => {
    let failed = 0;
    let total = 0;
    for (let seed = 1; seed <= 200; seed++) {
      const base = genHistory(seed, { n: 30, clients: 4, keys: 2, spread: 25, pending: 0.1 });
      const h = corrupt(seed, base, false);
      if (!h) continue;
      const whole = checkLinearizable(unpartitioned, h);
      const parts = check(h);
      if (whole.ok !== parts.ok) throw new Error(`seed ${seed}: partitioned ${parts.ok} vs whole ${whole.ok}`);
      total++;
      if (parts.ok === false) failed++;
    }
    // Overlaps can legitimately absorb a corruption; most must still be caught.
    expect(failed / total).toBeGreaterThan(0.5);
  });

  test("deterministic: same history, same verdict and witness", () => {
    const h = corrupt(7, genHistory(7, { n: 80, clients: 5, keys: 2, spread: 30, pending: 0.1 }), true)!;
    expect(check(h)).toEqual(check(h));
  });
});

// The definition, by brute force: some order of all operations that respects
// real time (never B before A when A.ret < B.call) and that the model accepts.
// A pending op placed last stands for "never took effect".
function bruteForce(h: Op[]): boolean {
  const used = h.map(() => false);
  const order: number[] = [];
  const search = (state: KvState): boolean => {
    if (order.length === h.length) return true;
    for (let i = 0; i < h.length; i++) {
      if (used[i]) continue;
      // i may go next only if no unplaced op finished before i was called.
      if (h.some((o, j) => !used[j] && j !== i && o.ret !== undefined && o.ret < h[i].call)) continue;
      const out = h[i].ret === undefined ? ({ known: false } as const) : ({ known: true, value: h[i].output as KvOutput } as const);
      const r = kvModel.step(state, h[i].input, out);
      if (!r.ok) continue;
      used[i] = true;
      order.push(i);
      if (search(r.state)) return true;
      order.pop();
      used[i] = false;
    }
    return false;
  };
  return search(kvModel.init());
}

// Small histories with arbitrary (mostly wrong) replies and intervals.
function genChaos(seed: number): Op[] {
  const rand = mulberry32(seed);
  const values = [null, "a", "b"];
  const n = 3 + randInt(rand, 4);
  const h: Op[] = [];
  for (let i = 0; i < n; i++) {
    const call = randInt(rand, 20);
    const ret = rand() < 0.15 ? undefined : call + randInt(rand, 10);
    const key = rand() < 0.8 ? "x" : "y";
    const v = values[1 + randInt(rand, 2)]!;
    const roll = rand();
    if (roll < 0.4) h.push(get(i, key, call, ret, values[randInt(rand, 3)]));
    else if (roll < 0.75) h.push(put(i, key, v, call, ret));
    else h.push(cas(i, key, values[randInt(rand, 3)], v, call, ret, rand() < 0.5));
  }
  return h;
}

test("agrees with brute force on small arbitrary histories", () => {
  let linearizable = 0;
  for (let seed = 1; seed <= 3000; seed++) {
    const h = genChaos(seed);
    const want = bruteForce(h);
    if (want) linearizable++;
    expectSeed(seed, check(h), want);
  }
  // Both verdicts must be well represented for the comparison to mean anything.
  expect(linearizable).toBeGreaterThan(300);
  expect(linearizable).toBeLessThan(2700);
});

describe("bounds", () => {
  const big = () => genHistory(42, { n: 1000, clients: 10, keys: 5, spread: 50, pending: 0.05 });

  test("1,000 operations, 10 clients, 5 keys check quickly", () => {
    expect(checkLinearizable(kvModel, big(), { timeoutMs: 30_000 })).toEqual({ ok: true });
  });

  test("an exhausted budget answers unknown instead of hanging", () => {
    expect(checkLinearizable(unpartitioned, big(), { timeoutMs: -1 })).toEqual({ ok: "unknown", reason: "timeout" });
    expect(checkLinearizable(kvModel, big(), { maxStates: 10 })).toEqual({ ok: "unknown", reason: "state-limit" });
  });
});
