// The storage interface under MvccStore. The store owns every MVCC rule
// (revisions, versions, compaction semantics, request semantics); a backend
// only stores rows and answers the few queries below, so the same store logic
// runs on SQLite and in memory and the two must answer identically.
//
// Shape chosen for the hot paths:
// - reads return ready-made mvccpb.KeyValue messages (int64 fields as bigint,
//   as protobuf-es wants them), so a Range response is assembled without
//   copying rows; callers may mutate what they get (each call returns fresh
//   objects);
// - writes take plain numbers and are single-row statements, so a put is one
//   read plus two writes;
// - nothing here opens or commits a transaction: the caller (the apply loop)
//   wraps a batch of requests in one.

import type { KeyValue } from "../gen/mvccpb/kv_pb";
import type { RangeEnd } from "./key-range";

export interface StoreMeta {
  /** The store's current revision (1 for a fresh store). */
  rev: number;
  /** The revision of the last compaction; -1 if never compacted (as etcd). */
  compactRev: number;
}

export interface KvBackend {
  /**
   * The live revision of `key` at the current state, or null if absent.
   * Without `withValue` the value is empty (skips copying the blob when only
   * create revision, version and lease are needed).
   */
  getLatest(key: Uint8Array, withValue: boolean): KeyValue | null;

  /** Live keys in the range at the current state, in key order; `limit` 0 = no limit. */
  rangeLatest(key: Uint8Array, end: RangeEnd, limit: number, keysOnly: boolean): KeyValue[];

  /** How many live keys are in the range at the current state. */
  countLatest(key: Uint8Array, end: RangeEnd): number;

  /**
   * Keys in the range as they were at revision `rev` (newest revision <= rev
   * of each key, unless that is a tombstone), in key order; `limit` 0 = no
   * limit. `rev` must be >= the compact revision: below it results are wrong.
   */
  rangeAt(key: Uint8Array, end: RangeEnd, rev: number, limit: number, keysOnly: boolean): KeyValue[];

  /** How many keys in the range were live at revision `rev`. */
  countAt(key: Uint8Array, end: RangeEnd, rev: number): number;

  /** Records one revision of a key: a put, or a tombstone (then createRev = version = 0, value empty, lease 0). */
  appendHistory(
    revMain: number,
    revSub: number,
    key: Uint8Array,
    createRev: number,
    version: number,
    value: Uint8Array,
    lease: bigint,
    tombstone: boolean,
  ): void;

  /** Inserts or replaces the live revision of a key. */
  putLatest(
    key: Uint8Array,
    value: Uint8Array,
    createRev: number,
    modRev: number,
    modSub: number,
    version: number,
    lease: bigint,
  ): void;

  /** Removes a key from the current state (its history stays). */
  deleteLatest(key: Uint8Array): void;

  /**
   * Physically removes history made obsolete by a compaction at `rev`: for
   * each key, every revision with main <= rev except the newest such one, and
   * that one too if it is a tombstone.
   */
  compact(rev: number): void;

  /**
   * Revisions with main >= fromRev in revision order, at most `limit` (0 = no
   * limit), for watchers catching up. A tombstone comes back in the shape of
   * a DELETE event's kv: key and mod revision set, create revision 0.
   */
  readHistory(fromRev: number, limit: number): KeyValue[];

  /**
   * The persisted revisions. Only the compact revision is stored; the current
   * revision is derived (the newest history revision, or the compact revision
   * if compaction removed everything newer, or 1): every revision bump writes
   * a history row and compaction removes only rows <= the compact revision,
   * so this is exact and saves a meta write on every request.
   */
  readMeta(): StoreMeta;

  /** Persists the compact revision (in the caller's transaction, with the compaction). */
  writeCompactRev(rev: number): void;
}
