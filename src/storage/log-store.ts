// The durable write log: one row per entry, appended inside the caller's
// transaction (whose commit is the fsync that makes a write acknowledgeable).
// The Raft issue stores its entries here too; a single member appends and
// commits in the same transaction.
import type { Database, Statement } from "bun:sqlite";

export const enum EntryType {
  /** A client request (tsetcdpb.InternalRequest); empty data = a new leader's empty entry. */
  Normal = 0,
  /** A membership change (the Raft issue gives it a payload; today: the bootstrap member). */
  ConfChange = 1,
  /** Member bookkeeping (published attributes, cluster version): JSON, no effect on the key space. */
  Member = 2,
}

export interface LogEntry {
  index: number;
  term: number;
  type: EntryType;
  data: Uint8Array;
}

export class LogStore {
  private readonly insert: Statement;
  private readonly selectRange: Statement;
  private readonly bounds: Statement;
  private readonly deleteBefore: Statement;

  constructor(db: Database) {
    this.insert = db.prepare("INSERT INTO log (idx, term, type, data) VALUES (?1, ?2, ?3, ?4)");
    this.selectRange = db.prepare("SELECT idx AS 'index', term, type, data FROM log WHERE idx >= ?1 AND idx < ?2 ORDER BY idx");
    this.bounds = db.prepare("SELECT MIN(idx) AS first, MAX(idx) AS last FROM log");
    this.deleteBefore = db.prepare("DELETE FROM log WHERE idx < ?1");
  }

  append(index: number, term: number, type: EntryType, data: Uint8Array): void {
    this.insert.run(index, term, type, data);
  }

  /** Entries with lo <= index < hi, in order. */
  entries(lo: number, hi: number): LogEntry[] {
    return this.selectRange.all(lo, hi) as LogEntry[];
  }

  /** First and last stored index; both 0 when the log is empty. */
  range(): { first: number; last: number } {
    const row = this.bounds.get() as { first: number | null; last: number | null };
    return { first: row.first ?? 0, last: row.last ?? 0 };
  }

  /** Drops entries below `index` (they are applied and no longer needed). */
  compactBefore(index: number): void {
    this.deleteBefore.run(index);
  }
}
