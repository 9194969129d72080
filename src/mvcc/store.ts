// The revisioned key space: etcd's Range / Put / DeleteRange / Txn / Compact
// semantics over a KvBackend. The store is driven by the apply loop, one
// request at a time, and is synchronous.
//
// Revisions: the store starts at revision 1. A request that changes anything
// gets the next main revision; its writes are numbered by sub revision 0, 1,
// ... in the order they happen. A request that changes nothing (a delete of
// absent keys, a read-only txn) leaves the revision alone.
//
// Errors: every error a client can cause is thrown before the first write of
// the request, so a failed request changes nothing.

import { create } from "@bufbuild/protobuf";
import {
  type Compare,
  Compare_CompareResult,
  Compare_CompareTarget,
  type DeleteRangeRequest,
  DeleteRangeRequestSchema,
  type DeleteRangeResponse,
  DeleteRangeResponseSchema,
  type PutRequest,
  type PutResponse,
  PutResponseSchema,
  type RangeRequest,
  RangeRequest_SortOrder,
  RangeRequest_SortTarget,
  type RangeResponse,
  RangeResponseSchema,
  type RequestOp,
  type ResponseHeader,
  ResponseHeaderSchema,
  type ResponseOp,
  ResponseOpSchema,
  type TxnRequest,
  type TxnResponse,
  TxnResponseSchema,
} from "../gen/etcdserverpb/rpc_pb";
import { type Event, Event_EventType, EventSchema, type KeyValue, KeyValueSchema } from "../gen/mvccpb/kv_pb";
import { crc32 } from "node:zlib";
import { type Assert, assertWith } from "../assert";
import { Errors } from "../errors";
import type { KvBackend } from "./backend";
import { compareBytes, EMPTY_BYTES, inRange, toRangeEnd } from "./key-range";

/** Receives the events of each write request that changed something, in order, all at revision `rev`. */
export type EventsListener = (rev: number, events: Event[]) => void;

/** The lessor's view of which keys each lease holds (etcd's Attach/Detach), kept by the store's writes. */
export interface LeaseKeyIndex {
  exists(id: bigint): boolean;
  attach(id: bigint, key: Uint8Array): void;
  detach(id: bigint, key: Uint8Array): void;
}

export interface MvccStoreOptions {
  /** The lessor: lease lookups, and told of every key a write attaches to or detaches from a lease. */
  leases?: LeaseKeyIndex;
  /** Without `leases`: whether a lease is granted (by default no lease exists). */
  leaseExists?: (id: bigint) => boolean;
  /**
   * Called at the end of every write request that changed something, before
   * the caller commits its transaction (deliver to clients after the commit).
   */
  onEvents?: EventsListener;
}

/** Throws when an mvcc invariant does not hold: a bug, not a client error. */
const assert: Assert = assertWith("mvcc invariant violated");

/**
 * Which branch each txn takes, decided from the data as it is before the txn
 * runs (nested compares included, as etcd evaluates them all up front):
 * `nested` holds the decisions of the txn ops of the chosen branch, in order.
 */
interface TxnPlan {
  succeeded: boolean;
  ops: RequestOp[];
  nested: TxnPlan[];
}

const NO_LEASE = 0n;
const MAX_LIMIT = 1n << 40n;
const ZERO_KV: KeyValue = create(KeyValueSchema);

export class MvccStore {
  /** Set (or replace) the events listener, e.g. once the watch layer exists. */
  onEvents: EventsListener | undefined;

  private readonly backend: KvBackend;
  private readonly leases: LeaseKeyIndex;
  private currentRev: number;
  private compactRevision: number;

  // State of the request being applied.
  /** The store revision when the request started. */
  private begin = 0;
  /** Writes done so far by the request = the next sub revision. */
  private changes = 0;
  /** Events of the request, collected only when someone listens. */
  private events: Event[] | null = null;
  /** The last (main, sub) revision written, to check that writes only move forward. */
  private lastMain = 0;
  private lastSub = 0;

  constructor(backend: KvBackend, options: MvccStoreOptions = {}) {
    this.backend = backend;
    const exists = options.leaseExists ?? (() => false);
    this.leases = options.leases ?? { exists, attach() {}, detach() {} };
    this.onEvents = options.onEvents;
    const meta = backend.readMeta();
    assert(meta.rev >= 1 && meta.compactRev <= meta.rev, `persisted revisions rev=${meta.rev} compact=${meta.compactRev}`);
    this.currentRev = meta.rev;
    this.compactRevision = meta.compactRev;
  }

  /** The current revision: that of the last change (1 in a fresh store). */
  get rev(): number {
    return this.currentRev;
  }

