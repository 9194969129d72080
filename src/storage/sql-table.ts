// What raw SQL sees of a drizzle table declaration (storage/schema.ts): the
// CREATE TABLE statement openDatabase() runs, and the type of a row that a
// prepared statement returns. The declarations are the one description of
// the schema; this turns them into DDL at runtime from drizzle's own metadata
// (getTableConfig), because drizzle-kit, which would generate it, is not part
// of the single-executable build.
//
// Only what the schema uses is rendered: column types, NOT NULL, single and
// composite primary keys. A declaration using anything else (an index, a
// default, a unique or check constraint, a foreign key, autoincrement) throws
// when the schema module loads, so such a change cannot be dropped silently;
// teach createTableSql to render it first.

import { type SQLiteColumn, type SQLiteTable, getTableConfig } from "drizzle-orm/sqlite-core";

/** Identifiers are written unquoted, as the DDL has always been: keep them plain. */
const PLAIN_NAME = /^[a-z_][a-z0-9_]*$/;

function plain(name: string, what: string): string {
  if (!PLAIN_NAME.test(name)) throw new Error(`schema: ${what} name ${JSON.stringify(name)} is not a plain lower-case identifier`);
  return name;
}

/**
 * `CREATE TABLE IF NOT EXISTS` for a table declaration, laid out exactly as
 * the hand-written DDL of schema versions 1-3 was (SQLite keeps the text in
 * sqlite_master, so databases created before and after read the same).
 */
export function createTableSql(table: SQLiteTable): string {
  const config = getTableConfig(table);
  const name = plain(config.name, "table");
  const unsupported = [
    config.indexes.length > 0 && "indexes",
    config.foreignKeys.length > 0 && "foreign keys",
    config.checks.length > 0 && "check constraints",
    config.uniqueConstraints.length > 0 && "unique constraints",
    config.primaryKeys.length > 1 && "more than one primary key",
  ].filter(Boolean);
  if (unsupported.length > 0) throw new Error(`schema: table ${name} declares ${unsupported.join(", ")}, which createTableSql does not render`);
  const lines = config.columns.map((c) => columnSql(name, c));
  for (const pk of config.primaryKeys) {
    lines.push(`  PRIMARY KEY (${pk.columns.map((c) => plain(c.name, "column")).join(", ")})`);
  }
  return `CREATE TABLE IF NOT EXISTS ${name} (\n${lines.join(",\n")}\n);\n`;
}

function columnSql(table: string, c: SQLiteColumn): string {
  const name = plain(c.name, "column");
  // An integer primary key declared with drizzle reports hasDefault (the rowid
  // supplies one) but carries no default value of its own.
  if (c.default !== undefined || c.defaultFn !== undefined || c.onUpdateFn !== undefined || c.isUnique || c.generated !== undefined) {
    throw new Error(`schema: column ${table}.${name} has a default, a unique flag or is generated, which createTableSql does not render`);
  }
  if ((c as { autoIncrement?: boolean }).autoIncrement === true) {
    throw new Error(`schema: column ${table}.${name} is autoincrement, which createTableSql does not render`);
  }
  // A column declared without a type (customType with an empty dataType) has none in SQL either.
  const type = c.getSQLType().toUpperCase();
  let sql = type === "" ? `  ${name}` : `  ${name} ${type}`;
  if (c.primary) {
    sql += " PRIMARY KEY";
    // An INTEGER PRIMARY KEY is the rowid, which is never NULL, and the DDL
    // never said NOT NULL for it. Any other primary key column of a rowid
    // table does accept NULL in SQLite (a legacy quirk) unless told otherwise.
    if (type !== "INTEGER" && c.notNull) sql += " NOT NULL";
  } else if (c.notNull) {
    sql += " NOT NULL";
  }
  return sql;
}

/** The value bun:sqlite returns for a column, by drizzle's column type (drizzle's mode mappings are not applied). */
type SqlValue<C extends SQLiteColumn, Int> = C["_"]["columnType"] extends "SQLiteInteger" | "SQLiteBoolean"
  ? Int // a boolean column holds 0 or 1
  : C["_"]["columnType"] extends "SQLiteText"
    ? string
    : C["_"]["columnType"] extends "SQLiteBlobBuffer"
      ? Uint8Array
      : C["_"]["columnType"] extends "SQLiteCustomColumn"
        ? C["_"]["data"]
        : unknown;

/**
 * A row of `table` as a raw `SELECT column, ...` returns it: keyed by SQL
 * column name, integers as `Int` (bigint for a statement with
 * safeIntegers(true)). The hot paths read rows through prepared statements,
 * not drizzle's query builder; typing those rows with this makes a column
 * renamed or retyped in the declaration a compile error there.
 */
export type SqlRow<T extends SQLiteTable, Int extends number | bigint = number> = {
  [K in keyof T["_"]["columns"] as T["_"]["columns"][K]["_"]["name"]]: T["_"]["columns"][K] extends SQLiteColumn
    ? SqlValue<T["_"]["columns"][K], Int> | (T["_"]["columns"][K]["_"]["notNull"] extends true ? never : null)
    : never;
};
