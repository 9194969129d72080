// KvBackend over bun:sqlite. Every statement is prepared once (lazily, per
// query shape) and reused: preparing, or drizzle's query builder, would cost
// more than the statement itself. Reads select straight into the shape of an
// mvccpb.KeyValue (a constant "$typeName" column, int64 columns as bigint), so
// each returned row already is the protobuf message: no copy per row.
// No transactions are opened here; the apply loop wraps batches in one (a
// statement outside any transaction still works, as its own transaction).

import type { Database, Statement } from "bun:sqlite";
import type { KeyValue } from "../gen/mvccpb/kv_pb";
import { MetaKey } from "../storage/schema";
import type { KvBackend, StoreMeta } from "./backend";
import type { RangeEnd } from "./key-range";

/** Index of a range's shape in the statement caches. */
const enum Shape {
  /** range_end empty: one key */
  Single = 0,
  /** range_end "\0": every key >= key */
  From = 1,
  /** [key, range_end) */
  Between = 2,
}

function shapeOf(end: RangeEnd): Shape {
  if (end === null) return Shape.Single;
  return end.length === 0 ? Shape.From : Shape.Between;
}

/** WHERE clause on column `col` for each shape; parameters ?1 = key, ?2 = end. */
function keyWhere(shape: Shape, col: string): string {
  switch (shape) {
    case Shape.Single:
      return `${col} = ?1`;
    case Shape.From:
      return `${col} >= ?1`;
    case Shape.Between:
      return `${col} >= ?1 AND ${col} < ?2`;
  }
}

const KV_TYPE = `'mvccpb.KeyValue' AS "$typeName"`;

/** SQLite's LIMIT -1 means no limit. */
const sqlLimit = (limit: number) => (limit > 0 ? limit : -1);

type Row = KeyValue;
type CountRow = { n: number };

export class SqliteKvBackend implements KvBackend {
  private readonly db: Database;
  // [shape * 2 + keysOnly] -> statement
  private readonly latestStmts: (Statement<Row> | undefined)[] = [];
  private readonly latestCountStmts: (Statement<CountRow> | undefined)[] = [];
  private readonly atStmts: (Statement<Row> | undefined)[] = [];
  private readonly atCountStmts: (Statement<CountRow> | undefined)[] = [];
  private readonly insertHistory: Statement;
  private readonly upsertLatest: Statement;
  private readonly removeLatest: Statement;
  private readonly compactStmt: Statement;
  private readonly historyStmt: Statement<Row>;
  private readonly readCompactRev: Statement<{ value: number | bigint | null }>;
  private readonly writeCompactRevStmt: Statement;
  private readonly maxRevStmt: Statement<{ m: number | null }>;