  /** The revision of the last compaction, -1 if there was none. */
  get compactRev(): number {
    return this.compactRevision;
  }

  range(req: RangeRequest): RangeResponse {
    // A read: the request context without an events buffer.
    this.begin = this.currentRev;
    this.changes = 0;
    return this.rangeOp(req);
  }

  put(req: PutRequest): PutResponse {
    this.startRequest();
    // Outside a txn etcd looks the lease up before the key.
    if (req.lease !== NO_LEASE && !this.leases.exists(req.lease)) throw Errors.leaseNotFound();
    const resp = this.putOp(req);
    this.finishRequest();
    return resp;
  }

  deleteRange(req: DeleteRangeRequest): DeleteRangeResponse {
    this.startRequest();
    const resp = this.deleteOp(req);
    this.finishRequest();
    return resp;
  }

  /**
   * Deletes each of `keys` (absent ones are skipped) as one request at one revision: a lease
   * revoke. The caller passes them sorted, so every member writes the same sub revisions.
   */
  deleteKeys(keys: Uint8Array[]): number {
    this.startRequest();
    for (const key of keys) this.deleteOp(create(DeleteRangeRequestSchema, { key }));
    this.finishRequest();
    return this.currentRev;
  }

  txn(req: TxnRequest): TxnResponse {
    this.startRequest();
    const plan = this.plan(req);
    this.checkPuts(plan, []);
    this.checkRanges(plan);
    const resp = this.applyTxn(plan);
    resp.header = header(this.opRev());
    this.finishRequest();
    return resp;
  }

  /**
   * Compacts history up to `rev`: reads below `rev` fail from now on, and
   * every revision no read at >= rev can see is removed from storage.
   */
  compact(rev: number): void {
    if (rev <= this.compactRevision) throw Errors.compacted();
    if (rev > this.currentRev) throw Errors.futureRev();
    this.backend.writeCompactRev(rev);
    this.backend.compact(rev);
    this.compactRevision = rev;
  }

  /**
   * A CRC-32 over every stored revision up to `rev` (0 = the current one):
   * key, value, revision and whether it is a deletion. Members with the same
   * history and compactions get the same hash (etcdctl endpoint hashkv), so a
   * diverged member shows. The value is tsetcd's own, not etcd's bbolt hash.
   */
  /** History rows with main revision >= fromRev, in revision order (limit 0 = all): what a watch replays. */
  readHistory(fromRev: number, limit: number): KeyValue[] {
    return this.backend.readHistory(fromRev, limit);
  }

  hashKV(rev: number): { hash: number; revision: number; compactRevision: number } {
    if (rev > this.currentRev) throw Errors.futureRev();
    const upTo = rev <= 0 ? this.currentRev : rev;
    if (upTo < this.compactRevision) throw Errors.compacted();
    const BATCH = 1024;
    const revBytes = new DataView(new ArrayBuffer(9));
    let hash = 0;
    let from = 0;
    // Rows of main revision `from` already hashed: a batch may end inside a revision.
    let skip = 0;
    for (;;) {
      const batch = this.backend.readHistory(from, BATCH + skip);
      for (let i = skip; i < batch.length; i++) {
        const kv = batch[i];
        if (Number(kv.modRevision) > upTo) return { hash, revision: this.currentRev, compactRevision: this.compactRevision };
        revBytes.setBigInt64(0, kv.modRevision);
        revBytes.setUint8(8, kv.createRevision === 0n ? 1 : 0);
        hash = crc32(new Uint8Array(revBytes.buffer), hash);
        hash = crc32(kv.key, hash);
        hash = crc32(kv.value, hash);
      }
      if (batch.length < BATCH + skip) break;
      const last = batch[batch.length - 1].modRevision;
      let n = 0;
      for (let i = batch.length - 1; i >= 0 && batch[i].modRevision === last; i--) n++;
      skip = n;
      from = Number(last);
    }
    return { hash, revision: this.currentRev, compactRevision: this.compactRevision };
  }

  // ---- request bookkeeping ----

  private startRequest(): void {
    this.begin = this.currentRev;
    this.changes = 0;
    this.events = this.onEvents === undefined ? null : [];
  }

  /** The revision the request sees now: the next one once it has written. */
  private opRev(): number {
    return this.changes > 0 ? this.begin + 1 : this.begin;
  }

