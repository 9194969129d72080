// What the log carries and what applying it answers, as types: every kind of
// InternalRequest and the response its proposer receives once the entry is
// applied. The applier's dispatch and the proposal path are both written
// against this table, so a new request kind must be added here, handled in
// the applier (its switch ends in an exhaustiveness check) and gets a typed
// response at the API without casts.
import type {
  AlarmResponse,
  AuthRoleAddResponse,
  AuthRoleDeleteResponse,
  AuthRoleGrantPermissionResponse,
  AuthRoleRevokePermissionResponse,
  AuthUserAddResponse,
  AuthUserChangePasswordResponse,
  AuthUserDeleteResponse,
  AuthUserGrantRoleResponse,
  AuthUserRevokeRoleResponse,
  CompactionResponse,
  DeleteRangeResponse,
  LeaseCheckpointResponse,
  LeaseGrantResponse,
  LeaseRevokeResponse,
  PutResponse,
  TxnResponse,
} from "../gen/etcdserverpb/rpc_pb.js";
import type { InternalRequest } from "../gen/tsetcdpb/internal_pb.js";

/** The oneof an entry carries (exactly one case is set in every proposed entry). */
export type RequestBody = InternalRequest["request"];
export type RequestKind = NonNullable<RequestBody["case"]>;
export type RequestOf<K extends RequestKind> = Extract<RequestBody, { case: K }>;

/** Member-level requests answer nothing but their success. */
export type Done = Record<string, never>;

export interface ResponseOf {
  put: PutResponse;
  deleteRange: DeleteRangeResponse;
  txn: TxnResponse;
  compaction: CompactionResponse;
  alarm: AlarmResponse;
  memberAttributes: Done;
  clusterVersion: Done;
  leaseGrant: LeaseGrantResponse;
  leaseRevoke: LeaseRevokeResponse;
  leaseCheckpoint: LeaseCheckpointResponse;
  authUserAdd: AuthUserAddResponse;
  authUserDelete: AuthUserDeleteResponse;
  authUserChangePassword: AuthUserChangePasswordResponse;
  authUserGrantRole: AuthUserGrantRoleResponse;
  authUserRevokeRole: AuthUserRevokeRoleResponse;
  authRoleAdd: AuthRoleAddResponse;
  authRoleDelete: AuthRoleDeleteResponse;
  authRoleGrantPermission: AuthRoleGrantPermissionResponse;
  authRoleRevokePermission: AuthRoleRevokePermissionResponse;
}

/** Any response the applier produces. */
export type AnyResponse = ResponseOf[RequestKind];

/** Options of a proposal. */
export interface ProposeOptions {
  /**
   * A decision only this term's leader may make (lease expiry, checkpoints): refused at once
   * when this member does not lead, never queued for a later leader, and applied only if
   * appended in the current term.
   */
  leaderOnly?: boolean;
}

/** Proposes a request to the log; resolves with its response once applied on this member. */
export type Propose = <K extends RequestKind>(request: RequestOf<K>, opts?: ProposeOptions) => Promise<ResponseOf[K]>;
