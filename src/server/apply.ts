// The applier (etcd's apply.go and applyEntries): committed log entries become
// state, in log order, exactly once. It owns the applied index (etcd's
// consistent index, persisted in the same transaction as the effects) and the
// configuration as of the last delivered entry.
//
// Raft delivers again every entry after the last snapshot on each start (and
// after a snapshot install whose data is ahead of its metadata): an entry at or
// below the applied index is a replay. A replayed configuration change is
// applied to the configuration again (it is rebuilt from the snapshot's), any
// other replayed entry is skipped. Everything else is deterministic: the same
// entry on the same state gives the same result on every member.
import { create, fromBinary } from "@bufbuild/protobuf";
import {
  AlarmType,
  CompactionResponseSchema,
  LeaseCheckpointResponseSchema,
  LeaseGrantResponseSchema,
  LeaseRevokeResponseSchema,
  ResponseHeaderSchema,
  type RequestOp,
  type TxnRequest,
} from "../gen/etcdserverpb/rpc_pb.js";
import { InternalRequestSchema } from "../gen/tsetcdpb/internal_pb.js";
import { applyAuth } from "./apply-auth.js";
import { unreachable } from "../assert.js";
import { invariant } from "./invariant.js";
import { EtcdError, Errors } from "../errors.js";
import { applyChange, decodeConfChange } from "../raft/confchange.js";
import { type ConfChange, ConfChangeType, type ConfState, type Entry, EntryType } from "../raft/types.js";
import { APPLIED_INDEX } from "./bootstrap.js";
import type { AnyResponse, RequestBody } from "./requests.js";
import type { MemberState } from "./state.js";

export interface ApplierHost {
  readonly memberId: bigint;
  /** Whether this member leads in `term` (the term an entry was appended in). */
  leadsTerm(term: number): boolean;
  /** The leader applied its own first entry of its term: everything before is applied (lessor promotion). */
  leaderTermApplied(): void;
  /** A lease was revoked (by a client or by expiry): renewals waiting on it can answer. */
  leaseRevoked(id: bigint): void;
  /** This member applied its own removal. */
  selfRemoved(): void;
  /** Whether a client on this member waits for the entry proposed under `id`. */
  waiting(id: bigint): boolean;
}

/** A configuration change as the applier applied it. */
export interface AppliedChange {
  /** As proposed (the waiter's key). */
  proposed: ConfChange;
  /** As applied: node id 0 when the membership refused it. */
  cc: ConfChange;
  /** The configuration after it. */
  conf: ConfState;
  index: number;
  error?: EtcdError;
}

/** What one Ready's committed entries produced for the member's waiters. */
export interface ApplyBatch {
  /** Responses (or etcd errors) for the proposals someone here waits for, by request id. */
  answers: Array<[bigint, AnyResponse | EtcdError]>;
  confChanges: AppliedChange[];
}

export function emptyBatch(): ApplyBatch {
  return { answers: [], confChanges: [] };
}

export class Applier {
  private applied: number;
  /** Last log index delivered to apply (replays included): `conf` is exact here. */
  private delivered: number;
  private conf: ConfState;

  constructor(
    private readonly state: MemberState,
    private readonly host: ApplierHost,
    start: { appliedIndex: number; snapshotIndex: number; confState: ConfState },
  ) {
    this.applied = start.appliedIndex;
    this.delivered = start.snapshotIndex;
    this.conf = start.confState;
  }

  get appliedIndex(): number {
    return this.applied;
  }

  get deliveredIndex(): number {
    return this.delivered;
  }

  get confState(): ConfState {
    return this.conf;
  }

  /** Whether this member is the only voter (it then commits and applies alone). */
  isLoneVoter(): boolean {
    return this.conf.voters.length === 1 && this.conf.voters[0] === this.host.memberId;
  }

  /** A snapshot replaced the state (inside its transaction): its data is applied up to `dataIndex`, its metadata is at `meta`. */
  reset(snapshot: { index: number; confState: ConfState }, dataIndex: number): void {
    this.applied = Math.max(snapshot.index, dataIndex);
    this.delivered = snapshot.index;
    this.conf = snapshot.confState;
  }

  /**
   * Applies committed entries, inside the Ready's transaction, and records the applied index
   * there. `committed`: Raft's commit index, which no entry handed here may exceed.
   */
  applyEntries(entries: readonly Entry[], committed: number, out: ApplyBatch): void {
    for (const e of entries) {
      invariant(e.index <= committed, `entry ${e.index} delivered for apply above the commit index ${committed}`);
      invariant(e.index === this.delivered + 1, `entry ${e.index} delivered after ${this.delivered}`);
      this.applyEntry(e, out);
    }
  }

  /** Records the applied index inside the current transaction. */
  persist(): void {
    this.state.meta.setNumber(APPLIED_INDEX, this.applied);
  }

