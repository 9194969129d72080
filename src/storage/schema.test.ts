// The DDL generated from the drizzle declarations against the hand-written
// DDL it replaced (pasted below as it was in schema version 3): same text,
// same database, and a data dir written under that DDL opens and reads.
import { Database } from "bun:sqlite";
import { afterAll, describe, expect, test } from "bun:test";
import { index, integer, sqliteTable, text, unique } from "drizzle-orm/sqlite-core";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SqliteLeaseBackend } from "../lease/sqlite-lease-backend.ts";
import { SqliteKvBackend } from "../mvcc/sqlite-backend.ts";
import { MvccStore } from "../mvcc/store.ts";
import { dec, delReq, putReq, rangeReq } from "../mvcc/test-support.ts";
import { ConfChangeType, type Entry, EntryType } from "../raft/types.ts";
import { Membership, encodeMemberContext } from "../server/membership.ts";
import { openDatabase } from "./db.ts";
import { MetaStore } from "./meta-store.ts";
import { SqliteRaftStorage } from "./raft-storage.ts";
import { MetaKey, SCHEMA_SQL, SCHEMA_VERSION } from "./schema.ts";
import { createTableSql } from "./sql-table.ts";

// Fixture: schema version 3 as openDatabase() created it before the DDL was
// generated. Version 2 was the same without `leases`.
const LEASES_V3 = `CREATE TABLE IF NOT EXISTS leases (
  id INTEGER PRIMARY KEY,
  ttl INTEGER NOT NULL,
  remaining_ttl INTEGER NOT NULL
);
`;
const DDL_V2 = `
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
  prev_main INTEGER NOT NULL,
  prev_sub INTEGER NOT NULL,
  PRIMARY KEY (rev_main, rev_sub)
);
CREATE TABLE IF NOT EXISTS kv_deleted (
  key BLOB PRIMARY KEY NOT NULL,
  rev_main INTEGER NOT NULL,
  rev_sub INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS members (
  id TEXT PRIMARY KEY NOT NULL,
  name TEXT NOT NULL,
  peer_urls TEXT NOT NULL,
  client_urls TEXT NOT NULL,
  is_learner INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS members_removed (
  id TEXT PRIMARY KEY NOT NULL
);
`;
const DDL_V3 = DDL_V2 + LEASES_V3;
// Version 4 added the auth store's tables.
const AUTH_V4 = `CREATE TABLE IF NOT EXISTS auth_users (
  name TEXT PRIMARY KEY NOT NULL,
  user BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS auth_roles (
  name TEXT PRIMARY KEY NOT NULL,
  role BLOB NOT NULL
);
`;
const DDL_V4 = DDL_V3 + AUTH_V4;

const dirs: string[] = [];
function tempFile(): string {
  const d = mkdtempSync(join(tmpdir(), "tsetcd-schema-"));
  dirs.push(d);
  return join(d, "member.db");
}
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** A database file as an older tsetcd left it: that version's DDL and user_version, nothing else. */
function oldDatabase(ddl: string, version: number): string {
  const path = tempFile();
  const db = new Database(path, { create: true, readwrite: true });
  db.exec("PRAGMA journal_mode = WAL");
  db.exec(ddl);
  db.exec(`PRAGMA user_version = ${version}`);
  db.close();
  return path;
}

/** Everything SQLite records about the schema (root pages aside): objects, their SQL, every table's columns. */
function schemaOf(db: Database) {
  const objects = db.query("SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY name").all() as { type: string; name: string }[];
  const columns = objects.filter((o) => o.type === "table").map((o) => [o.name, db.query(`PRAGMA table_xinfo(${o.name})`).all()]);
  const userVersion = (db.query("PRAGMA user_version").get() as { user_version: number }).user_version;
  return { objects, columns, userVersion };
}

const enc = (s: string) => new TextEncoder().encode(s);

