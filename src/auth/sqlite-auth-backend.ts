// The auth store's rows in the member's SQLite database: encoded authpb.User and
// authpb.Role by name, and the revision and enabled flag in `meta`. Written
// inside the apply transaction, replaced with the rest when a snapshot installs.
import { fromBinary, toBinary } from "@bufbuild/protobuf";
import type { Database, Statement } from "bun:sqlite";
import { type Role, RoleSchema, type User, UserSchema } from "../gen/authpb/auth_pb.js";
import { MetaStore } from "../storage/meta-store.js";
import { MetaKey, type authRoles, type authUsers } from "../storage/schema.js";
import type { SqlRow } from "../storage/sql-table.js";
import type { AuthBackend } from "./store.js";

type UserRow = Pick<SqlRow<typeof authUsers>, "user">;
type RoleRow = Pick<SqlRow<typeof authRoles>, "role">;

const names = new TextDecoder();

export class SqliteAuthBackend implements AuthBackend {
  private readonly meta: MetaStore;
  private readonly selectUser: Statement<UserRow, [string]>;
  private readonly selectUsers: Statement<UserRow, []>;
  private readonly upsertUser: Statement;
  private readonly removeUser: Statement;
  private readonly selectRole: Statement<RoleRow, [string]>;
  private readonly selectRoles: Statement<RoleRow, []>;
  private readonly upsertRole: Statement;
  private readonly removeRole: Statement;

  constructor(db: Database) {
    this.meta = new MetaStore(db);
    this.selectUser = db.prepare("SELECT user FROM auth_users WHERE name = ?1");
    this.selectUsers = db.prepare("SELECT user FROM auth_users ORDER BY CAST(name AS BLOB)");
    this.upsertUser = db.prepare("INSERT INTO auth_users (name, user) VALUES (?1, ?2) ON CONFLICT (name) DO UPDATE SET user = excluded.user");
    this.removeUser = db.prepare("DELETE FROM auth_users WHERE name = ?1");
    this.selectRole = db.prepare("SELECT role FROM auth_roles WHERE name = ?1");
    this.selectRoles = db.prepare("SELECT role FROM auth_roles ORDER BY CAST(name AS BLOB)");
    this.upsertRole = db.prepare("INSERT INTO auth_roles (name, role) VALUES (?1, ?2) ON CONFLICT (name) DO UPDATE SET role = excluded.role");
    this.removeRole = db.prepare("DELETE FROM auth_roles WHERE name = ?1");
  }

  getUser(name: string): User | undefined {
    const row = this.selectUser.get(name);
    return row ? fromBinary(UserSchema, row.user) : undefined;
  }

  putUser(user: User): void {
    this.upsertUser.run(names.decode(user.name), toBinary(UserSchema, user));
  }

  deleteUser(name: string): void {
    this.removeUser.run(name);
  }

  users(): User[] {
    return this.selectUsers.all().map((r) => fromBinary(UserSchema, r.user));
  }

  getRole(name: string): Role | undefined {
    const row = this.selectRole.get(name);
    return row ? fromBinary(RoleSchema, row.role) : undefined;
  }

  putRole(role: Role): void {
    this.upsertRole.run(names.decode(role.name), toBinary(RoleSchema, role));
  }

  deleteRole(name: string): void {
    this.removeRole.run(name);
  }

  roles(): Role[] {
    return this.selectRoles.all().map((r) => fromBinary(RoleSchema, r.role));
  }

  revision(): number {
    // etcd starts a new auth store at revision 1.
    return this.meta.getNumber(MetaKey.authRevision) ?? 1;
  }

  setRevision(rev: number): void {
    this.meta.setNumber(MetaKey.authRevision, rev);
  }

  enabled(): boolean {
    return this.meta.getNumber(MetaKey.authEnabled) === 1;
  }
}
