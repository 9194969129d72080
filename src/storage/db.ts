// Opens the member's one SQLite database file and brings its schema up to date.
// This is the only place that chooses connection settings; every other module
// receives the open Database.

import { Database } from "bun:sqlite";
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { SCHEMA_SQL, SCHEMA_VERSION } from "./schema";

/** Page cache per connection, in KiB (negative = KiB for SQLite): holds the hot b-tree pages. */
const CACHE_KIB = 64 * 1024;
/** How long a statement waits for another connection's lock (backup tools, inspection). */
const BUSY_TIMEOUT_MS = 5000;

export function openDatabase(path: string): Database {
  const inMemory = path === ":memory:" || path === "";
  if (!inMemory) mkdirSync(dirname(path), { recursive: true });
  const db = new Database(path, { create: true, readwrite: true });
  // WAL: readers never block the writer and a commit is one sequential append.
  db.exec("PRAGMA journal_mode = WAL");
  // FULL: every commit fsyncs the WAL. The write log is acknowledged to
  // clients on the strength of its commit, so that commit must be durable.
  db.exec("PRAGMA synchronous = FULL");
  db.exec(`PRAGMA busy_timeout = ${BUSY_TIMEOUT_MS}`);
  db.exec(`PRAGMA cache_size = -${CACHE_KIB}`);
  // No foreign keys in the schema; keep SQLite from checking for them.
  db.exec("PRAGMA foreign_keys = OFF");
  db.exec("PRAGMA temp_store = MEMORY");
  try {
    migrate(db);
  } catch (e) {
    db.close();
    throw e;
  }
  return db;
}

/**
 * Creates the tables if they are missing and records the schema version in
 * `user_version`. Safe to run on every open; a file at the current version is left alone. A file written by a newer
 * tsetcd is refused rather than misread.
 */
function migrate(db: Database): void {
  const row = db.query("PRAGMA user_version").get() as { user_version: number };
  const version = row.user_version;
  if (version > SCHEMA_VERSION) {
    throw new Error(`database schema version ${version} is newer than this tsetcd supports (${SCHEMA_VERSION})`);
  }
  // Up to date: the tables exist (every restart takes this path; the DDL is skipped).
  if (version === SCHEMA_VERSION) return;
  db.transaction(() => {
    db.exec(SCHEMA_SQL);
    if (version < SCHEMA_VERSION) db.exec(`PRAGMA user_version = ${SCHEMA_VERSION}`);
  })();
}
