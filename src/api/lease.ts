// The Lease service: etcd's v3rpc LeaseServer over the server's LeaseApi.
// Grant and revoke go through the log; keep-alive and time-to-live are
// answered by the leader (the server forwards them when it is not); the list
// is local.
import { create } from "@bufbuild/protobuf";
import {
  type LeaseGrantRequest,
  type LeaseKeepAliveRequest,
  LeaseKeepAliveResponseSchema,
  type LeaseKeepAliveResponse,
  type LeaseRevokeRequest,
  type LeaseTimeToLiveRequest,
} from "../gen/etcdserverpb/rpc_pb.js";
import type { HeaderSource, LeaseApi } from "../server/v3-server.js";
import type { CallContext, ServiceImpl } from "./context.js";

export function leaseService(leases: LeaseApi & HeaderSource): ServiceImpl {
  return {
    leaseGrant(req: LeaseGrantRequest) {
      return leases.leaseGrant(req);
    },
    leaseRevoke(req: LeaseRevokeRequest) {
      return leases.leaseRevoke(req);
    },
    leaseTimeToLive(req: LeaseTimeToLiveRequest) {
      return leases.leaseTimeToLive(req);
    },
    leaseLeases() {
      return leases.leaseLeases();
    },
    leaseKeepAlive(reqs: AsyncIterable<LeaseKeepAliveRequest>, ctx: CallContext): AsyncIterable<LeaseKeepAliveResponse> {
      return keepAlive(leases, reqs, ctx);
    },
  };
}

/** One renewal per request, answered in order, as etcd's leaseKeepAlive loop does. */
async function* keepAlive(
  leases: LeaseApi & HeaderSource,
  reqs: AsyncIterable<LeaseKeepAliveRequest>,
  ctx: CallContext,
): AsyncGenerator<LeaseKeepAliveResponse> {
  for await (const req of reqs) {
    if (ctx.signal.aborted) return;
    // The header is taken before the renewal: a revoke at revision r must never be followed by
    // a keep-alive answer claiming success at a later revision (etcd's comment says the same).
    const header = leases.header();
    const ttl = await leases.leaseRenew(req.ID);
    // An unknown (or just expired and revoked) lease answers TTL 0, not an error.
    yield create(LeaseKeepAliveResponseSchema, { header, ID: req.ID, TTL: ttl === "notFound" ? 0n : BigInt(ttl) });
  }
}
