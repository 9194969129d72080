// Value syntaxes of Go's strconv, time and net/url packages, as etcd's flag
// parsing applies them. Reproduced rather than approximated with JS parsers
// because users pass values that Go accepts (`0x10`, `1_000`, `1h30m`, `T`)
// and expect the same results and the same errors as from etcd.
import { isIP } from "node:net";

export type Parsed<T> = { ok: true; value: T } | { ok: false; error: string };
const ok = <T>(value: T): Parsed<T> => ({ ok: true, value });
const fail = <T>(error: string): Parsed<T> => ({ ok: false, error });

/** strconv.ParseBool. */
export function parseGoBool(s: string): boolean | undefined {
  if (["1", "t", "T", "TRUE", "true", "True"].includes(s)) return true;
  if (["0", "f", "F", "FALSE", "false", "False"].includes(s)) return false;
  return undefined;
}

/** Go's rule for `_` in base-0 literals: only between digits or after a base prefix. */
function underscoreOK(s: string): boolean {
  if (s.startsWith("+") || s.startsWith("-")) s = s.slice(1);
  let saw = "^";
  let i = 0;
  let hex = false;
  if (s.length >= 2 && s[0] === "0" && "box".includes(s[1]!.toLowerCase())) {
    i = 2;
    saw = "0";
    hex = s[1]!.toLowerCase() === "x";
  }
  for (; i < s.length; i++) {
    const c = s[i]!;
    if ((c >= "0" && c <= "9") || (hex && /[a-fA-F]/.test(c))) {
      saw = "0";
      continue;
    }
    if (c === "_") {
      if (saw !== "0") return false;
      saw = "_";
      continue;
    }
    if (saw === "_") return false;
    saw = "!";
  }
  return saw !== "_";
}

/**
 * strconv.ParseInt / ParseUint with base 0 (prefixes 0x, 0o, 0b, and a bare
 * leading 0 meaning octal). The error is "syntax" or "range", which Go's flag
 * package reports as "parse error" / "value out of range".
 */
export function parseGoInt(s: string, signed: boolean, bits: number): { value: bigint } | { error: "syntax" | "range" } {
  if (s === "") return { error: "syntax" };
  let body = s;
  let negative = false;
  if (signed && (body[0] === "+" || body[0] === "-")) {
    negative = body[0] === "-";
    body = body.slice(1);
  }
  let base = 10;
  if (body.length >= 2 && body[0] === "0") {
    const p = body[1]!.toLowerCase();
    if (p === "x" || p === "o" || p === "b") {
      base = p === "x" ? 16 : p === "o" ? 8 : 2;
      body = body.slice(2);
    } else {
      base = 8;
      body = body.slice(1);
    }
  }
  if (body.includes("_")) {
    if (!underscoreOK(s)) return { error: "syntax" };
    body = body.replaceAll("_", "");
  }
  if (body === "") return { error: "syntax" };
  const digits = "0123456789abcdef".slice(0, base);
  let n = 0n;
  for (const c of body.toLowerCase()) {
    const d = digits.indexOf(c);
    if (d < 0) return { error: "syntax" };
    n = n * BigInt(base) + BigInt(d);
  }
  const max = signed ? (1n << BigInt(bits - 1)) - 1n : (1n << BigInt(bits)) - 1n;
  if (negative) {
    if (n > max + 1n) return { error: "range" };
    return { value: -n };
  }
  if (n > max) return { error: "range" };
  return { value: n };
}

const UNIT_NS: Record<string, number> = {
  ns: 1,
  us: 1e3,
  "\u00b5s": 1e3,
  "\u03bcs": 1e3,
  ms: 1e6,
  s: 1e9,
  m: 60e9,
  h: 3600e9,
};
const MAX_DURATION_NS = 9223372036854775807;

/** time.ParseDuration, returning milliseconds; errors carry Go's text. */
export function parseGoDuration(orig: string): Parsed<number> {
  const invalid = () => fail<number>(`time: invalid duration ${JSON.stringify(orig)}`);
  let s = orig;
  let negative = false;
  if (s[0] === "-" || s[0] === "+") {
    negative = s[0] === "-";
    s = s.slice(1);
  }
  if (s === "0") return ok(0);
  if (s === "") return invalid();
  let total = 0;
  while (s !== "") {
    const m = /^(\d*)(\.(\d*))?/.exec(s)!;
    const [whole, intPart = "", , frac = ""] = m;
    if (intPart === "" && frac === "") return invalid();
    s = s.slice(whole.length);
    const unitMatch = /^[^\d.]*/.exec(s)!;
    const unit = unitMatch[0];
    s = s.slice(unit.length);
    if (unit === "") return fail(`time: missing unit in duration ${JSON.stringify(orig)}`);
    const scale = UNIT_NS[unit];
    if (scale === undefined) return fail(`time: unknown unit ${JSON.stringify(unit)} in duration ${JSON.stringify(orig)}`);
    total += Number(`${intPart || "0"}.${frac || "0"}`) * scale;
    if (total > MAX_DURATION_NS) return invalid();
  }
  return ok((negative ? -total : total) / 1e6);
}

