// Sequential specifications the checker linearizes against.
import type { Operation, Outcome } from "./history.ts";

export interface Model<S, I, O> {
  init(): S;
  /**
   * Applies `input` to `state` and says whether `output` is what the
   * sequential object would have replied. States must be treated as immutable
   * (the search backtracks to old states). When `output.known` is false (a
   * pending operation) the step must accept: any reply is possible, only the
   * effect on the state matters.
   */
  step(state: S, input: I, output: Outcome<O>): { ok: boolean; state: S };
  /** Exact equality; used to confirm memoization hits. */
  equal(a: S, b: S): boolean;
  /** Equal states must hash equally; collisions are fine (resolved by `equal`). */
  hash(state: S): string;
  describe(input: I, output: Outcome<O>): string;
  /**
   * True if `input` never changes the state (a read). The checker drops such
   * operations when they never returned: with any output allowed they fit
   * anywhere, and each one kept would double the search space it spans.
   */
  readOnly?(input: I): boolean;
  /**
   * P-compositionality: if the object is a product of independent objects,
   * split the history into per-object sub-histories; the whole is
   * linearizable iff every part is. Omit for an indivisible model.
   */
  partition?(history: readonly Operation<I, O>[]): Operation<I, O>[][];
}

// ---- A map of string keys ----------------------------------------------------

export type KvInput =
  | { op: "get"; key: string }
  | { op: "put"; key: string; value: string }
  /** Succeeds iff the current value === expected (null = key absent). */
  | { op: "cas"; key: string; expected: string | null; value: string }
  /** The key is absent afterwards. */
  | { op: "del"; key: string };

/** get → value | null; put, del → null (no reply value); cas → whether it swapped. */
export type KvOutput = string | null | boolean;

/** Immutable snapshot; after partitioning by key it holds at most one entry. */
export type KvState = ReadonlyMap<string, string>;

function withKey(s: KvState, key: string, value: string): KvState {
  const next = new Map(s);
  next.set(key, value);
  return next;
}

export const kvModel: Model<KvState, KvInput, KvOutput> = {
  init: () => new Map(),

  step(state, input, output) {
    const cur = state.get(input.key) ?? null;
    switch (input.op) {
      case "get":
        return { ok: !output.known || output.value === cur, state };
      case "put":
        return { ok: true, state: withKey(state, input.key, input.value) };
      case "cas": {
        const swapped = cur === input.expected;
        const ok = !output.known || output.value === swapped;
        return { ok, state: swapped ? withKey(state, input.key, input.value) : state };
      }
      case "del": {
        if (cur === null) return { ok: true, state };
        const next = new Map(state);
        next.delete(input.key);
        return { ok: true, state: next };
      }
    }
  },

  equal(a, b) {
    if (a.size !== b.size) return false;
    for (const [k, v] of a) if (b.get(k) !== v) return false;
    return true;
  },

  // JSON of sorted entries: injective, so equal() only guards the contract.
  hash: (s) => JSON.stringify([...s].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))),

  describe(input, output) {
    const out = output.known ? JSON.stringify(output.value) : "?";
    switch (input.op) {
      case "get":
        return `get(${JSON.stringify(input.key)}) -> ${out}`;
      case "put":
        return `put(${JSON.stringify(input.key)}, ${JSON.stringify(input.value)})${output.known ? "" : " (pending)"}`;
      case "cas":
        return `cas(${JSON.stringify(input.key)}, ${JSON.stringify(input.expected)}, ${JSON.stringify(input.value)}) -> ${out}`;
      case "del":
        return `del(${JSON.stringify(input.key)})${output.known ? "" : " (pending)"}`;
    }
  },

  readOnly: (input) => input.op === "get",

  // Keys are independent registers, so each key's history is checked alone.
  // Partitions come out in first-appearance order to keep results deterministic.
  partition(history) {
    const byKey = new Map<string, Operation<KvInput, KvOutput>[]>();
    for (const op of history) {
      let part = byKey.get(op.input.key);
      if (!part) byKey.set(op.input.key, (part = []));
      part.push(op);
    }
    return [...byKey.values()];
  },
};
