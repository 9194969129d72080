// The member's v3 request surface (etcd's v3_server.go): typed methods for
// every KV and lease call, each either served locally (reads, after a
// linearizability barrier unless serializable) or proposed to the log and
// answered once applied here. The API layer sees only the narrow interfaces
// declared here (RaftKV, LeaseApi, HeaderSource), never the member.
import { create } from "@bufbuild/protobuf";
import {
  type CompactionRequest,
  type CompactionResponse,
  type DeleteRangeRequest,
  type DeleteRangeResponse,
  type LeaseGrantRequest,
  type LeaseGrantResponse,
  type LeaseLeasesResponse,
  LeaseLeasesResponseSchema,
  type LeaseRevokeRequest,
  type LeaseRevokeResponse,
  LeaseStatusSchema,
  type LeaseTimeToLiveRequest,
  type LeaseTimeToLiveResponse,
  LeaseTimeToLiveResponseSchema,
  type PutRequest,
  type PutResponse,
  type RangeRequest,
  type RangeResponse,
  type RequestOp,
  type ResponseHeader,
  ResponseHeaderSchema,
  type TxnRequest,
  type TxnResponse,
} from "../gen/etcdserverpb/rpc_pb.js";
import { Errors } from "../errors.js";
import type { LeaseDriver } from "./lease-driver.js";
import type { ReadIndexReads } from "./read-index.js";
import type { Propose } from "./requests.js";
import type { MemberState } from "./state.js";

/** etcd's RaftKV: the KV service's calls. */
export interface RaftKV {
  range(req: RangeRequest): RangeResponse | Promise<RangeResponse>;
  put(req: PutRequest): Promise<PutResponse>;
  deleteRange(req: DeleteRangeRequest): Promise<DeleteRangeResponse>;
  /** A transaction without writes is served like a read, without entering the log. */
  txn(req: TxnRequest): TxnResponse | Promise<TxnResponse>;
  compact(req: CompactionRequest): Promise<CompactionResponse>;
}

/** etcd's Lessor as the Lease service sees it. */
export interface LeaseApi {
  leaseGrant(req: LeaseGrantRequest): Promise<LeaseGrantResponse>;
  leaseRevoke(req: LeaseRevokeRequest): Promise<LeaseRevokeResponse>;
  /** One keep-alive: the lease's TTL once renewed by the leader, or "notFound". */
  leaseRenew(id: bigint): Promise<number | "notFound">;
  leaseTimeToLive(req: LeaseTimeToLiveRequest): Promise<LeaseTimeToLiveResponse>;
  leaseLeases(): LeaseLeasesResponse;
}

/** The response header every service puts on its answers. */
export interface HeaderSource {
  /** {cluster_id, member_id, raft_term} and `revision` (default: the store's current revision). */
  header(revision?: number): ResponseHeader;
}

/** The member facts the surface reads. */
export interface V3Host {
  readonly memberId: bigint;
  readonly clusterId: bigint;
  term(): number;
  stopped(): boolean;
  isLearner(): boolean;
  /** Whether this member alone decides commits and has applied all it committed (a read here is linearizable as is). */
  loneLeaderCaughtUp(): boolean;
  /** A fresh id from the member's request-id generator. */
  nextId(): bigint;
}

/** Only positive int64 lease ids are generated (etcd: reqIDGen.Next() & (1<<63 - 1)). */
const LEASE_ID_MASK = (1n << 63n) - 1n;

export class V3Server implements RaftKV, LeaseApi, HeaderSource {
  constructor(
    private readonly host: V3Host,
    private readonly state: MemberState,
    private readonly propose: Propose,
    private readonly reads: ReadIndexReads,
    private readonly leases: LeaseDriver,
    /** Something for the Raft loop to do (a read waits for a read index). */
    private readonly schedule: () => void,
  ) {}

  // ---- KV ----

  range(req: RangeRequest): RangeResponse | Promise<RangeResponse> {
    if (this.host.stopped()) throw Errors.stopped();
    const read = () => this.withHeader(this.state.store.range(req));
    if (req.serializable) return read();
    const barrier = this.linearizableBarrier();
    return barrier === undefined ? read() : barrier.then(read);
  }

