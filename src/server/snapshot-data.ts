// A Raft snapshot's data is the member's database itself. The sender streams a
// consistent copy of its SQLite file (VACUUM INTO: a transaction-consistent,
// compact copy); the receiver copies the replicated tables out of that file
// into its own database, inside the transaction that also records the
// snapshot in its Raft storage, so a crash leaves either the old state or the
// new one.
//
// The copy is taken when the transport starts streaming, which may be after
// the snapshot's index: the copy then holds MORE than the snapshot describes.
// That is safe because the copy carries its own applied index (meta row
// `applied_index`), and a member skips every entry at or below its applied
// index (etcd's consistent index): entries between the snapshot's index and
// the copy's applied index are delivered again by Raft and not re-applied
// (conf changes are re-applied to the Raft configuration, which is idempotent).
import type { Database } from "bun:sqlite";
import { createReadStream, rmSync } from "node:fs";
import { join } from "node:path";
import { SCHEMA_VERSION } from "../storage/schema.js";
import { APPLIED_INDEX, LOCAL_META } from "./bootstrap.js";

/** Tables a snapshot never carries: the log (Raft storage) and meta, which is copied row by row. */
const NOT_REPLICATED_TABLES = new Set(["log", "meta"]);
const ALIAS = "snap";

/** meta rows that stay the receiver's own: its identity and its Raft storage rows. */
function isLocalMetaSql(column: string): string {
  const names = Object.values(LOCAL_META)
    .map((n) => `'${n}'`)
    .join(", ");
  return `(${column} IN (${names}) OR ${column} LIKE 'raft\\_%' ESCAPE '\\')`;
}

let copySeq = 0;

/** Writes a consistent copy of the database into `dir`; returns its path. Blocks while copying. */
export function copyDatabase(db: Database, dir: string): string {
  const path = join(dir, `outgoing-${process.pid}-${++copySeq}.db`);
  db.prepare("VACUUM INTO ?1").run(path);
  return path;
}

/** Streams a file in chunks, then deletes it (also when the reader stops early). */
export async function* streamAndDelete(path: string, chunkBytes: number): AsyncIterable<Uint8Array> {
  try {
    for await (const chunk of createReadStream(path, { highWaterMark: chunkBytes })) yield chunk as Uint8Array;
  } finally {
    rmSync(path, { force: true });
  }
}

/** Attaches a received snapshot file (outside any transaction: SQLite refuses ATTACH inside one). */
export function attachSnapshot(db: Database, path: string): void {
  db.prepare(`ATTACH DATABASE ?1 AS ${ALIAS}`).run(path);
  const v = (db.query(`PRAGMA ${ALIAS}.user_version`).get() as { user_version: number }).user_version;
  if (v !== SCHEMA_VERSION) {
    detachSnapshot(db);
    throw new Error(`snapshot database has schema version ${v}, this member has ${SCHEMA_VERSION}`);
  }
}

export function detachSnapshot(db: Database): void {
  db.run(`DETACH DATABASE ${ALIAS}`);
}

/**
 * Replaces the replicated state with the attached snapshot's; runs inside the
 * caller's transaction. Returns the snapshot's applied index.
 */
export function installAttachedSnapshot(db: Database): number {
  const tables = db.query(`SELECT name FROM ${ALIAS}.sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'`).all() as {
    name: string;
  }[];
  const ours = new Set((db.query("SELECT name FROM main.sqlite_master WHERE type = 'table'").all() as { name: string }[]).map((r) => r.name));
  for (const { name } of tables) {
    if (NOT_REPLICATED_TABLES.has(name)) continue;
    if (!ours.has(name)) throw new Error(`snapshot has a table this member does not know: ${name}`);
  }
  for (const name of ours) {
    if (NOT_REPLICATED_TABLES.has(name) || name.startsWith("sqlite_")) continue;
    db.run(`DELETE FROM main."${name}"`);
    if (tables.some((t) => t.name === name)) db.run(`INSERT INTO main."${name}" SELECT * FROM ${ALIAS}."${name}"`);
  }
  db.run(`DELETE FROM main.meta WHERE NOT ${isLocalMetaSql("name")}`);
  db.run(`INSERT INTO main.meta SELECT * FROM ${ALIAS}.meta WHERE NOT ${isLocalMetaSql("name")}`);
  const row = db.query(`SELECT value FROM ${ALIAS}.meta WHERE name = ?1`).get(APPLIED_INDEX) as { value: number } | null;
  return Number(row?.value ?? 0);
}
