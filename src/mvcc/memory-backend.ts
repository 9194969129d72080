// KvBackend in memory, for fast deterministic tests of the store logic. It
// must answer exactly as SqliteKvBackend does (the randomized test compares
// them). Keys are held as latin1 strings (one char per byte) so JS string
// order is memcmp order; sorted arrays give the ordered scans. Inputs are
// copied and outputs are fresh objects, so callers cannot alias stored bytes.

import type { KeyValue } from "../gen/mvccpb/kv_pb";
import type { KvBackend, StoreMeta } from "./backend";
import { bytesToKeyString, EMPTY_BYTES, type RangeEnd } from "./key-range";

interface Latest {
  key: Uint8Array;
  value: Uint8Array;
  createRev: number;
  modRev: number;
  modSub: number;
  version: number;
  lease: bigint;
}

interface HistoryRow {
  main: number;
  sub: number;
  key: Uint8Array;
  createRev: number;
  version: number;
  value: Uint8Array;
  lease: bigint;
  tombstone: boolean;
}

function kv(key: Uint8Array, value: Uint8Array, createRev: number, modRev: number, version: number, lease: bigint, keysOnly: boolean): KeyValue {
  return {
    $typeName: "mvccpb.KeyValue",
    key: key.slice(),
    createRevision: BigInt(createRev),
    modRevision: BigInt(modRev),
    version: BigInt(version),
    value: keysOnly ? new Uint8Array(0) : value.slice(),
    lease,
  };
}