  /** The sub revision of the request's next write (its main revision is begin + 1). */
  private nextWrite(): number {
    const main = this.begin + 1;
    const sub = this.changes++;
    assert(this.currentRev === this.begin, "store revision moved during a request");
    assert(
      main > this.lastMain || (main === this.lastMain && sub > this.lastSub),
      `write revision (${main},${sub}) not after (${this.lastMain},${this.lastSub})`,
    );
    this.lastMain = main;
    this.lastSub = sub;
    return sub;
  }

  private finishRequest(): void {
    if (this.changes > 0) {
      const rev = this.begin + 1;
      assert(rev === this.currentRev + 1, `revision must advance by one (${this.currentRev} -> ${rev})`);
      this.currentRev = rev;
      const events = this.events;
      if (events !== null) {
        assert(events.length === this.changes, "one event per write");
        this.onEvents?.(rev, events);
      }
    }
    this.events = null;
  }

  // ---- single operations (standalone or inside a txn) ----

  private rangeOp(req: RangeRequest): RangeResponse {
    const cur = this.opRev();
    let rev = Number(req.revision);
    if (rev > cur) throw Errors.futureRev();
    if (rev <= 0) rev = cur;
    if (rev < this.compactRevision) throw Errors.compacted();

    const end = toRangeEnd(req.rangeEnd);
    // A limit beyond any possible key count means no limit; capping it keeps it an exact integer.
    const limit = req.limit > MAX_LIMIT ? Number(MAX_LIMIT) : Number(req.limit);
    const filtered = req.minModRevision !== 0n || req.maxModRevision !== 0n || req.minCreateRevision !== 0n || req.maxCreateRevision !== 0n;
    let order = req.sortOrder;
    // Results come in key order; any other target sorts ascending by default.
    if (req.sortTarget !== RangeRequest_SortTarget.KEY && order === RangeRequest_SortOrder.NONE) {
      order = RangeRequest_SortOrder.ASCEND;
    }
    const resp = create(RangeResponseSchema, { header: header(cur) });
    // The latest table holds exactly the state at the request's current revision.
    const latest = rev === cur;

    if (req.countOnly) {
      resp.count = BigInt(latest ? this.backend.countLatest(req.key, end) : this.backend.countAt(req.key, end, rev));
      return resp;
    }

    // Sorting or filtering needs every match; otherwise fetch one more than
    // asked to learn whether there are more.
    const fetch = filtered || req.sortOrder !== RangeRequest_SortOrder.NONE ? 0 : limit > 0 ? limit + 1 : 0;
    // A value sort needs the values even when they are not returned.
    const keysOnly = req.keysOnly && req.sortTarget !== RangeRequest_SortTarget.VALUE;
    let kvs = latest ? this.backend.rangeLatest(req.key, end, fetch, keysOnly) : this.backend.rangeAt(req.key, end, rev, fetch, keysOnly);
    // count is of every key in the range, before filters and limit.
    const count = fetch === 0 || kvs.length < fetch ? kvs.length : latest ? this.backend.countLatest(req.key, end) : this.backend.countAt(req.key, end, rev);

    if (filtered) kvs = kvs.filter((kv) => passesFilters(req, kv));
    if (order !== RangeRequest_SortOrder.NONE) sortKvs(kvs, req.sortTarget, order === RangeRequest_SortOrder.DESCEND);
    if (limit > 0 && kvs.length > limit) {
      kvs.length = limit;
      resp.more = true;
    }
    if (req.keysOnly && !keysOnly) for (const kv of kvs) kv.value = EMPTY_BYTES;
    resp.kvs = kvs;
    resp.count = BigInt(count);
    return resp;
  }

  /** Checks that need data are the caller's (put() or the txn pre-checks); ignore_* on a missing key is re-checked here. */
  private putOp(req: PutRequest): PutResponse {
    const needValue = req.prevKv || req.ignoreValue || this.events !== null;
    const prev = this.backend.getLatest(req.key, needValue);
    if ((req.ignoreValue || req.ignoreLease) && prev === null) {
      // Standalone: nothing written yet. In a txn the pre-checks make this unreachable.
      assert(this.changes === 0, "ignore_value/ignore_lease key vanished inside a txn");
      throw Errors.keyNotFound();
    }
    const value = req.ignoreValue ? prev!.value : req.value;
    const lease = req.ignoreLease ? prev!.lease : req.lease;
    const main = this.begin + 1;
    const sub = this.nextWrite();
    const createRev = prev === null ? main : Number(prev.createRevision);
    assert(prev === null || Number(prev.modRevision) <= main, "a key's revisions only grow");
    const version = prev === null ? 1 : Number(prev.version) + 1;
    this.backend.put(req.key, value, createRev, main, sub, version, lease);
    const prevLease = prev === null ? NO_LEASE : prev.lease;
    if (prevLease !== lease) {
      if (prevLease !== NO_LEASE) this.leases.detach(prevLease, req.key);
      if (lease !== NO_LEASE) this.leases.attach(lease, req.key);
    }
    if (this.events !== null) {
      const kv = create(KeyValueSchema, {
        key: req.key,
        value,
        createRevision: BigInt(createRev),
        modRevision: BigInt(main),
        version: BigInt(version),
        lease,
      });
      this.events.push(create(EventSchema, { type: Event_EventType.PUT, kv, prevKv: prev ?? undefined }));
    }
    return create(PutResponseSchema, {
      header: header(main),
      prevKv: req.prevKv && prev !== null ? prev : undefined,
    });
  }

