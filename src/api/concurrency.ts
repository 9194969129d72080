// What the v3lock and v3election services share: etcd runs both as clients of
// itself (clientv3/concurrency over an in-process client), so their semantics
// are those of the concurrency package's Session, Mutex and Election. This
// module gives them the same building blocks over the member:
//
// - session leases: a request with lease 0 gets a fresh 60 s lease that the
//   server never keeps alive (etcd's NewSession + Orphan);
// - ordered reads of a prefix (first/last by create revision);
// - waitDeletes: block until no key under a prefix older than a revision is
//   left, through the watch hub (one watcher on the newest older key at a
//   time), never by polling;
// - errors: etcd's in-process client turns server statuses into plain Go
//   errors, so everything these services return reaches clients as gRPC
//   code Unknown with etcd's message.
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import {
  Compare_CompareResult,
  Compare_CompareTarget,
  CompareSchema,
  DeleteRangeRequestSchema,
  LeaseGrantRequestSchema,
  type PutRequest,
  PutRequestSchema,
  RangeRequest_SortOrder,
  RangeRequest_SortTarget,
  RangeRequestSchema,
  type RangeResponse,
  type RequestOp,
  RequestOpSchema,
  type ResponseHeader,
  TxnRequestSchema,
  type TxnResponse,
} from "../gen/etcdserverpb/rpc_pb.js";
import { Event_EventType } from "../gen/mvccpb/kv_pb.js";
import type { KeyValue } from "../gen/mvccpb/kv_pb.js";
import { getPrefix } from "../mvcc/key-range.js";
import { Code, EtcdError, Errors } from "../errors.js";
import type { HeaderSource, LeaseApi, RaftKV } from "../server/v3-server.js";
import type { WatchHub, WatchMessage, Watcher } from "../watch/hub.js";
import type { CallContext, ServiceImpl } from "./context.js";
import { kvService } from "./kv.js";

/** clientv3/concurrency's defaultSessionTTL: the TTL of the lease granted for a request with lease 0. */
export const SESSION_TTL_SECONDS = 60;
/** Ops in the largest transaction these services send (the KV check needs a bound). */
const MAX_OPS = 128;

const encoder = new TextEncoder();
export const utf8 = (s: string) => encoder.encode(s);

/** What the lock and election services use: the KV, lease and watch interfaces, nothing else. */
export interface ConcurrencyDeps {
  kv: RaftKV;
  headers: HeaderSource;
  hub: WatchHub;
  /** Grants a lease of `ttl` seconds (server-chosen ID) and returns its ID. */
  grantLease: (ttl: number) => Promise<bigint>;
}

/** The deps over the server's interfaces: session leases are granted as the Lease service grants them. */
export function concurrencyDeps(server: RaftKV & LeaseApi & HeaderSource, hub: WatchHub): ConcurrencyDeps {
  return {
    kv: server,
    headers: server,
    hub,
    grantLease: async (ttl) => {
      const r = await server.leaseGrant(create(LeaseGrantRequestSchema, { TTL: BigInt(ttl) }));
      return r.ID;
    },
  };
}

/** Go's %x of an int64 lease ID, as the concurrency package names its keys. */
export function leaseHex(id: bigint): string {
  return id < 0n ? "-" + (-id).toString(16) : id.toString(16);
}

export function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

/**
 * Every error these services return: etcd's server-side client hands the
 * services plain errors, which the gRPC layer reports as code Unknown.
 */
export function asUnknown(err: unknown): unknown {
  if (err instanceof EtcdError && err.code !== Code.Unknown) return new EtcdError(Code.Unknown, err.message);
  return err;
}

/** The client etcd's lock and election servers use: KV calls as the KV service validates and runs them. */
export class InnerClient {
  private readonly kv: ServiceImpl;

  constructor(private readonly deps: ConcurrencyDeps) {
    this.kv = kvService(deps.kv, MAX_OPS);
  }

  get hub(): WatchHub {
    return this.deps.hub;
  }

  header(revision?: number): ResponseHeader {
    return this.deps.headers.header(revision);
  }

  /** concurrency.NewSession(WithLease(id)) then Orphan(): lease 0 means a fresh, never-renewed 60 s lease. */
  async sessionLease(lease: bigint): Promise<bigint> {
    if (lease !== 0n) return lease;
    return this.deps.grantLease(SESSION_TTL_SECONDS);
  }

  async range(req: MessageInitShape<typeof RangeRequestSchema>): Promise<RangeResponse> {
    return this.kv.range!(create(RangeRequestSchema, req), NO_CALL);
  }

  async txn(req: MessageInitShape<typeof TxnRequestSchema>): Promise<TxnResponse> {
    return this.kv.txn!(create(TxnRequestSchema, req), NO_CALL);
  }

  async deleteRange(req: MessageInitShape<typeof DeleteRangeRequestSchema>) {
    return this.kv.deleteRange!(create(DeleteRangeRequestSchema, req), NO_CALL);
  }

