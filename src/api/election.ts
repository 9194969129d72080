// The v3election service (etcd's etcdserver/api/v3election): each method is
// the clientv3/concurrency Election operation of the same name, run by the
// server on the caller's behalf.
//
// A candidate's key is "<name>/<lease id in hex>" holding its proposal, put
// with its lease; the leader is the key under "<name>/" with the lowest create
// revision. A LeaderKey {name, key, rev, lease} names one candidacy: Proclaim
// and Resign act only while that key still has that create revision.
import { create } from "@bufbuild/protobuf";
import { Event_EventType, type KeyValue } from "../gen/mvccpb/kv_pb.js";
import type { ResponseHeader } from "../gen/etcdserverpb/rpc_pb.js";
import {
  type CampaignRequest,
  type CampaignResponse,
  CampaignResponseSchema,
  type LeaderKey,
  LeaderKeySchema,
  type LeaderRequest,
  type LeaderResponse,
  LeaderResponseSchema,
  type ProclaimRequest,
  type ProclaimResponse,
  ProclaimResponseSchema,
  type ResignRequest,
  type ResignResponse,
  ResignResponseSchema,
} from "../gen/v3electionpb/v3election_pb.js";
import { bytesEqual, getPrefix } from "../mvcc/key-range.js";
import { Errors } from "../errors.js";
import type { CallContext, ServiceImpl } from "./context.js";
import {
  asUnknown,
  concat,
  type ConcurrencyDeps,
  createRevIs,
  deleteOp,
  getOp,
  HubWatch,
  InnerClient,
  leaseHex,
  putOp,
  txnRange,
  utf8,
} from "./concurrency.js";

export function electionService(deps: ConcurrencyDeps): ServiceImpl {
  const c = new InnerClient(deps);
  const unknownErrors =
    <A extends unknown[], R>(fn: (...args: A) => Promise<R>) =>
    async (...args: A): Promise<R> => {
      try {
        return await fn(...args);
      } catch (err) {
        throw asUnknown(err);
      }
    };
  return {
    campaign: unknownErrors((req: CampaignRequest, ctx: CallContext) => campaign(c, req, ctx.signal)),
    proclaim: unknownErrors((req: ProclaimRequest) => proclaimRequest(c, req)),
    leader: unknownErrors((req: LeaderRequest) => leader(c, req)),
    resign: unknownErrors((req: ResignRequest) => resignRequest(c, req)),
    observe: (req: LeaderRequest, ctx: CallContext) => observe(c, req, ctx.signal),
  };
}

const prefixOf = (name: Uint8Array) => concat(name, utf8("/"));

async function campaign(c: InnerClient, req: CampaignRequest, signal: AbortSignal): Promise<CampaignResponse> {
  const lease = await c.sessionLease(req.lease);
  const prefix = prefixOf(req.name);
  const key = concat(prefix, utf8(leaseHex(lease)));
  const t = await c.txn({
    compare: [createRevIs(key, 0n)],
    success: [putOp(key, req.value, lease)],
    failure: [getOp(key)],
  });
  let rev = t.header!.revision;
  if (!t.succeeded) {
    // This lease is already a candidate: keep its place in line, with the new proposal.
    const kv = txnRange(t, 0)[0]!;
    rev = kv.createRevision;
    // (etcd then "resigns" with an emptied key, which its KV refuses: nothing to undo.)
    if (!bytesEqual(kv.value, req.value)) await proclaim(c, key, rev, lease, req.value);
  }
  try {
    await c.waitDeletes(prefix, rev - 1n, signal);
  } catch (err) {
    if (signal.aborted) await resign(c, key, rev).catch(() => {});
    throw err;
  }
  const leaderKey: LeaderKey = create(LeaderKeySchema, { name: req.name, key, rev, lease });
  return create(CampaignResponseSchema, { header: t.header, leader: leaderKey });
}

/** Election.Proclaim: a new value for the leader key, only while it is this candidacy's. */
async function proclaim(c: InnerClient, key: Uint8Array, rev: bigint, lease: bigint, value: Uint8Array): Promise<ResponseHeader> {
  const t = await c.txn({ compare: [createRevIs(key, rev)], success: [putOp(key, value, lease)] });
  if (!t.succeeded) throw Errors.electionNotLeader();
  return t.header!;
}

/** Election.Resign: delete the key if it is still this candidacy's; the header either way. */
async function resign(c: InnerClient, key: Uint8Array, rev: bigint): Promise<ResponseHeader> {
  const t = await c.txn({ compare: [createRevIs(key, rev)], success: [deleteOp(key)] });
  return t.header!;
}

async function proclaimRequest(c: InnerClient, req: ProclaimRequest): Promise<ProclaimResponse> {
  const l = req.leader;
  if (l === undefined) throw Errors.missingLeaderKey();
  // etcd opens a session on the given lease first, so lease 0 grants a lease here too.
  const lease = await c.sessionLease(l.lease);
  const header = await proclaim(c, l.key, l.rev, lease, req.value);
  return create(ProclaimResponseSchema, { header });
}

async function resignRequest(c: InnerClient, req: ResignRequest): Promise<ResignResponse> {
  const l = req.leader;
  if (l === undefined) throw Errors.missingLeaderKey();
  await c.sessionLease(l.lease);
  const header = await resign(c, l.key, l.rev);
  return create(ResignResponseSchema, { header });
}

async function leader(c: InnerClient, req: LeaderRequest): Promise<LeaderResponse> {
  const r = await c.firstCreated(prefixOf(req.name));
  if (r.kv === undefined) throw Errors.electionNoLeader();
  return create(LeaderResponseSchema, { header: r.header, kv: r.kv });
}

/**
 * Election.Observe: the current leader (waiting for one if there is none),
 * then every new value it proclaims; when its key goes, the next leader. A
 * failed read or a compacted watch ends the stream quietly, as etcd's does.
 */
async function* observe(c: InnerClient, req: LeaderRequest, signal: AbortSignal): AsyncGenerator<LeaderResponse> {
  const prefix = prefixOf(req.name);
  while (!signal.aborted) {
    let first: { header: ResponseHeader; kv: KeyValue | undefined };
    try {
      first = await c.firstCreated(prefix);
    } catch {
      return;
    }
    let header = first.header;
    let kv = first.kv;
    if (kv === undefined) {
      // No leader: the first key put under the prefix is the next one.
      const w = new HubWatch(c.hub, prefix, getPrefix(prefix), Number(header.revision));
      try {
        while (kv === undefined) {
          const m = await w.next(signal);
          if (m === undefined || m.compactRevision !== 0) return;
          const put = m.events.find((ev) => ev.type === Event_EventType.PUT);
          if (put?.kv !== undefined) {
            kv = put.kv;
            header = c.header(Number(kv.modRevision));
          }
        }
      } finally {
        w.cancel();
      }
    }
    yield create(LeaderResponseSchema, { header, kv });
    // Follow the leader's key until it is deleted.
    const w = new HubWatch(c.hub, kv.key, null, Number(header.revision) + 1);
    try {
      for (let deleted = false; !deleted;) {
        const m = await w.next(signal);
        if (m === undefined || m.compactRevision !== 0) return;
        for (const ev of m.events) {
          if (ev.type === Event_EventType.DELETE) {
            deleted = true;
            break;
          }
          yield create(LeaderResponseSchema, { header: c.header(m.revision), kv: ev.kv });
        }
      }
    } finally {
      w.cancel();
    }
  }
}
