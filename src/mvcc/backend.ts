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
// - a write is one call (put or tombstone) taking plain numbers; the backend
//   keeps its history and current-state tables in step;
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

  /**
   * Records a put of `key` at revision (revMain, revSub): appends it to the
   * history and makes it the key's live revision. `createRev === revMain`
   * marks the first revision of a (new or re-created) key.
   */
  put(key: Uint8Array, value: Uint8Array, createRev: number, revMain: number, revSub: number, version: number, lease: bigint): void;

  /**
   * Records the delete of live `key` at revision (revMain, revSub): appends a
   * tombstone to the history and removes the key from the current state.
   */
  tombstone(key: Uint8Array, revMain: number, revSub: number): void;

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
