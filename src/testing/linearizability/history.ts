// One client operation as recorded by the simulator. Times are logical (the
// simulator's clock), not wall time, so recorded histories replay the same.
//
// Real-time order: A precedes B iff A.ret < B.call. Operations whose
// intervals touch or overlap (including equal endpoints) are concurrent.
export interface Operation<I, O> {
  clientId: number;
  input: I;
  /** Logical time the client issued the request. */
  call: number;
  /** The reply; only meaningful when `ret` is defined. */
  output?: O;
  /**
   * Logical time the reply arrived. `undefined` = never returned (client
   * crashed or timed out): the operation may or may not have taken effect, so
   * the checker treats its return as +infinity and its output as unknown.
   */
  ret?: number;
}

/** What the checker knows about an operation's reply. */
export type Outcome<O> = { known: true; value: O } | { known: false };

export function outcomeOf<I, O>(op: Operation<I, O>): Outcome<O> {
  return op.ret === undefined ? { known: false } : { known: true, value: op.output as O };
}

/** Rejects records the checker cannot reason about (a bug in the recorder, not the system). */
export function validateHistory<I, O>(history: readonly Operation<I, O>[]): void {
  history.forEach((op, i) => {
    if (!Number.isFinite(op.call)) throw new Error(`operation ${i}: call time ${op.call} is not finite`);
    if (op.ret !== undefined && !(op.ret >= op.call)) {
      throw new Error(`operation ${i}: returns at ${op.ret} before its call at ${op.call}`);
    }
  });
}
