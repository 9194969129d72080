// The errors a client can cause, with etcd's gRPC status codes and exact texts.
// Every layer throws EtcdError; each transport renders it its own way (gRPC
// trailers, Connect JSON, gateway JSON), so the text a user sees is the same
// everywhere and identical to etcd's.

/** gRPC status codes (https://grpc.github.io/grpc/core/md_doc_statuscodes.html). */
export const enum Code {
  OK = 0,
  Canceled = 1,
  Unknown = 2,
  InvalidArgument = 3,
  DeadlineExceeded = 4,
  NotFound = 5,
  AlreadyExists = 6,
  PermissionDenied = 7,
  ResourceExhausted = 8,
  FailedPrecondition = 9,
  Aborted = 10,
  OutOfRange = 11,
  Unimplemented = 12,
  Internal = 13,
  Unavailable = 14,
  DataLoss = 15,
  Unauthenticated = 16,
}

export class EtcdError extends Error {
  constructor(
    readonly code: Code,
    message: string,
  ) {
    super(message);
    this.name = "EtcdError";
  }
}

const e = (code: Code, message: string) => () => new EtcdError(code, message);

/** etcd's client-visible errors (etcd's api/v3rpc/rpctypes), by the name etcd gives them. */
export const Errors = {
  emptyKey: e(Code.InvalidArgument, "etcdserver: key is not provided"),
  keyNotFound: e(Code.InvalidArgument, "etcdserver: key not found"),
  valueProvided: e(Code.InvalidArgument, "etcdserver: value is provided"),
  leaseProvided: e(Code.InvalidArgument, "etcdserver: lease is provided"),
  tooManyOps: e(Code.InvalidArgument, "etcdserver: too many operations in txn request"),
  duplicateKey: e(Code.InvalidArgument, "etcdserver: duplicate key given in txn request"),
  compacted: e(Code.OutOfRange, "etcdserver: mvcc: required revision has been compacted"),
  futureRev: e(Code.OutOfRange, "etcdserver: mvcc: required revision is a future revision"),
  noSpace: e(Code.ResourceExhausted, "etcdserver: mvcc: database space exceeded"),
  leaseNotFound: e(Code.NotFound, "etcdserver: requested lease not found"),
  leaseExists: e(Code.FailedPrecondition, "etcdserver: lease already exists"),
  leaseTtlTooLarge: e(Code.OutOfRange, "etcdserver: too large lease TTL"),
  requestTooLarge: e(Code.InvalidArgument, "etcdserver: request is too large"),
  tooManyRequests: e(Code.ResourceExhausted, "etcdserver: too many requests"),
  stopped: e(Code.Unavailable, "etcdserver: server stopped"),
  timeout: e(Code.Unavailable, "etcdserver: request timed out"),
  noLeader: e(Code.Unavailable, "etcdserver: no leader"),
  leaderChanged: e(Code.Unavailable, "etcdserver: leader changed"),
  notLeader: e(Code.FailedPrecondition, "etcdserver: not leader"),
  timeoutDueToLeaderFail: e(Code.Unavailable, "etcdserver: request timed out, possibly due to previous leader failure"),
  timeoutDueToConnectionLost: e(Code.Unavailable, "etcdserver: request timed out, possibly due to connection lost"),
  timeoutWaitAppliedIndex: e(Code.Unavailable, "etcdserver: request timed out, waiting for the applied index took too long"),
  unhealthy: e(Code.Unavailable, "etcdserver: unhealthy cluster"),
  notSupportedForLearner: e(Code.Unavailable, "etcdserver: rpc not supported for learner"),
  badLeaderTransferee: e(Code.FailedPrecondition, "etcdserver: bad leader transferee"),
  memberExist: e(Code.FailedPrecondition, "etcdserver: member ID already exist"),
  peerURLExist: e(Code.FailedPrecondition, "etcdserver: Peer URLs already exists"),
  memberNotEnoughStarted: e(Code.FailedPrecondition, "etcdserver: re-configuration failed due to not enough started members"),
  memberBadURLs: e(Code.InvalidArgument, "etcdserver: given member URLs are invalid"),
  memberNotFound: e(Code.NotFound, "etcdserver: member not found"),
  memberNotLearner: e(Code.FailedPrecondition, "etcdserver: can only promote a learner member"),
  learnerNotReady: e(Code.FailedPrecondition, "etcdserver: can only promote a learner member which is in sync with leader"),
  tooManyLearners: e(Code.FailedPrecondition, "etcdserver: too many learner members in cluster"),
  /** Not in etcd's gRPC error map: it reaches clients as code Unknown. */
  timeoutLeaderTransfer: e(Code.Unknown, "etcdserver: request timed out, leader transfer took too long"),
  notCapable: e(Code.Unavailable, "etcdserver: not capable"),
  // The auth store (etcd's rpctypes).
  rootUserNotExist: e(Code.FailedPrecondition, "etcdserver: root user does not exist"),
  rootRoleNotExist: e(Code.FailedPrecondition, "etcdserver: root user does not have root role"),
  userAlreadyExist: e(Code.FailedPrecondition, "etcdserver: user name already exists"),
  userEmpty: e(Code.InvalidArgument, "etcdserver: user name is empty"),
  userNotFound: e(Code.FailedPrecondition, "etcdserver: user name not found"),
  roleAlreadyExist: e(Code.FailedPrecondition, "etcdserver: role name already exists"),
  roleNotFound: e(Code.FailedPrecondition, "etcdserver: role name not found"),
  roleEmpty: e(Code.InvalidArgument, "etcdserver: role name is empty"),
  authFailed: e(Code.InvalidArgument, "etcdserver: authentication failed, invalid user ID or password"),
  permissionNotGiven: e(Code.InvalidArgument, "etcdserver: permission not given"),
  permissionDenied: e(Code.PermissionDenied, "etcdserver: permission denied"),
  roleNotGranted: e(Code.FailedPrecondition, "etcdserver: role is not granted to the user"),
  permissionNotGranted: e(Code.FailedPrecondition, "etcdserver: permission is not granted to the role"),
  authNotEnabled: e(Code.FailedPrecondition, "etcdserver: authentication is not enabled"),
  invalidAuthToken: e(Code.Unauthenticated, "etcdserver: invalid auth token"),
  invalidAuthMgmt: e(Code.InvalidArgument, "etcdserver: invalid auth management"),
  authOldRevision: e(Code.InvalidArgument, "etcdserver: revision of auth store is old"),
  /** auth's ErrNoPasswordUser is not in etcd's gRPC error map: clients get it as code Unknown. */
  noPasswordUser: e(Code.Unknown, "auth: authentication failed, password was given for no password user"),
  // v3election (clientv3/concurrency and etcdserver/api/v3election): plain Go errors, so code Unknown.
  electionNotLeader: e(Code.Unknown, "election: not leader"),
  electionNoLeader: e(Code.Unknown, "election: no leader"),
  missingLeaderKey: e(Code.Unknown, '"leader" field must be provided'),
  unimplemented: (method: string) => new EtcdError(Code.Unimplemented, `unknown method ${method}`),
} as const;