  private deleteOp(req: DeleteRangeRequest): DeleteRangeResponse {
    const end = toRangeEnd(req.rangeEnd);
    const withValues = req.prevKv || this.events !== null;
    const kvs = this.backend.rangeLatest(req.key, end, 0, !withValues);
    if (kvs.length > 0) {
      const main = this.begin + 1;
      const modRevision = BigInt(main);
      for (const kv of kvs) {
        const sub = this.nextWrite();
        this.backend.tombstone(kv.key, main, sub);
        if (kv.lease !== NO_LEASE) this.leases.detach(kv.lease, kv.key);
        if (this.events !== null) {
          // A delete event's kv carries only the key and the revision of the delete.
          const tomb = create(KeyValueSchema, { key: kv.key, modRevision });
          this.events.push(create(EventSchema, { type: Event_EventType.DELETE, kv: tomb, prevKv: kv }));
        }
      }
    }
    return create(DeleteRangeResponseSchema, {
      header: header(this.opRev()),
      deleted: BigInt(kvs.length),
      prevKvs: req.prevKv ? kvs : [],
    });
  }

  // ---- txn ----

  private plan(req: TxnRequest): TxnPlan {
    let succeeded = true;
    for (const c of req.compare) {
      if (!this.compare(c)) {
        succeeded = false;
        break;
      }
    }
    const ops = succeeded ? req.success : req.failure;
    const nested: TxnPlan[] = [];
    for (const op of ops) if (op.request.case === "requestTxn") nested.push(this.plan(op.request.value));
    return { succeeded, ops, nested };
  }

  private compare(c: Compare): boolean {
    const end = toRangeEnd(c.rangeEnd);
    const needValue = c.target === Compare_CompareTarget.VALUE;
    const kvs = this.backend.rangeLatest(c.key, end, 0, !needValue);
    if (kvs.length === 0) {
      // No key: a value compare always fails (an absent value is not ""),
      // anything else compares against zeros.
      return needValue ? false : compareKv(c, ZERO_KV);
    }
    for (const kv of kvs) if (!compareKv(c, kv)) return false;
    return true;
  }

  /**
   * Put checks over the chosen path, in execution order (etcd's order: a
   * missing key for ignore_value/ignore_lease, then an unknown lease).
   * `writes` lists the path's earlier puts and deletes, so a key that an
   * earlier op of this txn deletes counts as missing (etcd 3.4 would crash on
   * that; the overlap rule in validateTxn rejects all but from-key deletes).
   */
  private checkPuts(plan: TxnPlan, writes: RequestOp[]): void {
    let n = 0;
    for (const op of plan.ops) {
      const r = op.request;
      if (r.case === "requestTxn") {
        this.checkPuts(plan.nested[n++], writes);
      } else if (r.case === "requestPut") {
        const p = r.value;
        if ((p.ignoreValue || p.ignoreLease) && !this.existsAfter(p.key, writes)) throw Errors.keyNotFound();
        if (p.lease !== NO_LEASE && !this.leases.exists(p.lease)) throw Errors.leaseNotFound();
        writes.push(op);
      } else if (r.case === "requestDeleteRange") {
        writes.push(op);
      }
    }
  }

  /** Whether `key` exists after `writes` (puts and deletes, in order) run on the current data. */
  private existsAfter(key: Uint8Array, writes: RequestOp[]): boolean {
    for (let i = writes.length - 1; i >= 0; i--) {
      const r = writes[i].request;
      if (r.case === "requestPut" && compareBytes(r.value.key, key) === 0) return true;
      if (r.case === "requestDeleteRange" && inRange(key, r.value.key, toRangeEnd(r.value.rangeEnd))) return false;
    }
    return this.backend.getLatest(key, false) !== null;
  }