  /** The oldest key under `prefix` (clientv3.WithFirstCreate), with the read's header. */
  async firstCreated(prefix: Uint8Array): Promise<{ header: ResponseHeader; kv: KeyValue | undefined }> {
    const r = await this.range({
      key: prefix,
      rangeEnd: getPrefix(prefix),
      sortTarget: RangeRequest_SortTarget.CREATE,
      sortOrder: RangeRequest_SortOrder.ASCEND,
      limit: 1n,
    });
    return { header: r.header!, kv: r.kvs[0] };
  }

  /**
   * concurrency's waitDeletes: until no key under `prefix` has a create
   * revision <= maxCreateRev, wait for the newest such key to be deleted.
   * Resolves with the header of the read that found none.
   */
  async waitDeletes(prefix: Uint8Array, maxCreateRev: bigint, signal: AbortSignal): Promise<ResponseHeader> {
    for (;;) {
      if (signal.aborted) throw canceled();
      const r = await this.range({
        key: prefix,
        rangeEnd: getPrefix(prefix),
        sortTarget: RangeRequest_SortTarget.CREATE,
        sortOrder: RangeRequest_SortOrder.DESCEND,
        limit: 1n,
        maxCreateRevision: maxCreateRev,
      });
      const last = r.kvs[0];
      if (last === undefined) return r.header!;
      await this.waitDelete(last.key, Number(r.header!.revision), signal);
    }
  }

  /** Waits for a DELETE of `key` at or after revision `rev`. */
  private async waitDelete(key: Uint8Array, rev: number, signal: AbortSignal): Promise<void> {
    const w = new HubWatch(this.hub, key, null, rev);
    try {
      for (;;) {
        const m = await w.next(signal);
        if (m === undefined) throw canceled();
        if (m.compactRevision !== 0) throw Errors.compacted();
        if (m.events.some((ev) => ev.type === Event_EventType.DELETE)) return;
      }
    } finally {
      w.cancel();
    }
  }
}

/** What a request abandoned by its caller ends with (the caller is gone and never sees it). */
export function canceled(): EtcdError {
  return new EtcdError(Code.Canceled, "context canceled");
}

/** A call context for the inner KV calls: they are never canceled halfway (etcd's proposals are not either). */
const NO_CALL: CallContext = {
  signal: new AbortController().signal,
  requestHeader: { get: () => null },
};

/** One hub watcher read as a sequence of messages, waiting without polling. */
export class HubWatch {
  private readonly w: Watcher;
  private wake: (() => void) | undefined;

  constructor(hub: WatchHub, key: Uint8Array, end: Uint8Array | null, startRevision: number) {
    this.w = hub.watch({
      key,
      end,
      startRevision,
      onReady: () => this.wake?.(),
    });
  }

  /** The next message, or undefined once `signal` aborts. */
  async next(signal: AbortSignal): Promise<WatchMessage | undefined> {
    for (;;) {
      if (signal.aborted) return undefined;
      const m = this.w.next();
      if (m !== undefined) return m;
      let onAbort: () => void = () => {};
      await new Promise<void>((resolve) => {
        this.wake = resolve;
        onAbort = resolve;
        signal.addEventListener("abort", onAbort, { once: true });
      });
      this.wake = undefined;
      signal.removeEventListener("abort", onAbort);
    }
  }

  cancel(): void {
    this.w.cancel();
  }
}

// ---- request pieces ---------------------------------------------------------------------------

export function createRevIs(key: Uint8Array, rev: bigint) {
  return create(CompareSchema, {
    key,
    target: Compare_CompareTarget.CREATE,
    result: Compare_CompareResult.EQUAL,
    targetUnion: { case: "createRevision", value: rev },
  });
}

export function putOp(key: Uint8Array, value: Uint8Array, lease: bigint): RequestOp {
  const p: PutRequest = create(PutRequestSchema, { key, value, lease });
  return create(RequestOpSchema, { request: { case: "requestPut", value: p } });
}

export function getOp(key: Uint8Array, opts: MessageInitShape<typeof RangeRequestSchema> = {}): RequestOp {
  return create(RequestOpSchema, { request: { case: "requestRange", value: create(RangeRequestSchema, { key, ...opts }) } });
}

export function firstCreateOp(prefix: Uint8Array): RequestOp {
  return getOp(prefix, {
    rangeEnd: getPrefix(prefix),
    sortTarget: RangeRequest_SortTarget.CREATE,
    sortOrder: RangeRequest_SortOrder.ASCEND,
    limit: 1n,
  });
}

export function deleteOp(key: Uint8Array): RequestOp {
  return create(RequestOpSchema, { request: { case: "requestDeleteRange", value: create(DeleteRangeRequestSchema, { key }) } });
}

/** The kvs of the i-th response of a transaction (empty if it is not a range). */
export function txnRange(t: TxnResponse, i: number): KeyValue[] {
  const r = t.responses[i]?.response;
  return r?.case === "responseRange" ? r.value.kvs : [];
}
