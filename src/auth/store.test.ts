// The auth store's rules, over an in-memory backend and over SQLite: etcd's
// errors, the revision (bumped by each change, untouched by a refused one or a
// repeated grant), etcd 3.5's permission ranges, and the root rules.
import { create } from "@bufbuild/protobuf";
import { expect, test } from "bun:test";
import { Permission_Type, PermissionSchema, type Role, type User } from "../gen/authpb/auth_pb.js";
import { type AuthRoleGrantPermissionRequest, AuthRoleGrantPermissionRequestSchema, AuthUserAddRequestSchema } from "../gen/etcdserverpb/rpc_pb.js";
import { EtcdError } from "../errors.js";
import { openDatabase } from "../storage/db.js";
import { SqliteAuthBackend } from "./sqlite-auth-backend.js";
import { type AuthBackend, AuthStore, isValidPermissionRange } from "./store.js";

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);

class MemoryAuthBackend implements AuthBackend {
  users_ = new Map<string, User>();
  roles_ = new Map<string, Role>();
  rev = 1;
  on = false;
  getUser = (n: string) => this.users_.get(n);
  putUser = (u: User) => void this.users_.set(dec(u.name), u);
  deleteUser = (n: string) => void this.users_.delete(n);
  users = () => [...this.users_.keys()].sort().map((k) => this.users_.get(k)!);
  getRole = (n: string) => this.roles_.get(n);
  putRole = (r: Role) => void this.roles_.set(dec(r.name), r);
  deleteRole = (n: string) => void this.roles_.delete(n);
  roles = () => [...this.roles_.keys()].sort().map((k) => this.roles_.get(k)!);
  revision = () => this.rev;
  setRevision = (r: number) => void (this.rev = r);
  enabled = () => this.on;
}

const HASH = btoa("$2b$10$abcdefghijklmnopqrstuuPq0W2nI0fZ3pU7wJ8l9sX1yZ2aB3cD4");
const addUser = (s: AuthStore, name: string) => s.userAdd(create(AuthUserAddRequestSchema, { name, hashedPassword: HASH }));
const grant = (name: string, type: Permission_Type, key: string, rangeEnd = ""): AuthRoleGrantPermissionRequest =>
  create(AuthRoleGrantPermissionRequestSchema, { name, perm: create(PermissionSchema, { permType: type, key: enc(key), rangeEnd: enc(rangeEnd) }) });

/** The message of the EtcdError fn throws, or "" when it does not throw. */
function errorOf(fn: () => unknown): string {
  try {
    fn();
    return "";
  } catch (e) {
    if (!(e instanceof EtcdError)) throw e;
    return e.message;
  }
}

test("a refused change keeps the data and the revision; each accepted one bumps the revision once", () => {
  const s = new AuthStore(new MemoryAuthBackend());
  expect(s.revision).toBe(1);
  addUser(s, "alice");
  s.roleAdd("reader");
  expect(s.revision).toBe(3);
  expect(errorOf(() => addUser(s, "alice"))).toBe("etcdserver: user name already exists");
  expect(errorOf(() => addUser(s, ""))).toBe("etcdserver: user name is empty");
  expect(errorOf(() => s.roleAdd("reader"))).toBe("etcdserver: role name already exists");
  expect(errorOf(() => s.roleAdd(""))).toBe("etcdserver: role name is empty");
  expect(errorOf(() => s.userGrantRole({ user: "alice", role: "nobody" } as never))).toBe("etcdserver: role name not found");
  expect(errorOf(() => s.userGrantRole({ user: "nobody", role: "reader" } as never))).toBe("etcdserver: user name not found");
  expect(errorOf(() => s.userRevokeRole({ name: "alice", role: "reader" } as never))).toBe("etcdserver: role is not granted to the user");
  expect(errorOf(() => s.userDelete("nobody"))).toBe("etcdserver: user name not found");
  expect(errorOf(() => s.roleDelete("nobody"))).toBe("etcdserver: role name not found");
  expect(errorOf(() => s.roleRevokePermission({ role: "reader", key: enc("k"), rangeEnd: new Uint8Array() } as never))).toBe(
    "etcdserver: permission is not granted to the role",
  );
  expect(s.revision).toBe(3);
  s.userGrantRole({ user: "alice", role: "reader" } as never);
  s.userGrantRole({ user: "alice", role: "reader" } as never); // repeated: ignored, revision unchanged
  expect(s.revision).toBe(4);
  expect(s.userGet("alice")).toEqual(["reader"]);
});

test("etcd 3.5's permission ranges: a key, a range above it, or from-key; nothing empty or backwards", () => {
  expect(isValidPermissionRange(enc("a"), enc(""))).toBe(true);
  expect(isValidPermissionRange(enc("a"), enc("b"))).toBe(true);
  expect(isValidPermissionRange(enc("a"), new Uint8Array([0]))).toBe(true);
  expect(isValidPermissionRange(enc(""), enc("b"))).toBe(false);
  expect(isValidPermissionRange(enc("b"), enc("a"))).toBe(false);
  expect(isValidPermissionRange(enc("a"), enc("a"))).toBe(false);
  const s = new AuthStore(new MemoryAuthBackend());
  s.roleAdd("r");
  expect(errorOf(() => s.roleGrantPermission(grant("r", Permission_Type.READ, "zoo", "foo")))).toBe("etcdserver: invalid auth management");
  expect(errorOf(() => s.roleGrantPermission(create(AuthRoleGrantPermissionRequestSchema, { name: "r" })))).toBe("etcdserver: permission not given");
  expect(s.roleGet("r")).toEqual([]);
});

