// Parses the grpc-timeout header ("1S", "250m", "100000u"...) into milliseconds.

const UNIT_MS: Record<string, number> = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 0.001, n: 0.000001 };

/** Returns the timeout in ms, or undefined when absent or malformed (gRPC ignores those). */
export function parseGrpcTimeout(value: string | string[] | undefined): number | undefined {
  if (typeof value !== "string" || value.length < 2 || value.length > 9) return undefined;
  const unit = UNIT_MS[value[value.length - 1]];
  const amount = Number(value.slice(0, -1));
  if (unit === undefined || !Number.isInteger(amount) || amount < 0) return undefined;
  return amount * unit;
}