/** net.SplitHostPort, with Go's error texts. */
export function splitHostPort(hostport: string): Parsed<{ host: string; port: string }> {
  const err = (why: string) => fail<{ host: string; port: string }>(`address ${hostport}: ${why}`);
  const i = hostport.lastIndexOf(":");
  if (i < 0) return err("missing port in address");
  let host: string;
  let j = 0;
  let k = 0;
  if (hostport[0] === "[") {
    const end = hostport.indexOf("]");
    if (end < 0) return err("missing ']' in address");
    if (end + 1 === hostport.length) return err("missing port in address");
    if (end + 1 !== i) return err(hostport[end + 1] === ":" ? "too many colons in address" : "missing port in address");
    host = hostport.slice(1, end);
    j = 1;
    k = end + 1;
  } else {
    host = hostport.slice(0, i);
    if (host.includes(":")) return err("too many colons in address");
  }
  if (hostport.indexOf("[", j) >= 0) return err("unexpected '[' in address");
  if (hostport.indexOf("]", k) >= 0) return err("unexpected ']' in address");
  return ok({ host, port: hostport.slice(i + 1) });
}

export interface GoURL {
  scheme: string;
  /** userinfo@host:port, as written; "" when the URL has no `//` authority. */
  host: string;
  path: string;
  /** The URL as Go's url.URL.String() would print it (scheme lower-cased). */
  text: string;
}

/** The subset of url.Parse etcd's URL flags rely on: scheme, authority and path. */
export function parseGoURL(raw: string): Parsed<GoURL> {
  if (/[\x00-\x1f\x7f]/.test(raw)) return fail(`parse ${JSON.stringify(raw)}: net/url: invalid control character in URL`);
  const noFragment = raw.split("#")[0]!;
  const m = /^([a-zA-Z][a-zA-Z0-9+.-]*):(.*)$/s.exec(noFragment);
  if (noFragment.startsWith(":")) return fail(`parse ${JSON.stringify(raw)}: missing protocol scheme`);
  const scheme = m ? m[1]!.toLowerCase() : "";
  const rest = m ? m[2]! : noFragment;
  const q = rest.indexOf("?");
  const beforeQuery = q >= 0 ? rest.slice(0, q) : rest;
  const query = q >= 0 ? rest.slice(q) : "";
  let host = "";
  let path = beforeQuery;
  if (beforeQuery.startsWith("//")) {
    const slash = beforeQuery.indexOf("/", 2);
    host = slash >= 0 ? beforeQuery.slice(2, slash) : beforeQuery.slice(2);
    path = slash >= 0 ? beforeQuery.slice(slash) : "";
    const hostPort = host.slice(host.lastIndexOf("@") + 1);
    const colon = hostPort.lastIndexOf(":");
    const port = colon > hostPort.lastIndexOf("]") ? hostPort.slice(colon + 1) : "";
    if (colon > hostPort.lastIndexOf("]") && !/^\d*$/.test(port)) {
      return fail(`parse ${JSON.stringify(raw)}: invalid port ${JSON.stringify(":" + port)} after host`);
    }
  }
  const text = m ? `${scheme}:${rest}` : rest;
  return ok({ scheme, host, path, text });
}

/**
 * etcd's types.NewURLs: comma-separated URLs, each http(s) with host:port and no
 * path, or unix(s); the result sorted, as etcd sorts it.
 */
export function parseURLList(items: readonly string[]): Parsed<string[]> {
  if (items.length === 0) return fail("no valid URLs given");
  const out: string[] = [];
  for (const item of items) {
    const input = item.trim();
    const u = parseGoURL(input);
    if (!u.ok) return u;
    const { scheme, host, path } = u.value;
    if (scheme === "http" || scheme === "https") {
      if (!splitHostPort(host.slice(host.lastIndexOf("@") + 1)).ok) {
        return fail(`URL address does not have the form "host:port": ${input}`);
      }
      if (path !== "") return fail(`URL must not contain a path: ${input}`);
    } else if (scheme !== "unix" && scheme !== "unixs") {
      return fail(`URL scheme must be http, https, unix, or unixs: ${input}`);
    }
    out.push(u.value.text);
  }
  return ok([...new Set(out)].sort());
}

/** net.ParseIP (Go rejects IPv4 octets with leading zeros, as Node does). */
export function isGoIP(host: string): boolean {
  return isIP(host) !== 0 && !host.includes("%");
}
