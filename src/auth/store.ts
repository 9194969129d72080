// The auth store's users and roles (etcd's server/auth/store.go): every change
// is applied from the log on every member, so each method is deterministic,
// either throws etcd's error having changed nothing or changes the backend and
// bumps the auth revision. Passwords arrive already hashed (the member that
// took the request hashed it): the log never carries a plain password.
import { create } from "@bufbuild/protobuf";
import {
  type Permission,
  PermissionSchema,
  Permission_Type,
  type Role,
  RoleSchema,
  type User,
  UserAddOptionsSchema,
  UserSchema,
} from "../gen/authpb/auth_pb.js";
import type {
  AuthRoleGrantPermissionRequest,
  AuthRoleRevokePermissionRequest,
  AuthUserAddRequest,
  AuthUserChangePasswordRequest,
  AuthUserGrantRoleRequest,
  AuthUserRevokeRoleRequest,
} from "../gen/etcdserverpb/rpc_pb.js";
import { Errors } from "../errors.js";
import { compareBytes, bytesEqual } from "../bytes.js";
import { type Access, isOpenEnded, UserPermissions } from "./permissions.js";

export const ROOT_USER = "root";
export const ROOT_ROLE = "root";

/** What RoleGet answers for the root role: read and write on every key (etcd's rootPerm). */
const ROOT_PERMISSION: Permission = create(PermissionSchema, { permType: Permission_Type.READWRITE, key: new Uint8Array(0), rangeEnd: new Uint8Array([0]) });

/** Where users, roles, the revision and the enabled flag live (written inside the apply transaction). */
export interface AuthBackend {
  getUser(name: string): User | undefined;
  putUser(user: User): void;
  deleteUser(name: string): void;
  /** Every user, by name in byte order. */
  users(): User[];
  getRole(name: string): Role | undefined;
  putRole(role: Role): void;
  deleteRole(name: string): void;
  /** Every role, by name in byte order. */
  roles(): Role[];
  revision(): number;
  setRevision(rev: number): void;
  enabled(): boolean;
}

const text = new TextDecoder();
const bytes = new TextEncoder();

export class AuthStore {
  private readonly cache = new Map<string, UserPermissions | "root" | undefined>();
  private cachedAt = -1;

  constructor(private readonly backend: AuthBackend) {}

  get revision(): number {
    return this.backend.revision();
  }

  get enabled(): boolean {
    return this.backend.enabled();
  }

  // ---- users -------------------------------------------------------------------------------

  userAdd(r: AuthUserAddRequest): void {
    if (r.name === "") throw Errors.userEmpty();
    if (this.backend.getUser(r.name)) throw Errors.userAlreadyExist();
    const options = create(UserAddOptionsSchema, { noPassword: r.options?.noPassword ?? false });
    const password = options.noPassword ? new Uint8Array(0) : decodeHash(r.hashedPassword);
    this.backend.putUser(create(UserSchema, { name: bytes.encode(r.name), password, options }));
    this.commit();
  }

  userDelete(name: string): void {
    if (this.enabled && name === ROOT_USER) throw Errors.invalidAuthMgmt();
    if (!this.backend.getUser(name)) throw Errors.userNotFound();
    this.backend.deleteUser(name);
    this.commit();
  }

  userChangePassword(r: AuthUserChangePasswordRequest): void {
    const user = this.backend.getUser(r.name);
    if (!user) throw Errors.userNotFound();
    const password = user.options?.noPassword ? new Uint8Array(0) : decodeHash(r.hashedPassword);
    this.backend.putUser(create(UserSchema, { ...user, password }));
    this.commit();
  }

  userGrantRole(r: AuthUserGrantRoleRequest): void {
    const user = this.backend.getUser(r.user);
    if (!user) throw Errors.userNotFound();
    // As etcd: the root role may be granted before it exists.
    if (r.role !== ROOT_ROLE && !this.backend.getRole(r.role)) throw Errors.roleNotFound();
    if (user.roles.includes(r.role)) return; // etcd ignores a repeated grant, revision unchanged
    this.backend.putUser(create(UserSchema, { ...user, roles: [...user.roles, r.role].sort(compareNames) }));
    this.commit();
  }

  userRevokeRole(r: AuthUserRevokeRoleRequest): void {
    if (this.enabled && r.name === ROOT_USER && r.role === ROOT_ROLE) throw Errors.invalidAuthMgmt();
    const user = this.backend.getUser(r.name);
    if (!user) throw Errors.userNotFound();
    const roles = user.roles.filter((role) => role !== r.role);
    if (roles.length === user.roles.length) throw Errors.roleNotGranted();
    this.backend.putUser(create(UserSchema, { ...user, roles }));
    this.commit();
  }

  /** The user's roles (read path). */
  userGet(name: string): string[] {
    const user = this.backend.getUser(name);
    if (!user) throw Errors.userNotFound();
    return [...user.roles];
  }

  userList(): string[] {
    return this.backend.users().map((u) => text.decode(u.name));
  }

  // ---- roles -------------------------------------------------------------------------------

  roleAdd(name: string): void {
    if (name === "") throw Errors.roleEmpty();
    if (this.backend.getRole(name)) throw Errors.roleAlreadyExist();
    this.backend.putRole(create(RoleSchema, { name: bytes.encode(name) }));
    this.commit();
  }

