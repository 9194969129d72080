// Assertions: a broken invariant is a bug in tsetcd, never a client's error,
// so it throws at once instead of letting the member run on with state it
// cannot trust. A base module: every layer may import it (the house-rules
// test allows it everywhere), so it imports nothing and touches no clock,
// I/O or runtime API, which keeps it usable by the pure Raft core.

/** Thrown by every assertion of ours, whatever the layer. */
export class AssertionError extends Error {
  override readonly name = "AssertionError";
}

/** The signature of `assert` and of the per-layer asserts `assertWith` builds. */
export type Assert = (cond: unknown, what: string) => asserts cond;

/** Throws an AssertionError saying `what` must hold unless `cond` is truthy. */
export function assert(cond: unknown, what: string): asserts cond {
  if (!cond) throw new AssertionError(what);
}

/**
 * An assert whose messages start with `prefix` ("raft invariant violated: ..."),
 * so a failure names the layer that caught it and tests can match on that text.
 * Declare the result with its type (`const invariant: Assert = assertWith(...)`):
 * TypeScript narrows only through assertion functions with an explicit type.
 */
export function assertWith(prefix: string): Assert {
  // The message is built only on failure: hot paths assert on every call.
  return (cond, what) => {
    if (!cond) throw new AssertionError(`${prefix}: ${what}`);
  };
}

/**
 * For the branch a switch can never take once it handles every case:
 * `default: return unreachable(x)` stops compiling when a case is added but
 * not handled, and throws if a value outside the type arrives at run time.
 */
export function unreachable(x: never, what = "unexpected value"): never {
  throw new AssertionError(`${what}: ${describe(x)}`);
}

/** A short printable form of any value (a crash message, not a dump: capped). */
function describe(x: unknown): string {
  if (typeof x !== "object" || x === null) return typeof x === "bigint" ? `${x}n` : String(x);
  try {
    const json = JSON.stringify(x, (_key, v: unknown) => (typeof v === "bigint" ? `${v}n` : v));
    return json.length > 200 ? `${json.slice(0, 200)}...` : json;
  } catch {
    // A value JSON cannot print (a cycle): its tag still says what arrived.
    return Object.prototype.toString.call(x);
  }
}