  private applyEntry(e: Entry, out: ApplyBatch): void {
    const replay = e.index <= this.applied;
    if (!replay) invariant(e.index === this.applied + 1, `entry ${e.index} applied after ${this.applied}`);
    this.delivered = e.index;
    if (e.type === EntryType.ConfChange) {
      this.applyConfChange(e, replay, out);
      return;
    }
    if (replay) return; // already in the state (a snapshot's copy, or applied before a restart)
    this.applied = e.index;
    if (e.data.byteLength === 0) {
      // A new leader's empty entry: once it is applied here, so is everything of earlier terms,
      // and the lessor knows every lease (etcd promotes its lessor at the same point).
      if (this.host.leadsTerm(e.term)) this.host.leaderTermApplied();
      return;
    }
    const req = fromBinary(InternalRequestSchema, e.data);
    let result: AnyResponse | EtcdError;
    try {
      // A leader-only decision counts only in the term it was made in (see leader_term).
      if (req.leaderTerm !== 0n && req.leaderTerm !== BigInt(e.term)) throw Errors.leaderChanged();
      result = this.dispatch(req.request);
    } catch (err) {
      // A user error is a deterministic result of the entry, not a failure of the batch.
      if (!(err instanceof EtcdError)) throw err;
      result = err;
    }
    if (req.id !== 0n && this.host.waiting(req.id)) out.answers.push([req.id, result]);
  }

  private applyConfChange(e: Entry, replay: boolean, out: ApplyBatch): void {
    const proposed = decodeConfChange(e.data);
    const res = this.state.membership.applyConfChange(proposed, replay);
    const cc: ConfChange = { type: res.type, nodeId: res.nodeId, context: res.context };
    this.conf = applyChange(this.conf, cc);
    out.confChanges.push({ proposed, cc, conf: this.conf, index: e.index, error: res.error });
    if (replay) return;
    this.applied = e.index;
    if (cc.nodeId === this.host.memberId && cc.type === ConfChangeType.RemoveNode) this.host.selfRemoved();
  }

  /** One request, by kind; every kind the log can carry is handled here. */
  private dispatch(r: RequestBody): AnyResponse {
    const { store, alarms, lessor, membership } = this.state;
    const header = () => create(ResponseHeaderSchema, { revision: BigInt(store.rev) });
    switch (r.case) {
      case "put":
        if (alarms.has(AlarmType.NOSPACE)) throw Errors.noSpace();
        return store.put(r.value);
      case "deleteRange":
        return store.deleteRange(r.value);
      case "txn":
        if (alarms.has(AlarmType.NOSPACE) && txnPuts(r.value)) throw Errors.noSpace();
        return store.txn(r.value);
      case "compaction":
        store.compact(Number(r.value.revision));
        return create(CompactionResponseSchema, { header: header() });
      case "alarm":
        return alarms.apply(r.value);
      case "leaseGrant": {
        // etcd's capped applier refuses new leases too while NOSPACE is raised.
        if (alarms.has(AlarmType.NOSPACE)) throw Errors.noSpace();
        const l = lessor.grant(r.value.ID, Number(r.value.TTL));
        return create(LeaseGrantResponseSchema, { header: header(), ID: l.id, TTL: BigInt(l.ttl) });
      }
      case "leaseRevoke": {
        const id = r.value.ID;
        lessor.revoke(id, (keys) => {
          if (keys.length > 0) store.deleteKeys(keys);
        });
        this.host.leaseRevoked(id);
        return create(LeaseRevokeResponseSchema, { header: header() });
      }
      case "leaseCheckpoint":
        for (const cp of r.value.checkpoints) lessor.checkpoint(cp.ID, Number(cp.remainingTTL));
        return create(LeaseCheckpointResponseSchema, { header: header() });
      case "memberAttributes":
        membership.applyAttributes(r.value.memberId, r.value.name, r.value.clientUrls);
        return {};
      case "clusterVersion":
        membership.applyClusterVersion(r.value.version);
        return {};
      case "authUserAdd":
      case "authUserDelete":
      case "authUserChangePassword":
      case "authUserGrantRole":
      case "authUserRevokeRole":
      case "authRoleAdd":
      case "authRoleDelete":
      case "authRoleGrantPermission":
      case "authRoleRevokePermission":
        return applyAuth(this.state.auth, r, header());
      case undefined:
        throw new Error("apply: a log entry carries no request");
      default:
        return unreachable(r, "apply: unknown request kind");
    }
  }
}

/** Whether a txn may add data (a put in any branch, nested included): refused while NOSPACE is active. */
function txnPuts(t: TxnRequest): boolean {
  const puts = (op: RequestOp): boolean => op.request.case === "requestPut" || (op.request.case === "requestTxn" && txnPuts(op.request.value));
  return t.success.some(puts) || t.failure.some(puts);
}
