// The database schema: drizzle declarations for typed cold-path queries, and
// the same tables as plain SQL that openDatabase() runs (drizzle-kit is not
// part of the build, so the DDL lives here, next to what it must match).
//
// Layout choices, measured on Bun 1.4 / SQLite (100 B..1 KiB values):
// - kv_latest and kv_history are ordinary rowid tables. As WITHOUT ROWID
//   tables (whole rows inside the primary-key b-tree) a point read of a 1 KiB
//   value cost 12-22 µs instead of ~2 µs and a put 2-4x more, because large
//   rows shrink the b-tree's fan-out. The primary keys stay the same; SQLite
//   backs them with a unique index.
// - Keys and values are BLOBs: SQLite compares BLOBs with memcmp, which is
//   exactly etcd's key order, so range scans walk the key index in order.

import { blob, customType, index, integer, primaryKey, sqliteTable, text } from "drizzle-orm/sqlite-core";

/** A column without a declared type: SQLite keeps each value as given. */
const anyValue = customType<{ data: number | bigint | string | Uint8Array | null }>({
  dataType: () => "",
});

/**
 * Small named values: applied index, compact revision, cluster/member ids.
 * The MVCC current revision is not stored: it is derived from kv_history and
 * the compact revision (see KvBackend.readMeta), saving a write per request.
 */
export const meta = sqliteTable("meta", {
  name: text("name").primaryKey(),
  value: anyValue("value"),
});

/** The write log (Raft entries); owned by the storage layer's log code. */
export const log = sqliteTable("log", {
  idx: integer("idx").primaryKey(),
  term: integer("term").notNull(),
  type: integer("type").notNull(),
  data: blob("data", { mode: "buffer" }).notNull(),
});

/** The newest live revision of every key: what a Range at the current revision reads. */
export const kvLatest = sqliteTable("kv_latest", {
  key: blob("key", { mode: "buffer" }).primaryKey(),
  createRev: integer("create_rev").notNull(),
  modRev: integer("mod_rev").notNull(),
  modSub: integer("mod_sub").notNull(),
  version: integer("version").notNull(),
  value: blob("value", { mode: "buffer" }).notNull(),
  lease: integer("lease", { mode: "number" }).notNull(),
});

/**
 * Every revision of every key (puts and tombstones) not yet compacted away,
 * clustered by revision (appends are in order; watch catch-up reads in order),
 * with an index by key for reads at a past revision.
 */
export const kvHistory = sqliteTable(
  "kv_history",
  {
    revMain: integer("rev_main").notNull(),
    revSub: integer("rev_sub").notNull(),
    key: blob("key", { mode: "buffer" }).notNull(),
    createRev: integer("create_rev").notNull(),
    version: integer("version").notNull(),
    value: blob("value", { mode: "buffer" }).notNull(),
    lease: integer("lease", { mode: "number" }).notNull(),
    tombstone: integer("tombstone", { mode: "boolean" }).notNull(),
  },
  (t) => [primaryKey({ columns: [t.revMain, t.revSub] }), index("kv_history_key_rev").on(t.key, t.revMain, t.revSub)],
);

/** Names of rows in `meta`. */
export const MetaKey = {
  consistentIndex: "consistent_index",
  compactRev: "compact_rev",
  clusterId: "cluster_id",
  memberId: "member_id",
} as const;

/** The schema version this file creates; bump it with a migration step. */
export const SCHEMA_VERSION = 1;

/** Idempotent DDL for SCHEMA_VERSION (every statement is IF NOT EXISTS). */
export const SCHEMA_SQL = `
CREATE TABLE IF NOT EXISTS meta (
  name TEXT PRIMARY KEY NOT NULL,
  value
);
CREATE TABLE IF NOT EXISTS log (
  idx INTEGER PRIMARY KEY,
  term INTEGER NOT NULL,
  type INTEGER NOT NULL,
  data BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS kv_latest (
  key BLOB PRIMARY KEY NOT NULL,
  create_rev INTEGER NOT NULL,
  mod_rev INTEGER NOT NULL,
  mod_sub INTEGER NOT NULL,
  version INTEGER NOT NULL,
  value BLOB NOT NULL,
  lease INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS kv_history (
  rev_main INTEGER NOT NULL,
  rev_sub INTEGER NOT NULL,
  key BLOB NOT NULL,
  create_rev INTEGER NOT NULL,
  version INTEGER NOT NULL,
  value BLOB NOT NULL,
  lease INTEGER NOT NULL,
  tombstone INTEGER NOT NULL,
  PRIMARY KEY (rev_main, rev_sub)
);
CREATE INDEX IF NOT EXISTS kv_history_key_rev ON kv_history (key, rev_main, rev_sub);
`;
