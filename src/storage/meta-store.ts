// Small named values the member persists beside its data: ids, term, the
// applied index. Written inside the caller's transaction so they always agree
// with the data they describe.
import type { Database, Statement } from "bun:sqlite";
import type { meta } from "./schema";
import type { SqlRow } from "./sql-table";

type ValueRow = Pick<SqlRow<typeof meta>, "value">;

export class MetaStore {
  private readonly select: Statement<ValueRow, [string]>;
  private readonly upsert: Statement;

  constructor(db: Database) {
    this.select = db.prepare<ValueRow, [string]>("SELECT value FROM meta WHERE name = ?1");
    this.upsert = db.prepare("INSERT INTO meta (name, value) VALUES (?1, ?2) ON CONFLICT(name) DO UPDATE SET value = excluded.value");
  }

  getNumber(name: string): number | undefined {
    const row = this.select.get(name);
    return row ? Number(row.value) : undefined;
  }

  setNumber(name: string, value: number): void {
    this.upsert.run(name, value);
  }

  getText(name: string): string | undefined {
    const row = this.select.get(name);
    return row ? String(row.value) : undefined;
  }

  setText(name: string, value: string): void {
    this.upsert.run(name, value);
  }

  /** 64-bit ids are kept as decimal text: SQLite integers are signed. */
  getBigInt(name: string): bigint | undefined {
    const row = this.select.get(name);
    return row ? BigInt(String(row.value)) : undefined;
  }

  setBigInt(name: string, value: bigint): void {
    this.upsert.run(name, value.toString());
  }
}
