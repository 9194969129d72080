// The member's auth request surface (etcd's v3_server.go auth calls): changes
// to users and roles are proposed to the log and answered once applied here;
// reads are served after a linearizability barrier, which is what etcd's
// round trip through the log gives them. Passwords are hashed here, before
// proposing, so the log never carries one in plain text.
import { create } from "@bufbuild/protobuf";
import {
  type AuthRoleAddRequest,
  type AuthRoleAddResponse,
  type AuthRoleDeleteRequest,
  type AuthRoleDeleteResponse,
  type AuthRoleGetResponse,
  AuthRoleGetResponseSchema,
  type AuthRoleGrantPermissionRequest,
  type AuthRoleGrantPermissionResponse,
  type AuthRoleListResponse,
  AuthRoleListResponseSchema,
  type AuthRoleRevokePermissionRequest,
  type AuthRoleRevokePermissionResponse,
  type AuthStatusResponse,
  AuthStatusResponseSchema,
  type AuthUserAddRequest,
  type AuthUserAddResponse,
  type AuthUserChangePasswordRequest,
  type AuthUserChangePasswordResponse,
  type AuthUserDeleteRequest,
  type AuthUserDeleteResponse,
  type AuthUserGetResponse,
  AuthUserGetResponseSchema,
  type AuthUserGrantRoleRequest,
  type AuthUserGrantRoleResponse,
  type AuthUserListResponse,
  AuthUserListResponseSchema,
  type AuthUserRevokeRoleRequest,
  type AuthUserRevokeRoleResponse,
} from "../gen/etcdserverpb/rpc_pb.js";
import type { Propose } from "./requests.js";
import type { MemberState } from "./state.js";
import type { HeaderSource } from "./v3-server.js";

/** The Auth service's user and role calls, as the API layer sees them. */
export interface AuthApi {
  userAdd(req: AuthUserAddRequest): Promise<AuthUserAddResponse>;
  userDelete(req: AuthUserDeleteRequest): Promise<AuthUserDeleteResponse>;
  userChangePassword(req: AuthUserChangePasswordRequest): Promise<AuthUserChangePasswordResponse>;
  userGrantRole(req: AuthUserGrantRoleRequest): Promise<AuthUserGrantRoleResponse>;
  userRevokeRole(req: AuthUserRevokeRoleRequest): Promise<AuthUserRevokeRoleResponse>;
  userGet(name: string): Promise<AuthUserGetResponse>;
  userList(): Promise<AuthUserListResponse>;
  roleAdd(req: AuthRoleAddRequest): Promise<AuthRoleAddResponse>;
  roleDelete(req: AuthRoleDeleteRequest): Promise<AuthRoleDeleteResponse>;
  roleGrantPermission(req: AuthRoleGrantPermissionRequest): Promise<AuthRoleGrantPermissionResponse>;
  roleRevokePermission(req: AuthRoleRevokePermissionRequest): Promise<AuthRoleRevokePermissionResponse>;
  roleGet(role: string): Promise<AuthRoleGetResponse>;
  roleList(): Promise<AuthRoleListResponse>;
  authStatus(): Promise<AuthStatusResponse>;
}

export interface AuthServerDeps {
  state: MemberState;
  propose: Propose;
  headers: HeaderSource;
  /** Resolves when a read now would be linearizable (undefined: it already is). */
  barrier(): Promise<void> | undefined;
  /** bcrypt at the member's --bcrypt-cost: the hash as text. */
  hashPassword(password: string): Promise<string>;
}

export class AuthServer implements AuthApi {
  constructor(private readonly d: AuthServerDeps) {}

  async userAdd(req: AuthUserAddRequest): Promise<AuthUserAddResponse> {
    const value = req.options?.noPassword ? req : { ...req, ...(await this.hashed(req.password)) };
    return this.d.propose({ case: "authUserAdd", value });
  }

  async userDelete(req: AuthUserDeleteRequest): Promise<AuthUserDeleteResponse> {
    return this.d.propose({ case: "authUserDelete", value: req });
  }

  async userChangePassword(req: AuthUserChangePasswordRequest): Promise<AuthUserChangePasswordResponse> {
    const value = req.password === "" ? req : { ...req, ...(await this.hashed(req.password)) };
    return this.d.propose({ case: "authUserChangePassword", value });
  }

  async userGrantRole(req: AuthUserGrantRoleRequest): Promise<AuthUserGrantRoleResponse> {
    return this.d.propose({ case: "authUserGrantRole", value: req });
  }

  async userRevokeRole(req: AuthUserRevokeRoleRequest): Promise<AuthUserRevokeRoleResponse> {
    return this.d.propose({ case: "authUserRevokeRole", value: req });
  }

  async userGet(name: string): Promise<AuthUserGetResponse> {
    await this.d.barrier();
    return create(AuthUserGetResponseSchema, { header: this.d.headers.header(), roles: this.d.state.auth.userGet(name) });
  }

  async userList(): Promise<AuthUserListResponse> {
    await this.d.barrier();
    return create(AuthUserListResponseSchema, { header: this.d.headers.header(), users: this.d.state.auth.userList() });
  }

  async roleAdd(req: AuthRoleAddRequest): Promise<AuthRoleAddResponse> {
    return this.d.propose({ case: "authRoleAdd", value: req });
  }

  async roleDelete(req: AuthRoleDeleteRequest): Promise<AuthRoleDeleteResponse> {
    return this.d.propose({ case: "authRoleDelete", value: req });
  }

  async roleGrantPermission(req: AuthRoleGrantPermissionRequest): Promise<AuthRoleGrantPermissionResponse> {
    return this.d.propose({ case: "authRoleGrantPermission", value: req });
  }

  async roleRevokePermission(req: AuthRoleRevokePermissionRequest): Promise<AuthRoleRevokePermissionResponse> {
    return this.d.propose({ case: "authRoleRevokePermission", value: req });
  }

  async roleGet(role: string): Promise<AuthRoleGetResponse> {
    await this.d.barrier();
    return create(AuthRoleGetResponseSchema, { header: this.d.headers.header(), perm: this.d.state.auth.roleGet(role) });
  }

  async roleList(): Promise<AuthRoleListResponse> {
    await this.d.barrier();
    return create(AuthRoleListResponseSchema, { header: this.d.headers.header(), roles: this.d.state.auth.roleList() });
  }

  /** What the log carries instead of a password: etcd's hashedPassword, the bcrypt hash in base64. */
  private async hashed(password: string): Promise<{ password: ""; hashedPassword: string }> {
    return { password: "", hashedPassword: btoa(await this.d.hashPassword(password)) };
  }

  async authStatus(): Promise<AuthStatusResponse> {
    await this.d.barrier();
    const { auth } = this.d.state;
    return create(AuthStatusResponseSchema, { header: this.d.headers.header(), enabled: auth.enabled, authRevision: BigInt(auth.revision) });
  }
}
