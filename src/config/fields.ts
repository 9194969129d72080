// One zod field per flag kind. A field accepts a value in either form a source
// can give it: the string a command line or env var carries (parsed with Go's
// syntax, so `5s`, `0x10` and `T` mean what they mean to etcd) or the native
// YAML value (number, boolean, list). Errors on strings are Go's flag-package
// reasons ("parse error", "invalid value", ...) so the caller can wrap them
// exactly as etcd does; errors on other types start with "expected".
import { z } from "zod";
import { findFlag, type FlagKind, type FlagSpec } from "./flags";
import { parseGoBool, parseGoDuration, parseGoInt, parseURLList, type Parsed } from "./gosyntax";

type Convert<T> = (v: unknown, spec: FlagSpec) => Parsed<T>;
const ok = <T>(value: T): Parsed<T> => ({ ok: true, value });
const fail = <T>(error: string): Parsed<T> => ({ ok: false, error });

/** How a YAML value is named in messages: `"abc"`, `12`, `a list`. */
export function describe(v: unknown): string {
  if (v === null || v === undefined) return "null";
  if (Array.isArray(v)) return "a list";
  if (typeof v === "object") return "a mapping";
  if (typeof v === "bigint") return v.toString();
  return JSON.stringify(v);
}

function field<T>(name: string, kind: FlagKind, convert: Convert<T>) {
  const spec = findFlag(name);
  // A mismatch between schema and table is a programming error; fail at import.
  if (!spec || spec.kind !== kind) throw new Error(`config schema: --${name} is not a ${kind} flag in the flags table`);
  return z.unknown().transform((v, ctx): T => {
    const r = convert(v, spec);
    if (r.ok) return r.value;
    ctx.addIssue({ code: "custom", message: r.error });
    return z.NEVER;
  });
}

const toString: Convert<string> = (v) =>
  typeof v === "string" ? ok(v) : typeof v === "number" && Number.isFinite(v) ? ok(String(v)) : fail(`expected a string, got ${describe(v)}`);

const toBool: Convert<boolean> = (v) => {
  if (typeof v === "boolean") return ok(v);
  if (typeof v !== "string") return fail(`expected a boolean, got ${describe(v)}`);
  const b = parseGoBool(v);
  return b === undefined ? fail("parse error") : ok(b);
};

const toInteger =
  (signed: boolean): Convert<number> =>
  (v, spec) => {
    const bits = spec.bits ?? 64;
    const what = signed ? "an integer" : "an unsigned integer";
    if (typeof v === "string") {
      const r = parseGoInt(v, signed, bits);
      if ("value" in r) return ok(Number(r.value));
      // --max-concurrent-streams is etcd's own uint32 type, which reports strconv's raw error.
      if (bits === 32) {
        return fail(`strconv.ParseUint: parsing ${JSON.stringify(v)}: ${r.error === "range" ? "value out of range" : "invalid syntax"}`);
      }
      return fail(r.error === "range" ? "value out of range" : "parse error");
    }
    if ((typeof v === "number" && Number.isInteger(v)) || typeof v === "bigint") {
      const n = BigInt(v);
      const max = signed ? (1n << BigInt(bits - 1)) - 1n : (1n << BigInt(bits)) - 1n;
      const min = signed ? -max - 1n : 0n;
      if (n < min || n > max) return fail(n < 0n && !signed ? `expected ${what}, got ${describe(v)}` : "value out of range");
      return ok(Number(n));
    }
    return fail(`expected ${what}, got ${describe(v)}`);
  };

// Durations come out in milliseconds. A YAML number is nanoseconds, because
// etcd decodes config files into Go's time.Duration, an integer of nanoseconds.
const toDuration: Convert<number> = (v) => {
  if (typeof v === "string") {
    const r = parseGoDuration(v);
    return r.ok ? r : fail("parse error");
  }
  if (typeof v === "number" && Number.isInteger(v)) return ok(v / 1e6);
  return fail(`expected a duration (a string such as "5s", or integer nanoseconds), got ${describe(v)}`);
};

const stringItems = (v: unknown): string[] | undefined =>
  Array.isArray(v) && v.every((x) => typeof x === "string" || typeof x === "number") ? v.map(String) : undefined;

const toURLs: Convert<string[]> = (v, spec) => {
  const allowed = spec.allowed ?? [];
  if (typeof v === "string") return allowed.includes(v) ? ok([v]) : parseURLList(v.split(","));
  const items = stringItems(v);
  if (!items) return fail(`expected comma-separated URLs, got ${describe(v)}`);
  if (items.length === 0) return ok([]);
  if (items.length === 1 && allowed.includes(items[0]!)) return ok(items);
  return parseURLList(items);
};

const toList: Convert<string[]> = (v, spec) => {
  const items = typeof v === "string" ? (v === "" ? [] : v.split(",")) : stringItems(v);
  if (!items) return fail(`expected a list of strings, got ${describe(v)}`);
  return ok(spec.unique ? [...new Set(items)].sort() : items);
};

const toEnum: Convert<string> = (v, spec) => {
  if (typeof v !== "string") return fail(`expected one of ${spec.values!.join(", ")}, got ${describe(v)}`);
  return spec.values!.includes(v) ? ok(v) : fail("invalid value");
};

const optional =
  <T>(convert: Convert<T>): Convert<T | undefined> =>
  (v, spec) =>
    v === undefined ? ok(undefined) : convert(v, spec);

export const str = (name: string) => field(name, "string", toString);
/** A string whose absence the schema resolves itself (derived defaults). */
export const optStr = (name: string) => field(name, "string", optional(toString));
export const bool = (name: string) => field(name, "bool", toBool);
export const uint = (name: string) => field(name, "uint", toInteger(false));
export const int = (name: string) => field(name, "int", toInteger(true));
export const duration = (name: string) => field(name, "duration", toDuration);
export const urls = (name: string) => field(name, "urls", toURLs);
export const list = (name: string) => field(name, "stringList", toList);
export const oneOf = <const V extends readonly [string, ...string[]]>(name: string, values: V) => {
  const spec = findFlag(name);
  if (!spec?.values || spec.values.join() !== values.join()) throw new Error(`config schema: values of --${name} differ from the flags table`);
  return field(name, "enum", toEnum) as unknown as z.ZodType<V[number], unknown>;
};