test("permissions stay sorted by key; only the first at the key is updated in place, as etcd", () => {
  const s = new AuthStore(new MemoryAuthBackend());
  s.roleAdd("r");
  s.roleGrantPermission(grant("r", Permission_Type.READ, "m"));
  s.roleGrantPermission(grant("r", Permission_Type.READ, "a", "c"));
  s.roleGrantPermission(grant("r", Permission_Type.WRITE, "m")); // same key and end: updated
  s.roleGrantPermission(grant("r", Permission_Type.READ, "a", "z")); // same key, other end: added after
  s.roleGrantPermission(grant("r", Permission_Type.WRITE, "a", "z")); // not the first at "a": added again
  const shown = () => s.roleGet("r").map((p) => `${Permission_Type[p.permType]} ${dec(p.key)}-${dec(p.rangeEnd)}`);
  expect(shown()).toEqual(["READ a-c", "READ a-z", "WRITE a-z", "WRITE m-"]);
  s.roleRevokePermission({ role: "r", key: enc("a"), rangeEnd: enc("z") } as never); // every match goes
  expect(shown()).toEqual(["READ a-c", "WRITE m-"]);
});

test("deleting a role takes it from its users; root's role answers every key", () => {
  const s = new AuthStore(new MemoryAuthBackend());
  addUser(s, "alice");
  addUser(s, "bob");
  s.roleAdd("r");
  s.roleAdd("root");
  for (const user of ["alice", "bob"]) s.userGrantRole({ user, role: "r" } as never);
  s.userGrantRole({ user: "alice", role: "root" } as never);
  s.roleDelete("r");
  expect(s.userGet("alice")).toEqual(["root"]);
  expect(s.userGet("bob")).toEqual([]);
  const [all] = s.roleGet("root");
  expect([all!.permType, all!.key, all!.rangeEnd]).toEqual([Permission_Type.READWRITE, new Uint8Array(0), new Uint8Array([0])]);
});

test("while auth is on, root keeps its user and role", () => {
  const b = new MemoryAuthBackend();
  const s = new AuthStore(b);
  addUser(s, "root");
  s.roleAdd("root");
  s.userGrantRole({ user: "root", role: "root" } as never);
  b.on = true;
  expect(errorOf(() => s.userDelete("root"))).toBe("etcdserver: invalid auth management");
  expect(errorOf(() => s.roleDelete("root"))).toBe("etcdserver: invalid auth management");
  expect(errorOf(() => s.userRevokeRole({ name: "root", role: "root" } as never))).toBe("etcdserver: invalid auth management");
  b.on = false;
  s.userRevokeRole({ name: "root", role: "root" } as never);
  s.userDelete("root");
});

test("passwords: the hash is stored decoded; no-password users keep none; a hash that is not base64 is refused", () => {
  const b = new MemoryAuthBackend();
  const s = new AuthStore(b);
  addUser(s, "alice");
  expect(dec(b.getUser("alice")!.password)).toBe(atob(HASH));
  s.userAdd(create(AuthUserAddRequestSchema, { name: "cert", options: { noPassword: true }, hashedPassword: HASH }));
  expect(b.getUser("cert")!.password.length).toBe(0);
  s.userChangePassword({ name: "cert", password: "", hashedPassword: HASH } as never);
  expect(b.getUser("cert")!.password.length).toBe(0);
  expect(errorOf(() => s.userAdd(create(AuthUserAddRequestSchema, { name: "bad", hashedPassword: "not base64!" })))).toBe(
    "auth: authentication failed, password was given for no password user",
  );
  expect(b.getUser("bad")).toBeUndefined();
});

test("over SQLite: rows survive reopening the database; names list in byte order", () => {
  const db = openDatabase(":memory:");
  const s = new AuthStore(new SqliteAuthBackend(db));
  for (const name of ["b", "B", "a", "é"]) addUser(s, name);
  s.roleAdd("x");
  s.roleGrantPermission(grant("x", Permission_Type.READWRITE, "k", "\0"));
  s.userGrantRole({ user: "a", role: "x" } as never);
  const again = new AuthStore(new SqliteAuthBackend(db));
  expect(again.userList()).toEqual(["B", "a", "b", "é"]);
  expect(again.userGet("a")).toEqual(["x"]);
  expect(again.roleGet("x").map((p) => [p.permType, dec(p.key), [...p.rangeEnd]])).toEqual([[Permission_Type.READWRITE, "k", [0]]]);
  expect(again.revision).toBe(1 + 4 + 3);
  expect(again.enabled).toBe(false);
  db.close();
});

test("isPermitted: root may do anything, an unknown user nothing, and a change is seen at once", () => {
  const s = new AuthStore(new MemoryAuthBackend());
  addUser(s, "alice");
  addUser(s, "root");
  s.roleAdd("r");
  s.userGrantRole({ user: "alice", role: "r" } as never);
  s.userGrantRole({ user: "root", role: "root" } as never); // the root role need not exist
  const none = new Uint8Array();
  expect(s.isPermitted("alice", "read", enc("k"), none)).toBe(false);
  s.roleGrantPermission(grant("r", Permission_Type.READ, "k"));
  expect(s.isPermitted("alice", "read", enc("k"), none)).toBe(true); // the cache moved with the revision
  expect(s.isPermitted("alice", "write", enc("k"), none)).toBe(false);
  expect(s.isPermitted("root", "write", enc("any"), new Uint8Array([0]))).toBe(true);
  expect(s.isPermitted("nobody", "read", enc("k"), none)).toBe(false);
  s.userRevokeRole({ name: "alice", role: "r" } as never);
  expect(s.isPermitted("alice", "read", enc("k"), none)).toBe(false);
});
