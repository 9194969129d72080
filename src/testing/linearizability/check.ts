// Linearizability checking à la Porcupine: split the history with the model's
// partition (P-compositionality), then run Wing & Gong's search with Lowe's
// just-in-time linearization and memoization of (linearized set, state) on
// each part. Deterministic: same history, same answer and witness (only a
// timeout depends on the machine).
import { Bitset } from "./bitset.ts";
import { outcomeOf, validateHistory, type Operation, type Outcome } from "./history.ts";
import type { Model } from "./model.ts";

export interface CheckOptions {
  /** Wall-clock budget for the whole check; past it the answer is "unknown". Default 10 s. */
  timeoutMs?: number;
  /** Cap on memoized configurations per partition (bounds memory); past it "unknown". Default 1M. */
  maxStates?: number;
}

export type CheckResult<I, O> =
  | { ok: true }
  | {
      ok: false;
      /** Longest sequence of operations of the failing partition that could be linearized. */
      longestPrefix: Operation<I, O>[];
      /** The failing partition (e.g. all operations on one key). */
      partition: Operation<I, O>[];
      /** Human-readable witness: the prefix, then the operations none of which could come next. */
      explanation: string;
    }
  | { ok: "unknown"; reason: "timeout" | "state-limit" };

export function checkLinearizable<S, I, O>(model: Model<S, I, O>, history: readonly Operation<I, O>[], opts: CheckOptions = {}): CheckResult<I, O> {
  validateHistory(history);
  const deadline = Date.now() + (opts.timeoutMs ?? 10_000);
  const maxStates = opts.maxStates ?? 1_000_000;
  const parts = model.partition ? model.partition(history) : [history.slice()];
  let unknown: CheckResult<I, O> | undefined;
  for (const part of parts) {
    const kept = part.filter((op) => !(op.ret === undefined && model.readOnly?.(op.input)));
    const r = checkPartition(model, kept, deadline, maxStates);
    if (r.ok === false) return r; // one non-linearizable part condemns the whole
    if (r.ok === "unknown") {
      unknown ??= r;
      if (r.reason === "timeout") return r; // the budget is shared; nothing left for other parts
    }
  }
  return unknown ?? { ok: true };
}

// A call or return event in the time-ordered doubly-linked list the search
// lifts operations out of (and puts back on backtracking).
interface Entry {
  id: number;
  isCall: boolean;
  time: number;
  match: Entry | null; // call → its return
  prev: Entry | null;
  next: Entry | null;
}

function buildList<I, O>(ops: readonly Operation<I, O>[]): Entry {
  const events: Entry[] = [];
  ops.forEach((op, id) => {
    const ret: Entry = { id, isCall: false, time: op.ret ?? Infinity, match: null, prev: null, next: null };
    events.push({ id, isCall: true, time: op.call, match: ret, prev: null, next: null }, ret);
  });
  // At equal times calls go first, making touching intervals concurrent
  // (the permissive reading); then by id so the order is total.
  events.sort((a, b) => a.time - b.time || (a.isCall === b.isCall ? 0 : a.isCall ? -1 : 1) || a.id - b.id);
  const head: Entry = { id: -1, isCall: false, time: -Infinity, match: null, prev: null, next: null };
  let last = head;
  for (const e of events) {
    last.next = e;
    e.prev = last;
    last = e;
  }
  return head;
}

// Removes a call and its return: the operation is now linearized.
function lift(call: Entry): void {
  call.prev!.next = call.next;
  call.next!.prev = call.prev; // a call is always followed by at least its return
  const ret = call.match!;
  ret.prev!.next = ret.next;
  if (ret.next) ret.next.prev = ret.prev;
}

// Exact inverse of lift (entries keep their own prev/next while lifted).
function unlift(call: Entry): void {
  const ret = call.match!;
  ret.prev!.next = ret;
  if (ret.next) ret.next.prev = ret;
  call.prev!.next = call;
  call.next!.prev = call;
}

function checkPartition<S, I, O>(model: Model<S, I, O>, ops: readonly Operation<I, O>[], deadline: number, maxStates: number): CheckResult<I, O> {
  const outcomes: Outcome<O>[] = ops.map(outcomeOf);
  const head = buildList(ops);
  const linearized = new Bitset(ops.length);
  // (linearized set, state hash) → states already explored from there. A
  // configuration seen before leads to the same dead end: prune it.
  const cache = new Map<string, S[]>();
  let cached = 0;
  const stack: { call: Entry; state: S }[] = [];
  let state = model.init();
  let best: number[] = [];
  let entry = head.next;
  let steps = 0;

  while (head.next !== null) {
    if ((++steps & 1023) === 0 && Date.now() > deadline) return { ok: "unknown", reason: "timeout" };
    if (entry!.isCall) {
      const call = entry!;
      const r = model.step(state, ops[call.id].input, outcomes[call.id]);
      if (r.ok) {
        const key = linearized.keyWith(call.id) + "|" + model.hash(r.state);
        const seen = cache.get(key);
        if (!seen || !seen.some((s) => model.equal(s, r.state))) {
          if (seen) seen.push(r.state);
          else cache.set(key, [r.state]);
          if (++cached > maxStates) return { ok: "unknown", reason: "state-limit" };
          stack.push({ call, state });
          state = r.state;
          linearized.set(call.id);
          lift(call);
          entry = head.next; // restart: any pending call may now go next
          continue;
        }
      }
      entry = call.next; // try the next concurrent call
    } else {
      // Reached a return whose operation is not linearized: every candidate
      // before it failed, so undo the last choice and try the one after it.
      if (stack.length > best.length) best = stack.map((f) => f.call.id);
      const top = stack.pop();
      if (!top) return failure(model, ops, outcomes, best);
      state = top.state;
      linearized.clear(top.call.id);
      unlift(top.call);
      entry = top.call.next;
    }
  }
  return { ok: true };
}

function failure<S, I, O>(model: Model<S, I, O>, ops: readonly Operation<I, O>[], outcomes: Outcome<O>[], best: number[]): CheckResult<I, O> {
  const line = (id: number) => {
    const op = ops[id];
    return `  client ${op.clientId} [${op.call}, ${op.ret ?? "∞"}] ${model.describe(op.input, outcomes[id])}`;
  };
  const done = new Set(best);
  const rest = ops.map((_, id) => id).filter((id) => !done.has(id));
  const explanation = [
    `linearizable prefix (${best.length} of ${ops.length} operations):`,
    ...best.map(line),
    "not linearizable after that prefix (no minimal one fits next):",
    ...rest.map(line),
  ].join("\n");
  return { ok: false, longestPrefix: best.map((id) => ops[id]), partition: ops.slice(), explanation };
}
