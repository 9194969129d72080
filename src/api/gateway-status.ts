// grpc-gateway v1's HTTP status for each gRPC code (runtime.HTTPStatusFromCode), which etcd
// 3.4's gateway answers with: FailedPrecondition is 412 there (v2 of the gateway made it 400).
import { Code } from "../errors.js";

export const HTTP_STATUS: Record<number, number> = {
  [Code.OK]: 200,
  [Code.Canceled]: 408,
  [Code.Unknown]: 500,
  [Code.InvalidArgument]: 400,
  [Code.DeadlineExceeded]: 504,
  [Code.NotFound]: 404,
  [Code.AlreadyExists]: 409,
  [Code.PermissionDenied]: 403,
  [Code.Unauthenticated]: 401,
  [Code.ResourceExhausted]: 429,
  [Code.FailedPrecondition]: 412,
  [Code.Aborted]: 409,
  [Code.OutOfRange]: 400,
  [Code.Unimplemented]: 501,
  [Code.Internal]: 500,
  [Code.Unavailable]: 503,
  [Code.DataLoss]: 500,
};
