// etcd's key-range conventions, kept in one place so every layer reads a
// (key, range_end) pair the same way:
//   range_end empty        -> just `key`
//   range_end "\0"         -> every key >= `key` (key "\0" too: then everything)
//   anything else          -> the half-open interval [key, range_end)
// Keys order as unsigned bytes (memcmp, shorter prefix first), which is also
// how SQLite compares BLOBs, so both backends agree with etcd's btree.

import { bytesEqual, compareBytes } from "../bytes.js";

// Byte order lives in src/bytes.ts (every layer compares keys and names); re-exported for the
// layers that read keys through this module.
export { bytesEqual, compareBytes };

/** A normalized range end: `null` = the single key; empty = no upper bound. */
export type RangeEnd = Uint8Array | null;

export const EMPTY_BYTES: Uint8Array = new Uint8Array(0);

/** The end `[0]` is etcd's "to the end of the key space" marker. */
const FROM_KEY: Uint8Array = new Uint8Array([0]);

/** Maps a request's range_end to the normalized form the store and backends use. */
export function toRangeEnd(rangeEnd: Uint8Array): RangeEnd {
  if (rangeEnd.length === 0) return null;
  if (rangeEnd.length === 1 && rangeEnd[0] === 0) return EMPTY_BYTES;
  return rangeEnd;
}

/** Whether `k` falls in the range starting at `key` with normalized end `end`. */
export function inRange(k: Uint8Array, key: Uint8Array, end: RangeEnd): boolean {
  if (end === null) return bytesEqual(k, key);
  if (compareBytes(k, key) < 0) return false;
  return end.length === 0 || compareBytes(k, end) < 0;
}

/**
 * The range_end that selects every key with prefix `prefix` (clientv3's
 * GetPrefixRangeEnd): the prefix with its last byte below 0xff incremented and
 * the rest dropped; an all-0xff (or empty) prefix has no such end, so the
 * answer is "\0", meaning "to the end".
 */
export function getPrefix(prefix: Uint8Array): Uint8Array {
  for (let i = prefix.length - 1; i >= 0; i--) {
    if (prefix[i] < 0xff) {
      const end = prefix.slice(0, i + 1);
      end[i]++;
      return end;
    }
  }
  return FROM_KEY.slice();
}

/**
 * A latin1 string with one char per byte: JS string comparison then equals
 * memcmp order, so it can key Maps and sorted arrays (memory backend, tests).
 */
export function bytesToKeyString(b: Uint8Array): string {
  let s = "";
  for (let i = 0; i < b.length; i += 8192) {
    s += String.fromCharCode.apply(null, b.subarray(i, i + 8192) as unknown as number[]);
  }
  return s;
}

export function keyStringToBytes(s: string): Uint8Array {
  const b = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) b[i] = s.charCodeAt(i);
  return b;
}
