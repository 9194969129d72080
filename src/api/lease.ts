// The Lease service: etcd's v3rpc LeaseServer over the member. Grant and
// revoke go through the log; keep-alive and time-to-live are answered by the
// leader (the member forwards them when it is not); the list is local.
import { create } from "@bufbuild/protobuf";
import {
  type LeaseGrantRequest,
  type LeaseKeepAliveRequest,
  LeaseKeepAliveResponseSchema,
  type LeaseKeepAliveResponse,
  LeaseLeasesResponseSchema,
  type LeaseRevokeRequest,
  LeaseStatusSchema,
  type LeaseTimeToLiveRequest,
  LeaseTimeToLiveResponseSchema,
} from "../gen/etcdserverpb/rpc_pb.js";
import type { Member } from "../server/member.js";
import type { CallContext, ServiceImpl } from "./context.js";

/** Only positive int64 ids are generated (etcd: reqIDGen.Next() & (1<<63 - 1)). */
const ID_MASK = (1n << 63n) - 1n;

export function leaseService(member: Member): ServiceImpl {
  return {
    leaseGrant(req: LeaseGrantRequest) {
      let id = req.ID;
      while (id === 0n) id = member.nextRequestId() & ID_MASK;
      return member.propose({ case: "leaseGrant", value: { ...req, ID: id } });
    },
    leaseRevoke(req: LeaseRevokeRequest) {
      return member.propose({ case: "leaseRevoke", value: req });
    },
    async leaseTimeToLive(req: LeaseTimeToLiveRequest) {
      const r = await member.leases.timeToLive(req.ID, req.keys);
      // etcd answers an unknown lease with TTL -1, not an error.
      if (r === "notFound") return create(LeaseTimeToLiveResponseSchema, { header: member.header(), ID: req.ID, TTL: -1n });
      return create(LeaseTimeToLiveResponseSchema, {
        header: member.header(),
        ID: req.ID,
        TTL: BigInt(r.ttl),
        grantedTTL: BigInt(r.grantedTtl),
        keys: r.keys,
      });
    },
    leaseLeases() {
      return create(LeaseLeasesResponseSchema, {
        header: member.header(),
        leases: member.lessor.ids().map((ID) => create(LeaseStatusSchema, { ID })),
      });
    },
    leaseKeepAlive(reqs: AsyncIterable<LeaseKeepAliveRequest>, ctx: CallContext): AsyncIterable<LeaseKeepAliveResponse> {
      return keepAlive(member, reqs, ctx);
    },
  };
}

/** One renewal per request, answered in order, as etcd's leaseKeepAlive loop does. */
async function* keepAlive(member: Member, reqs: AsyncIterable<LeaseKeepAliveRequest>, ctx: CallContext): AsyncGenerator<LeaseKeepAliveResponse> {
  for await (const req of reqs) {
    if (ctx.signal.aborted) return;
    // The header is taken before the renewal: a revoke at revision r must never be followed by
    // a keep-alive answer claiming success at a later revision (etcd's comment says the same).
    const header = member.header();
    const ttl = await member.leases.renew(req.ID);
    // An unknown (or just expired and revoked) lease answers TTL 0, not an error.
    yield create(LeaseKeepAliveResponseSchema, { header, ID: req.ID, TTL: ttl === "notFound" ? 0n : BigInt(ttl) });
  }
}
