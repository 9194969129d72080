// Placeholder until the house-rules branch lands its assertion helper (same names).
export class AssertionError extends Error {
  override readonly name = "AssertionError";
}

export function assert(cond: unknown, what: string): asserts cond {
  if (!cond) throw new AssertionError(`invariant violated: ${what}`);
}

export function unreachable(x: never, what = "unreachable"): never {
  throw new AssertionError(`${what}: ${String((x as { case?: unknown })?.case ?? x)}`);
}