  /** Revisions of ranges on the chosen path must be readable now. */
  private checkRanges(plan: TxnPlan): void {
    let n = 0;
    for (const op of plan.ops) {
      const r = op.request;
      if (r.case === "requestTxn") {
        this.checkRanges(plan.nested[n++]);
      } else if (r.case === "requestRange") {
        const rev = Number(r.value.revision);
        if (rev === 0) continue;
        if (rev > this.currentRev) throw Errors.futureRev();
        if (rev < this.compactRevision) throw Errors.compacted();
      }
    }
  }

  private applyTxn(plan: TxnPlan): TxnResponse {
    const responses: ResponseOp[] = new Array(plan.ops.length);
    let n = 0;
    for (let i = 0; i < plan.ops.length; i++) {
      const r = plan.ops[i].request;
      let response: ResponseOp["response"];
      switch (r.case) {
        case "requestRange":
          response = { case: "responseRange", value: this.rangeOp(r.value) };
          break;
        case "requestPut":
          response = { case: "responsePut", value: this.putOp(r.value) };
          break;
        case "requestDeleteRange":
          response = { case: "responseDeleteRange", value: this.deleteOp(r.value) };
          break;
        case "requestTxn":
          // A nested txn's header stays empty, as in etcd.
          response = { case: "responseTxn", value: this.applyTxn(plan.nested[n++]) };
          break;
        default:
          response = { case: undefined };
      }
      responses[i] = create(ResponseOpSchema, { response });
    }
    return create(TxnResponseSchema, {
      header: create(ResponseHeaderSchema),
      succeeded: plan.succeeded,
      responses,
    });
  }
}

function header(rev: number): ResponseHeader {
  return create(ResponseHeaderSchema, { revision: BigInt(rev) });
}

function passesFilters(req: RangeRequest, kv: KeyValue): boolean {
  if (req.maxModRevision !== 0n && kv.modRevision > req.maxModRevision) return false;
  if (req.minModRevision !== 0n && kv.modRevision < req.minModRevision) return false;
  if (req.maxCreateRevision !== 0n && kv.createRevision > req.maxCreateRevision) return false;
  if (req.minCreateRevision !== 0n && kv.createRevision < req.minCreateRevision) return false;
  return true;
}

const cmpBig = (a: bigint, b: bigint) => (a < b ? -1 : a > b ? 1 : 0);

/** Stable sort, so equal targets keep key order (either direction). */
function sortKvs(kvs: KeyValue[], target: RangeRequest_SortTarget, descend: boolean): void {
  let cmp: (a: KeyValue, b: KeyValue) => number;
  switch (target) {
    case RangeRequest_SortTarget.VERSION:
      cmp = (a, b) => cmpBig(a.version, b.version);
      break;
    case RangeRequest_SortTarget.CREATE:
      cmp = (a, b) => cmpBig(a.createRevision, b.createRevision);
      break;
    case RangeRequest_SortTarget.MOD:
      cmp = (a, b) => cmpBig(a.modRevision, b.modRevision);
      break;
    case RangeRequest_SortTarget.VALUE:
      cmp = (a, b) => compareBytes(a.value, b.value);
      break;
    case RangeRequest_SortTarget.KEY:
      // Already in ascending key order.
      if (descend) kvs.reverse();
      return;
    default:
      // An unknown target: etcd leaves the order alone.
      return;
  }
  kvs.sort(descend ? (a, b) => cmp(b, a) : cmp);
}

function compareKv(c: Compare, kv: KeyValue): boolean {
  const u = c.targetUnion;
  let result: number;
  switch (c.target) {
    case Compare_CompareTarget.VALUE:
      result = compareBytes(kv.value, u.case === "value" ? u.value : EMPTY_BYTES);
      break;
    case Compare_CompareTarget.CREATE:
      result = cmpBig(kv.createRevision, u.case === "createRevision" ? u.value : 0n);
      break;
    case Compare_CompareTarget.MOD:
      result = cmpBig(kv.modRevision, u.case === "modRevision" ? u.value : 0n);
      break;
    case Compare_CompareTarget.VERSION:
      result = cmpBig(kv.version, u.case === "version" ? u.value : 0n);
      break;
    case Compare_CompareTarget.LEASE:
      result = cmpBig(kv.lease, u.case === "lease" ? u.value : 0n);
      break;
    default:
      result = 0;
  }
  switch (c.result) {
    case Compare_CompareResult.EQUAL:
      return result === 0;
    case Compare_CompareResult.NOT_EQUAL:
      return result !== 0;
    case Compare_CompareResult.GREATER:
      return result > 0;
    case Compare_CompareResult.LESS:
      return result < 0;
    default:
      return true;
  }
}