  /** Deletes the role and takes it from every user holding it, in one change. */
  roleDelete(name: string): void {
    if (this.enabled && name === ROOT_ROLE) throw Errors.invalidAuthMgmt();
    if (!this.backend.getRole(name)) throw Errors.roleNotFound();
    this.backend.deleteRole(name);
    for (const user of this.backend.users()) {
      if (!user.roles.includes(name)) continue;
      this.backend.putUser(create(UserSchema, { ...user, roles: user.roles.filter((r) => r !== name) }));
    }
    this.commit();
  }

  /** Grants, or changes the type of, the permission on exactly [key, rangeEnd); kept sorted by key. */
  roleGrantPermission(r: AuthRoleGrantPermissionRequest): void {
    const perm = r.perm;
    if (!perm) throw Errors.permissionNotGiven();
    if (!isValidPermissionRange(perm.key, perm.rangeEnd)) throw Errors.invalidAuthMgmt();
    const role = this.backend.getRole(r.name);
    if (!role) throw Errors.roleNotFound();
    // As etcd: only the first permission at or after the key is a candidate for an update, so
    // a second range from the same key is added beside the first, not merged into it.
    const at = role.keyPermission.findIndex((p) => compareBytes(p.key, perm.key) >= 0);
    const candidate = at >= 0 ? role.keyPermission[at] : undefined;
    const granted = create(PermissionSchema, { permType: perm.permType, key: perm.key, rangeEnd: perm.rangeEnd });
    const keyPermission = [...role.keyPermission];
    if (candidate && bytesEqual(candidate.key, perm.key) && bytesEqual(candidate.rangeEnd, perm.rangeEnd)) keyPermission[at] = granted;
    else {
      keyPermission.push(granted);
      keyPermission.sort((a, b) => compareBytes(a.key, b.key)); // stable: equal keys keep their order
    }
    this.backend.putRole(create(RoleSchema, { name: role.name, keyPermission }));
    this.commit();
  }

  roleRevokePermission(r: AuthRoleRevokePermissionRequest): void {
    const role = this.backend.getRole(r.role);
    if (!role) throw Errors.roleNotFound();
    const keyPermission = role.keyPermission.filter((p) => !(bytesEqual(p.key, r.key) && bytesEqual(p.rangeEnd, r.rangeEnd)));
    if (keyPermission.length === role.keyPermission.length) throw Errors.permissionNotGranted();
    this.backend.putRole(create(RoleSchema, { name: role.name, keyPermission }));
    this.commit();
  }

  /** The role's permissions (read path); the root role answers "everything". */
  roleGet(name: string): Permission[] {
    const role = this.backend.getRole(name);
    if (!role) throw Errors.roleNotFound();
    return name === ROOT_ROLE ? [ROOT_PERMISSION] : [...role.keyPermission];
  }

  roleList(): string[] {
    return this.backend.roles().map((r) => text.decode(r.name));
  }

  /**
   * Whether the user may `access` the key (rangeEnd empty) or the whole range: a user holding
   * the root role may do anything; an unknown user nothing (etcd's isOpPermitted after the
   * enabled and revision checks, which are the caller's).
   */
  isPermitted(userName: string, access: Access, key: Uint8Array, rangeEnd: Uint8Array): boolean {
    const perms = this.permissionsOf(userName);
    return perms === "root" || (perms !== undefined && perms.permits(access, key, rangeEnd));
  }

  /** Merged permissions per user, rebuilt after any change (the revision moved), as etcd's cache. */
  private permissionsOf(userName: string): UserPermissions | "root" | undefined {
    const rev = this.backend.revision();
    if (rev !== this.cachedAt) {
      this.cache.clear();
      this.cachedAt = rev;
    }
    if (this.cache.has(userName)) return this.cache.get(userName);
    const user = this.backend.getUser(userName);
    const perms = !user
      ? undefined
      : user.roles.includes(ROOT_ROLE)
        ? "root"
        : new UserPermissions(user.roles.flatMap((r) => this.backend.getRole(r)?.keyPermission ?? []));
    this.cache.set(userName, perms);
    return perms;
  }

  private commit(): void {
    this.backend.setRevision(this.backend.revision() + 1);
  }
}

/**
 * The log carries etcd's hashedPassword: the bcrypt hash, base64 encoded (a client may send one
 * itself). Not base64: etcd's answer to a password it cannot take.
 */
function decodeHash(hashedPassword: string): Uint8Array {
  if (hashedPassword.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(hashedPassword)) throw Errors.noPasswordUser();
  return Uint8Array.from(atob(hashedPassword), (c) => c.charCodeAt(0));
}

/**
 * etcd's isValidPermissionRange: a key is needed; no range end is one key; otherwise the end
 * must be above the key, or be "\0" (every key from the key on).
 */
export function isValidPermissionRange(key: Uint8Array, rangeEnd: Uint8Array): boolean {
  if (key.length === 0) return false;
  if (rangeEnd.length === 0) return true;
  if (compareBytes(key, rangeEnd) < 0) return true;
  return isOpenEnded(rangeEnd);
}

function compareNames(a: string, b: string): number {
  return compareBytes(bytes.encode(a), bytes.encode(b));
}