  constructor(db: Database) {
    this.db = db;
    this.insertHistory = db.prepare(
      "INSERT INTO kv_history (rev_main, rev_sub, key, create_rev, version, value, lease, tombstone) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    );
    this.upsertLatest = db.prepare(
      "INSERT INTO kv_latest (key, create_rev, mod_rev, mod_sub, version, value, lease) VALUES (?, ?, ?, ?, ?, ?, ?) " +
        "ON CONFLICT (key) DO UPDATE SET create_rev = excluded.create_rev, mod_rev = excluded.mod_rev, " +
        "mod_sub = excluded.mod_sub, version = excluded.version, value = excluded.value, lease = excluded.lease",
    );
    this.removeLatest = db.prepare("DELETE FROM kv_latest WHERE key = ?");
    // A row goes if it is a tombstone or if a newer revision of its key is
    // also <= the compact revision; what is left is, per key, the newest
    // non-tombstone revision <= rev, which reads at >= rev still need.
    this.compactStmt = db.prepare(
      "DELETE FROM kv_history WHERE rev_main <= ?1 AND (tombstone = 1 OR EXISTS (" +
        "SELECT 1 FROM kv_history AS n WHERE n.key = kv_history.key " +
        "AND (n.rev_main, n.rev_sub) > (kv_history.rev_main, kv_history.rev_sub) AND n.rev_main <= ?1))",
    );
    this.historyStmt = db
      .prepare<Row, [number, number]>(
        `SELECT ${KV_TYPE}, key, create_rev AS createRevision, rev_main AS modRevision, version, value, lease ` +
          "FROM kv_history WHERE rev_main >= ?1 ORDER BY rev_main, rev_sub LIMIT ?2",
      )
      .safeIntegers(true);
    this.readCompactRev = db.prepare(`SELECT value FROM meta WHERE name = '${MetaKey.compactRev}'`);
    this.writeCompactRevStmt = db.prepare(
      `INSERT INTO meta (name, value) VALUES ('${MetaKey.compactRev}', ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value`,
    );
    this.maxRevStmt = db.prepare("SELECT max(rev_main) AS m FROM kv_history");
  }

  getLatest(key: Uint8Array, withValue: boolean): KeyValue | null {
    return this.latestStmt(Shape.Single, !withValue).get(key);
  }

  rangeLatest(key: Uint8Array, end: RangeEnd, limit: number, keysOnly: boolean): KeyValue[] {
    const shape = shapeOf(end);
    const stmt = this.latestStmt(shape, keysOnly);
    switch (shape) {
      case Shape.Single: {
        const row = stmt.get(key);
        return row === null ? [] : [row];
      }
      case Shape.From:
        return stmt.all(key, sqlLimit(limit));
      case Shape.Between:
        return stmt.all(key, end!, sqlLimit(limit));
    }
  }

  countLatest(key: Uint8Array, end: RangeEnd): number {
    const shape = shapeOf(end);
    let stmt = this.latestCountStmts[shape];
    if (stmt === undefined) {
      stmt = this.db.prepare<CountRow, any[]>(`SELECT count(*) AS n FROM kv_latest WHERE ${keyWhere(shape, "key")}`);
      this.latestCountStmts[shape] = stmt;
    }
    return (shape === Shape.Between ? stmt.get(key, end!) : stmt.get(key))!.n;
  }

  rangeAt(key: Uint8Array, end: RangeEnd, rev: number, limit: number, keysOnly: boolean): KeyValue[] {
    const shape = shapeOf(end);
    const i = shape * 2 + (keysOnly ? 1 : 0);
    let stmt = this.atStmts[i];
    if (stmt === undefined) {
      const value = keysOnly ? "x'' AS value" : "h.value";
      stmt = this.db
        .prepare<Row, any[]>(
          `SELECT ${KV_TYPE}, h.key, h.create_rev AS createRevision, h.rev_main AS modRevision, h.version, ${value}, h.lease ` +
            `FROM kv_history AS h WHERE ${atWhere(shape)} ORDER BY h.key LIMIT ?4`,
        )
        .safeIntegers(true);
      this.atStmts[i] = stmt;
    }
    return stmt.all(key, end, rev, sqlLimit(limit));
  }

  countAt(key: Uint8Array, end: RangeEnd, rev: number): number {
    const shape = shapeOf(end);
    let stmt = this.atCountStmts[shape];
    if (stmt === undefined) {
      stmt = this.db.prepare<CountRow, any[]>(`SELECT count(*) AS n FROM kv_history AS h WHERE ${atWhere(shape)}`);
      this.atCountStmts[shape] = stmt;
    }
    return stmt.get(key, end, rev)!.n;
  }

  appendHistory(
    revMain: number,
    revSub: number,
    key: Uint8Array,
    createRev: number,
    version: number,
    value: Uint8Array,
    lease: bigint,
    tombstone: boolean,
  ): void {
    this.insertHistory.run(revMain, revSub, key, createRev, version, value, lease, tombstone ? 1 : 0);
  }

  putLatest(
    key: Uint8Array,
    value: Uint8Array,
    createRev: number,
    modRev: number,
    modSub: number,
    version: number,
    lease: bigint,
  ): void {
    this.upsertLatest.run(key, createRev, modRev, modSub, version, value, lease);
  }

  deleteLatest(key: Uint8Array): void {
    this.removeLatest.run(key);
  }

  compact(rev: number): void {
    this.compactStmt.run(rev);
  }

  readHistory(fromRev: number, limit: number): KeyValue[] {
    return this.historyStmt.all(fromRev, sqlLimit(limit));
  }

  readMeta(): StoreMeta {
    const c = this.readCompactRev.get();
    const compactRev = c === null || c.value === null ? -1 : Number(c.value);
    const m = this.maxRevStmt.get()?.m ?? 0;
    return { rev: Math.max(m, compactRev, 1), compactRev };
  }

  writeCompactRev(rev: number): void {
    this.writeCompactRevStmt.run(rev);
  }

  private latestStmt(shape: Shape, keysOnly: boolean): Statement<Row> {
    const i = shape * 2 + (keysOnly ? 1 : 0);
    let stmt = this.latestStmts[i];
    if (stmt === undefined) {
      const value = keysOnly ? "x'' AS value" : "value";
      const tail = shape === Shape.Single ? "" : ` ORDER BY key LIMIT ?${shape === Shape.From ? 2 : 3}`;
      stmt = this.db
        .prepare<Row, any[]>(
          `SELECT ${KV_TYPE}, key, create_rev AS createRevision, mod_rev AS modRevision, version, ${value}, lease ` +
            `FROM kv_latest WHERE ${keyWhere(shape, "key")}${tail}`,
        )
        .safeIntegers(true);
      this.latestStmts[i] = stmt;
    }
    return stmt;
  }
}

/**
 * Rows of kv_history alive at revision ?3 within the range (?1 key, ?2 end):
 * a key's newest revision <= ?3, when that is not a tombstone. The NOT EXISTS
 * probe is one seek in the (key, rev_main, rev_sub) index per candidate row.
 * Every shape takes the same four parameters; SQLite allows the unused ?2.
 */
function atWhere(shape: Shape): string {
  return (
    `${keyWhere(shape, "h.key")} AND h.rev_main <= ?3 AND h.tombstone = 0 AND NOT EXISTS (` +
    "SELECT 1 FROM kv_history AS n WHERE n.key = h.key " +
    "AND (n.rev_main, n.rev_sub) > (h.rev_main, h.rev_sub) AND n.rev_main <= ?3)"
  );
}

/** The name the server code imports. */
export { SqliteKvBackend as SqliteBackend };
