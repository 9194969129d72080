// JSON bodies for the gateway carry int64s (lease ids, revisions) as bare numbers as often as
// strings: etcd's e2e suite posts {"ID": 7289022282209902492}. JSON.parse would round such a
// number to the nearest double, so integers beyond 2^53 are turned into strings first, which
// proto3 JSON accepts for every integer field.
import type { JsonValue } from "@bufbuild/protobuf";

/** JSON.parse, with integer literals too large for a double kept exact (as strings). */
export function parseJsonExact(text: string): JsonValue {
  return JSON.parse(quoteLargeIntegers(text)) as JsonValue;
}

export function quoteLargeIntegers(text: string): string {
  let out = "";
  let last = 0;
  let i = 0;
  const n = text.length;
  while (i < n) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      // Skip a string, escapes included.
      i++;
      while (i < n && text.charCodeAt(i) !== 0x22) i += text.charCodeAt(i) === 0x5c /* \ */ ? 2 : 1;
      i++;
      continue;
    }
    if (c === 0x2d /* - */ || (c >= 0x30 && c <= 0x39)) {
      const start = i;
      i++;
      while (i < n && /[0-9.eE+-]/.test(text[i])) i++;
      const token = text.slice(start, i);
      if (/^-?\d{16,}$/.test(token) && !Number.isSafeInteger(Number(token))) {
        out += text.slice(last, start) + `"${token}"`;
        last = i;
      }
      continue;
    }
    i++;
  }
  return last === 0 ? text : out + text.slice(last);
}