/** First index in sorted `arr` whose element is >= s. */
function lowerBound(arr: string[], s: string): number {
  let lo = 0;
  let hi = arr.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (arr[mid] < s) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function insertSorted(arr: string[], s: string): void {
  const i = lowerBound(arr, s);
  if (arr[i] !== s) arr.splice(i, 0, s);
}

function removeSorted(arr: string[], s: string): void {
  const i = lowerBound(arr, s);
  if (arr[i] === s) arr.splice(i, 1);
}

/** Calls `f` with each key of sorted `keys` in the range until it returns false. */
function scan(keys: string[], key: Uint8Array, end: RangeEnd, f: (k: string) => boolean): void {
  const start = bytesToKeyString(key);
  if (end === null) {
    const i = lowerBound(keys, start);
    if (keys[i] === start) f(start);
    return;
  }
  const stop = end.length === 0 ? null : bytesToKeyString(end);
  for (let i = lowerBound(keys, start); i < keys.length; i++) {
    const k = keys[i];
    if (stop !== null && k >= stop) return;
    if (!f(k)) return;
  }
}

export class MemoryKvBackend implements KvBackend {
  private readonly latest = new Map<string, Latest>();
  private readonly latestKeys: string[] = [];
  /** All history rows in revision order. */
  private history: HistoryRow[] = [];
  /** History rows per key, in revision order. */
  private readonly byKey = new Map<string, HistoryRow[]>();
  private readonly historyKeys: string[] = [];
  private compactRev = -1;

  getLatest(key: Uint8Array, withValue: boolean): KeyValue | null {
    const l = this.latest.get(bytesToKeyString(key));
    return l === undefined ? null : kv(l.key, l.value, l.createRev, l.modRev, l.version, l.lease, !withValue);
  }

  rangeLatest(key: Uint8Array, end: RangeEnd, limit: number, keysOnly: boolean): KeyValue[] {
    const out: KeyValue[] = [];
    scan(this.latestKeys, key, end, (k) => {
      const l = this.latest.get(k)!;
      out.push(kv(l.key, l.value, l.createRev, l.modRev, l.version, l.lease, keysOnly));
      return limit <= 0 || out.length < limit;
    });
    return out;
  }

  countLatest(key: Uint8Array, end: RangeEnd): number {
    let n = 0;
    scan(this.latestKeys, key, end, () => {
      n++;
      return true;
    });
    return n;
  }

  rangeAt(key: Uint8Array, end: RangeEnd, rev: number, limit: number, keysOnly: boolean): KeyValue[] {
    const out: KeyValue[] = [];
    scan(this.historyKeys, key, end, (k) => {
      const r = this.liveAt(k, rev);
      if (r !== null) out.push(kv(r.key, r.value, r.createRev, r.main, r.version, r.lease, keysOnly));
      return limit <= 0 || out.length < limit;
    });
    return out;
  }

  countAt(key: Uint8Array, end: RangeEnd, rev: number): number {
    let n = 0;
    scan(this.historyKeys, key, end, (k) => {
      if (this.liveAt(k, rev) !== null) n++;
      return true;
    });
    return n;
  }

  put(key: Uint8Array, value: Uint8Array, createRev: number, revMain: number, revSub: number, version: number, lease: bigint): void {
    const k = bytesToKeyString(key);
    this.append({ main: revMain, sub: revSub, key: key.slice(), createRev, version, value: value.slice(), lease, tombstone: false });
    if (!this.latest.has(k)) insertSorted(this.latestKeys, k);
    this.latest.set(k, { key: key.slice(), value: value.slice(), createRev, modRev: revMain, modSub: revSub, version, lease });
  }

  tombstone(key: Uint8Array, revMain: number, revSub: number): void {
    const k = bytesToKeyString(key);
    if (!this.latest.delete(k)) throw new Error("mvcc memory backend: tombstone for a key that is not live");
    removeSorted(this.latestKeys, k);
    this.append({ main: revMain, sub: revSub, key: key.slice(), createRev: 0, version: 0, value: EMPTY_BYTES, lease: 0n, tombstone: true });
  }

  compact(rev: number): void {
    const dropped = new Set<HistoryRow>();
    for (const [k, rows] of this.byKey) {
      // rows are in revision order: the newest one <= rev survives unless it is a tombstone
      let newest = -1;
      for (let i = 0; i < rows.length && rows[i].main <= rev; i++) newest = i;
      if (newest < 0) continue;
      const keepFrom = rows[newest].tombstone ? newest + 1 : newest;
      for (let i = 0; i < keepFrom; i++) dropped.add(rows[i]);
      const rest = rows.slice(keepFrom);
      if (rest.length === 0) {
        this.byKey.delete(k);
        removeSorted(this.historyKeys, k);
      } else {
        this.byKey.set(k, rest);
      }
    }
    if (dropped.size > 0) this.history = this.history.filter((r) => !dropped.has(r));
  }

  readHistory(fromRev: number, limit: number): KeyValue[] {
    let lo = 0;
    let hi = this.history.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.history[mid].main < fromRev) lo = mid + 1;
      else hi = mid;
    }
    const out: KeyValue[] = [];
    for (let i = lo; i < this.history.length && (limit <= 0 || out.length < limit); i++) {
      const r = this.history[i];
      out.push(kv(r.key, r.value, r.createRev, r.main, r.version, r.lease, false));
    }
    return out;
  }

  readMeta(): StoreMeta {
    const last = this.history[this.history.length - 1];
    const m = last === undefined ? 0 : last.main;
    return { rev: Math.max(m, this.compactRev, 1), compactRev: this.compactRev };
  }

  writeCompactRev(rev: number): void {
    this.compactRev = rev;
  }

  private append(row: HistoryRow): void {
    const last = this.history[this.history.length - 1];
    if (last !== undefined && (last.main > row.main || (last.main === row.main && last.sub >= row.sub))) {
      // SQLite would refuse the duplicate primary key; refuse out-of-order rows too.
      throw new Error(`history row (${row.main},${row.sub}) not after (${last.main},${last.sub})`);
    }
    this.history.push(row);
    const k = bytesToKeyString(row.key);
    let rows = this.byKey.get(k);
    if (rows === undefined) {
      rows = [];
      this.byKey.set(k, rows);
      insertSorted(this.historyKeys, k);
    }
    rows.push(row);
  }

  /** The key's newest history row <= rev if it is not a tombstone. */
  private liveAt(k: string, rev: number): HistoryRow | null {
    const rows = this.byKey.get(k)!;
    for (let i = rows.length - 1; i >= 0; i--) {
      if (rows[i].main <= rev) return rows[i].tombstone ? null : rows[i];
    }
    return null;
  }
}
