// The Auth service (etcd's api/v3rpc/auth.go): user and role management over
// the member's AuthApi. Enabling auth, Authenticate and permission checks are
// not built yet: those methods are absent and answer UNIMPLEMENTED.
import type {
  AuthRoleAddRequest,
  AuthRoleDeleteRequest,
  AuthRoleGetRequest,
  AuthRoleGrantPermissionRequest,
  AuthRoleRevokePermissionRequest,
  AuthUserAddRequest,
  AuthUserChangePasswordRequest,
  AuthUserDeleteRequest,
  AuthUserGetRequest,
  AuthUserGrantRoleRequest,
  AuthUserRevokeRoleRequest,
} from "../gen/etcdserverpb/rpc_pb.js";
import type { AuthApi } from "../server/auth-server.js";
import type { ServiceImpl } from "./context.js";

export function authService(auth: AuthApi): ServiceImpl {
  return {
    authStatus: () => auth.authStatus(),
    userAdd: (req: AuthUserAddRequest) => auth.userAdd(req),
    userGet: (req: AuthUserGetRequest) => auth.userGet(req.name),
    userList: () => auth.userList(),
    userDelete: (req: AuthUserDeleteRequest) => auth.userDelete(req),
    userChangePassword: (req: AuthUserChangePasswordRequest) => auth.userChangePassword(req),
    userGrantRole: (req: AuthUserGrantRoleRequest) => auth.userGrantRole(req),
    userRevokeRole: (req: AuthUserRevokeRoleRequest) => auth.userRevokeRole(req),
    roleAdd: (req: AuthRoleAddRequest) => auth.roleAdd(req),
    roleGet: (req: AuthRoleGetRequest) => auth.roleGet(req.role),
    roleList: () => auth.roleList(),
    roleDelete: (req: AuthRoleDeleteRequest) => auth.roleDelete(req),
    roleGrantPermission: (req: AuthRoleGrantPermissionRequest) => auth.roleGrantPermission(req),
    roleRevokePermission: (req: AuthRoleRevokePermissionRequest) => auth.roleRevokePermission(req),
  };
}
