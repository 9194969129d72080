// Applying the auth store's requests (etcd's applierV3 auth methods): each
// changes the store or throws etcd's error, and answers a bare header.
import { create } from "@bufbuild/protobuf";
import type { AuthStore } from "../auth/store.js";
import {
  AuthRoleAddResponseSchema,
  AuthRoleDeleteResponseSchema,
  AuthRoleGrantPermissionResponseSchema,
  AuthRoleRevokePermissionResponseSchema,
  AuthUserAddResponseSchema,
  AuthUserChangePasswordResponseSchema,
  AuthUserDeleteResponseSchema,
  AuthUserGrantRoleResponseSchema,
  AuthUserRevokeRoleResponseSchema,
  type ResponseHeader,
} from "../gen/etcdserverpb/rpc_pb.js";
import { unreachable } from "../assert.js";
import type { RequestOf, ResponseOf } from "./requests.js";

export type AuthKind =
  | "authUserAdd"
  | "authUserDelete"
  | "authUserChangePassword"
  | "authUserGrantRole"
  | "authUserRevokeRole"
  | "authRoleAdd"
  | "authRoleDelete"
  | "authRoleGrantPermission"
  | "authRoleRevokePermission";

/** One auth request, by kind; the applier's dispatch hands every auth kind here. */
export function applyAuth(auth: AuthStore, r: RequestOf<AuthKind>, header: ResponseHeader): ResponseOf[AuthKind] {
  switch (r.case) {
    case "authUserAdd":
      auth.userAdd(r.value);
      return create(AuthUserAddResponseSchema, { header });
    case "authUserDelete":
      auth.userDelete(r.value.name);
      return create(AuthUserDeleteResponseSchema, { header });
    case "authUserChangePassword":
      auth.userChangePassword(r.value);
      return create(AuthUserChangePasswordResponseSchema, { header });
    case "authUserGrantRole":
      auth.userGrantRole(r.value);
      return create(AuthUserGrantRoleResponseSchema, { header });
    case "authUserRevokeRole":
      auth.userRevokeRole(r.value);
      return create(AuthUserRevokeRoleResponseSchema, { header });
    case "authRoleAdd":
      auth.roleAdd(r.value.name);
      return create(AuthRoleAddResponseSchema, { header });
    case "authRoleDelete":
      auth.roleDelete(r.value.role);
      return create(AuthRoleDeleteResponseSchema, { header });
    case "authRoleGrantPermission":
      auth.roleGrantPermission(r.value);
      return create(AuthRoleGrantPermissionResponseSchema, { header });
    case "authRoleRevokePermission":
      auth.roleRevokePermission(r.value);
      return create(AuthRoleRevokePermissionResponseSchema, { header });
    default:
      return unreachable(r, "apply: unknown auth request kind");
  }
}