describe("the schema generated from the drizzle declarations", () => {
  test("is the schema-3 DDL plus version 4's auth tables, character for character", () => {
    // SQLite stores the CREATE TABLE text in sqlite_master: the same text keeps old and new files alike.
    expect(SCHEMA_SQL).toBe(DDL_V4.trimStart());
    expect(SCHEMA_VERSION).toBe(4);
  });

  test("a fresh database equals one the schema-4 DDL created", () => {
    const fresh = openDatabase(":memory:");
    const old = new Database(":memory:");
    old.exec(DDL_V4);
    old.exec("PRAGMA user_version = 4");
    expect(schemaOf(fresh)).toEqual(schemaOf(old));
    // 10 tables, and the automatic index of every primary key but the two INTEGER ones (those are the rowid).
    expect(schemaOf(fresh).objects.length).toBe(10 + 8);
    fresh.close();
    old.close();
  });

  test("a version-2 file upgrades to the fresh schema (leases added, nothing else touched)", () => {
    const path = oldDatabase(DDL_V2, 2);
    const db = openDatabase(path);
    const fresh = openDatabase(":memory:");
    expect(schemaOf(db)).toEqual(schemaOf(fresh));
    db.close();
    fresh.close();
  });

  test("a data dir written under the schema-3 DDL opens, gains the auth tables and reads", () => {
    const path = oldDatabase(DDL_V3, 3);
    // Write with the storage classes (their statements are what wrote every data dir) on the old tables.
    let db = new Database(path, { readwrite: true });
    const before = schemaOf(db);
    const store = new MvccStore(new SqliteKvBackend(db), { leaseExists: (id) => id === 7n });
    const leases = new SqliteLeaseBackend(db);
    const raft = new SqliteRaftStorage(db);
    const entries: Entry[] = [1, 2, 3].map((i) => ({ term: 2, index: i, type: EntryType.Normal, data: enc(`e${i}`) }));
    db.transaction(() => {
      store.put(putReq("a", "1"));
      store.put(putReq("a", "2", { lease: 7n }));
      store.put(putReq("b", "1"));
      store.deleteRange(delReq("b"));
      leases.put({ id: 7n, ttl: 60, remainingTtl: 0 });
      raft.append(entries);
      raft.setHardState({ term: 2, vote: 0xffff_ffff_ffff_fffen, commit: 3 });
      const m = { id: 0x8e9e05c52164694dn, name: "m1", peerURLs: ["http://10.0.0.1:2380"], clientURLs: [], isLearner: false };
      const cc = { type: ConfChangeType.AddNode, nodeId: m.id, context: encodeMemberContext(m) };
      new Membership(db).applyConfChange(cc);
      new MetaStore(db).setBigInt(MetaKey.clusterId, 0xfeedn);
    })();
    raft.committed();
    db.close();

    // Open with today's code: the old tables stay as they were, version 4's are added, the data reads back.
    db = openDatabase(path);
    const fresh = openDatabase(":memory:");
    expect(schemaOf(db)).toEqual(schemaOf(fresh));
    fresh.close();
    expect(schemaOf(db).objects.filter((o) => !o.name.includes("auth_"))).toEqual(before.objects);
    const reopened = new MvccStore(new SqliteKvBackend(db));
    const got = reopened.range(rangeReq("a", { rangeEnd: enc("c") }));
    expect(got.kvs.map((kv) => [dec(kv.key), dec(kv.value), kv.modRevision, kv.lease])).toEqual([["a", "2", 3n, 7n]]);
    expect(reopened.rev).toBe(5);
    expect(new SqliteLeaseBackend(db).all()).toEqual([{ id: 7n, ttl: 60, remainingTtl: 0 }]);
    expect(new SqliteLeaseBackend(db).attachedKeys().map((k) => [dec(k.key), k.lease])).toEqual([["a", 7n]]);
    const raft2 = new SqliteRaftStorage(db, { cacheEntries: 0 }); // entries() from SQLite, not the tail cache
    expect(raft2.initialState().hardState).toEqual({ term: 2, vote: 0xffff_ffff_ffff_fffen, commit: 3 });
    expect(raft2.entries(1, 4, Infinity).map((e) => [e.index, e.term, e.type, dec(e.data)])).toEqual([
      [1, 2, EntryType.Normal, "e1"],
      [2, 2, EntryType.Normal, "e2"],
      [3, 2, EntryType.Normal, "e3"],
    ]);
    expect(new Membership(db).list()).toEqual([{ id: 0x8e9e05c52164694dn, name: "m1", peerURLs: ["http://10.0.0.1:2380"], clientURLs: [], isLearner: false }]);
    expect(new MetaStore(db).getBigInt(MetaKey.clusterId)).toBe(0xfeedn);
    db.close();
  });

  test("a declaration using what the generator does not render is refused, not dropped", () => {
    const t = (extra: "index" | "unique") =>
      sqliteTable("t", { a: integer("a").notNull(), b: text("b").notNull() }, (c) => [extra === "index" ? index("t_a").on(c.a) : unique().on(c.b)]);
    expect(() => createTableSql(t("index"))).toThrow(/indexes/);
    expect(() => createTableSql(t("unique"))).toThrow(/unique constraints/);
    expect(() => createTableSql(sqliteTable("t", { a: integer("a").notNull().default(1) }))).toThrow(/default/);
    expect(() => createTableSql(sqliteTable("t", { a: integer("a").primaryKey({ autoIncrement: true }) }))).toThrow(/autoincrement/);
    expect(() => createTableSql(sqliteTable("T", { a: integer("a") }))).toThrow(/plain/);
  });
});
