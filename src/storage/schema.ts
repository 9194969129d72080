// The database schema, declared once with drizzle: the DDL openDatabase() runs
// is generated from these declarations (sql-table.ts), and the rows the hot
// paths read through prepared statements are typed from them (SqlRow), so a
// column renamed or retyped here shows up in both.
//
// Layout choices, measured on Bun 1.4 / SQLite with 10k keys, 256 B values,
// 1,000 puts per transaction:
// - kv_history is append-only: clustered by revision, with NO index by key.
//   With a (key, rev_main, rev_sub) index every put dirtied a random index
//   page, and a put cost 14 us at 100k history rows and ~30 us at 500k (the
//   WAL written per commit grew with the index); without it a put stays at
//   ~6.5 us however long the history. Reads at a past revision instead walk
//   back from the key's current head along `prev_main/prev_sub` (the key's
//   previous revision, across deletes), which is also what a watcher needs
//   for prev_kv. Heads live in kv_latest (live keys) and kv_deleted (keys
//   whose last revision is a tombstone, until compaction drops it).
// - kv_latest and kv_history are ordinary rowid tables: as WITHOUT ROWID
//   tables (whole rows inside the primary-key b-tree) a point read of a 1 KiB
//   value cost 12-22 us instead of ~2 us, because large rows shrink the
//   b-tree's fan-out. The primary keys are the same; SQLite backs them with a
//   unique index.
// - Keys and values are BLOBs: SQLite compares BLOBs with memcmp, which is
//   exactly etcd's key order, so range scans walk the key index in order.

import { blob, customType, integer, primaryKey, sqliteTable, text } from "drizzle-orm/sqlite-core";
import { createTableSql } from "./sql-table";

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
 * in revision order. (prev_main, prev_sub) is the key's previous revision,
 * (0, 0) for none; it may name a row compaction has removed.
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
    prevMain: integer("prev_main").notNull(),
    prevSub: integer("prev_sub").notNull(),
  },
  (t) => [primaryKey({ columns: [t.revMain, t.revSub] })],
);

/** Keys whose newest revision is a tombstone (not yet compacted): the head of their history chain. */
export const kvDeleted = sqliteTable("kv_deleted", {
  key: blob("key", { mode: "buffer" }).primaryKey(),
  revMain: integer("rev_main").notNull(),
  revSub: integer("rev_sub").notNull(),
});

/**
 * The cluster's members as applied from the log (etcd's members bucket).
 * Ids are decimal TEXT: member ids use all 64 bits and SQLite integers are
 * signed. URL lists are JSON arrays of strings.
 */
export const members = sqliteTable("members", {
  id: text("id").primaryKey(),
  name: text("name").notNull(),
  peerUrls: text("peer_urls").notNull(),
  clientUrls: text("client_urls").notNull(),
  isLearner: integer("is_learner", { mode: "boolean" }).notNull(),
});

/** Ids removed from the cluster: never to be added again (etcd's members_removed bucket). */
export const membersRemoved = sqliteTable("members_removed", {
  id: text("id").primaryKey(),
});

/**
 * Granted leases (etcd's lease bucket): id (signed 64-bit, as etcd's int64), granted TTL and
 * the last checkpointed remaining TTL in seconds (0: none). Attached keys are not stored here:
 * kv_latest.lease names them, and the lessor rebuilds its index from it.
 */
export const leases = sqliteTable("leases", {
  id: integer("id", { mode: "number" }).primaryKey(),
  ttl: integer("ttl").notNull(),
  remainingTtl: integer("remaining_ttl").notNull(),
});

/**
 * The auth store (etcd's authUsers and authRoles buckets): each row holds the encoded
 * authpb.User or authpb.Role under its name, as etcd keeps them. The auth revision and
 * whether auth is enabled live in `meta`.
 */
export const authUsers = sqliteTable("auth_users", {
  name: text("name").primaryKey(),
  user: blob("user", { mode: "buffer" }).notNull(),
});

export const authRoles = sqliteTable("auth_roles", {
  name: text("name").primaryKey(),
  role: blob("role", { mode: "buffer" }).notNull(),
});

/** Names of rows in `meta`. */
export const MetaKey = {
  consistentIndex: "consistent_index",
  compactRev: "compact_rev",
  clusterId: "cluster_id",
  memberId: "member_id",
  /** The cluster version agreed through the log (etcd's cluster version), e.g. "3.5.0". */
  clusterVersion: "cluster_version",
  /** The auth store's revision: bumped by every change to users, roles or the enabled flag. */
  authRevision: "auth_revision",
  /** 1 while authentication is enabled. */
  authEnabled: "auth_enabled",
} as const;

/** The schema version this file creates; bump it with a migration step. */
// Version 2 added `members` and `members_removed`, version 3 `leases`; an
// older file upgrades by running SCHEMA_SQL, which only creates what is missing.
// Version 4 added `auth_users` and `auth_roles`.
export const SCHEMA_VERSION = 4;

/**
 * Idempotent DDL for SCHEMA_VERSION (every statement is IF NOT EXISTS), in
 * the order the tables have always been created.
 */
export const SCHEMA_SQL = [meta, log, kvLatest, kvHistory, kvDeleted, members, membersRemoved, leases, authUsers, authRoles].map(createTableSql).join("");