  async put(req: PutRequest): Promise<PutResponse> {
    return this.propose({ case: "put", value: req });
  }

  async deleteRange(req: DeleteRangeRequest): Promise<DeleteRangeResponse> {
    return this.propose({ case: "deleteRange", value: req });
  }

  txn(req: TxnRequest): TxnResponse | Promise<TxnResponse> {
    if (!isReadOnly(req)) return this.propose({ case: "txn", value: req });
    if (this.host.stopped()) throw Errors.stopped();
    const read = () => this.withHeader(this.state.store.txn(req));
    const barrier = isSerializable(req) ? undefined : this.linearizableBarrier();
    return barrier === undefined ? read() : barrier.then(read);
  }

  async compact(req: CompactionRequest): Promise<CompactionResponse> {
    return this.propose({ case: "compaction", value: req });
  }

  /** Resolves when a read now would be linearizable (undefined: it already is). */
  linearizableBarrier(): Promise<void> | undefined {
    if (this.host.stopped()) return Promise.reject(Errors.stopped());
    // A lone voter that leads has applied everything it committed (apply runs in the commit's transaction).
    if (this.host.loneLeaderCaughtUp()) return undefined;
    if (this.host.isLearner()) return Promise.reject(Errors.notSupportedForLearner());
    const p = this.reads.wait(() => Errors.tooManyRequests());
    this.schedule();
    return p;
  }

  // ---- leases ----

  async leaseGrant(req: LeaseGrantRequest): Promise<LeaseGrantResponse> {
    let id = req.ID;
    while (id === 0n) id = this.host.nextId() & LEASE_ID_MASK;
    return this.propose({ case: "leaseGrant", value: { ...req, ID: id } });
  }

  async leaseRevoke(req: LeaseRevokeRequest): Promise<LeaseRevokeResponse> {
    return this.propose({ case: "leaseRevoke", value: req });
  }

  leaseRenew(id: bigint): Promise<number | "notFound"> {
    return this.leases.renew(id);
  }

  async leaseTimeToLive(req: LeaseTimeToLiveRequest): Promise<LeaseTimeToLiveResponse> {
    const r = await this.leases.timeToLive(req.ID, req.keys);
    // etcd answers an unknown lease with TTL -1, not an error.
    if (r === "notFound") return create(LeaseTimeToLiveResponseSchema, { header: this.header(), ID: req.ID, TTL: -1n });
    return create(LeaseTimeToLiveResponseSchema, {
      header: this.header(),
      ID: req.ID,
      TTL: BigInt(r.ttl),
      grantedTTL: BigInt(r.grantedTtl),
      keys: r.keys,
    });
  }

  leaseLeases(): LeaseLeasesResponse {
    return create(LeaseLeasesResponseSchema, {
      header: this.header(),
      leases: this.state.lessor.ids().map((ID) => create(LeaseStatusSchema, { ID })),
    });
  }

  // ---- headers ----

  header(revision = this.state.store.rev): ResponseHeader {
    return create(ResponseHeaderSchema, {
      clusterId: this.host.clusterId,
      memberId: this.host.memberId,
      revision: BigInt(revision),
      raftTerm: BigInt(this.host.term()),
    });
  }

  /** Completes the header the store or the applier set (its revision), or adds one. */
  withHeader<T extends { header?: ResponseHeader }>(resp: T): T {
    const h = resp.header;
    if (h) {
      h.clusterId = this.host.clusterId;
      h.memberId = this.host.memberId;
      h.raftTerm = BigInt(this.host.term());
    } else {
      resp.header = this.header();
    }
    return resp;
  }
}

/** etcd's isTxnSerializable: every op a serializable range (a nested txn is not). */
function isSerializable(req: TxnRequest): boolean {
  const ser = (op: RequestOp): boolean => op.request.case === "requestRange" && op.request.value.serializable;
  return req.success.every(ser) && req.failure.every(ser);
}

/** etcd's isTxnReadonly: no put or delete in any branch, nested ones included. */
function isReadOnly(req: TxnRequest): boolean {
  const readOnlyOp = (op: RequestOp): boolean => op.request.case === "requestRange" || (op.request.case === "requestTxn" && isReadOnly(op.request.value));
  return req.success.every(readOnlyOp) && req.failure.every(readOnlyOp);
}
