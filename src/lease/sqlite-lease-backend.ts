// The lessor's storage in the member's SQLite database: the `leases` table,
// written inside the apply transaction (so a lease and the keys it deletes
// change together), and kv_latest read once to rebuild attachments.
import type { Database, Statement } from "bun:sqlite";
import type { kvLatest, leases } from "../storage/schema.js";
import type { SqlRow } from "../storage/sql-table.js";
import type { LeaseBackend, LeaseRecord } from "./lessor.js";

// Both statements read int64 columns as bigint (safeIntegers).
type LeaseRow = SqlRow<typeof leases, bigint>;
type AttachedRow = Pick<SqlRow<typeof kvLatest, bigint>, "key" | "lease">;

export class SqliteLeaseBackend implements LeaseBackend {
  private readonly upsert: Statement;
  private readonly remove: Statement;

  constructor(private readonly db: Database) {
    this.upsert = db.prepare(
      "INSERT INTO leases (id, ttl, remaining_ttl) VALUES (?1, ?2, ?3) ON CONFLICT (id) DO UPDATE SET ttl = excluded.ttl, remaining_ttl = excluded.remaining_ttl",
    );
    this.remove = db.prepare("DELETE FROM leases WHERE id = ?1");
  }

  all(): LeaseRecord[] {
    const rows = this.db.prepare<LeaseRow, []>("SELECT id, ttl, remaining_ttl FROM leases ORDER BY id").safeIntegers(true).all();
    return rows.map((r) => ({ id: r.id, ttl: Number(r.ttl), remainingTtl: Number(r.remaining_ttl) }));
  }

  attachedKeys(): Array<{ key: Uint8Array; lease: bigint }> {
    return this.db.prepare<AttachedRow, []>("SELECT key, lease FROM kv_latest WHERE lease != 0").safeIntegers(true).all();
  }

  put(r: LeaseRecord): void {
    this.upsert.run(r.id, r.ttl, r.remainingTtl);
  }

  delete(id: bigint): void {
    this.remove.run(id);
  }
}

/** For tests: the same contract in memory, with the attached keys given by the test. */
export class MemoryLeaseBackend implements LeaseBackend {
  readonly rows = new Map<bigint, LeaseRecord>();
  keys: Array<{ key: Uint8Array; lease: bigint }> = [];

  all(): LeaseRecord[] {
    return [...this.rows.values()].map((r) => ({ ...r }));
  }

  attachedKeys(): Array<{ key: Uint8Array; lease: bigint }> {
    return this.keys;
  }

  put(r: LeaseRecord): void {
    this.rows.set(r.id, { ...r });
  }

  delete(id: bigint): void {
    this.rows.delete(id);
  }
}
