// Proposals and the clients waiting on them (etcd's processInternalRaftRequest
// and its wait registry): a request is encoded with a fresh id, checked
// against the member's limits, handed to Raft, and its client waits until the
// entry is applied here (or times out). Membership changes wait by (type,
// node id), one at a time. waitApplied is etcd's waitAppliedIndex.
import { create, toBinary } from "@bufbuild/protobuf";
import { AlarmRequest_AlarmAction, AlarmRequestSchema, AlarmType } from "../gen/etcdserverpb/rpc_pb.js";
import { InternalRequestSchema } from "../gen/tsetcdpb/internal_pb.js";
import { invariant } from "./invariant.js";
import { EtcdError, Errors } from "../errors.js";
import { log } from "../log.js";
import type { ConfChange, ConfChangeType } from "../raft/types.js";
import type { Clock, Scheduler } from "../runtime/time.js";
import type { ApplyBatch } from "./apply.js";
import type { AnyResponse, ProposeOptions, RequestBody, RequestKind, RequestOf, ResponseOf } from "./requests.js";
import { RequestIds, Waiters } from "./waiters.js";

/** Proposals (and callers of waitApplied) waiting at once; past this, clients get "too many requests". */
export const MAX_PENDING = 20_000;
/** etcd's maxGapBetweenApplyAndCommitIndex: refuse proposals when apply lags this far behind. */
const MAX_APPLY_GAP = 5000;
/** etcd's applyTimeout: how long waitApplied waits. */
const APPLY_TIMEOUT_MS = 1000;

export interface ProposalHost {
  readonly memberId: bigint;
  /** Hands an encoded entry to Raft; false when there is no leader to take it (or a transfer runs). */
  raftPropose(data: Uint8Array): boolean;
  raftProposeConfChange(cc: ConfChange): boolean;
  /** Raft's commit index, its term, and the leader this member knows (0n: none). */
  committed(): number;
  term(): number;
  leader(): bigint;
  isLeader(): boolean;
  appliedIndex(): number;
  isLearner(): boolean;
  stopped(): boolean;
  /** Something for the Raft loop to do. */
  schedule(): void;
  /** Completes a response's header (cluster, member, term) before its client gets it. */
  fillHeader<T extends AnyResponse>(resp: T): T;
  /** The quota check: database size after the last commit, and whether NOSPACE is raised. */
  sizeAfterLastCommit(): number;
  noSpaceAlarm(): boolean;
}

export interface ProposalLimits {
  maxRequestBytes: number;
  quotaBytes: number;
  requestTimeoutMs: number;
  /** How often a refused membership change is tried again. */
  confRetryMs: number;
}

interface Blocked {
  id: bigint;
  data: Uint8Array;
}

interface AppliedWaiter {
  index: number;
  resolve(): void;
  reject(e: unknown): void;
}

export class Proposals {
  private readonly ids: RequestIds;
  private readonly waiters: Waiters;
  /** Conf change proposals, keyed by confKey(type, node id): one change at a time. */
  private readonly confWaiters: Waiters;
  /** Proposals Raft refused while there was no leader, retried when one is known. */
  private blocked: Blocked[] = [];
  private appliedWaiters: AppliedWaiter[] = [];

  constructor(
    private readonly host: ProposalHost,
    private readonly limits: ProposalLimits,
    private readonly clock: Clock,
    private readonly scheduler: Scheduler,
  ) {
    this.ids = new RequestIds(host.memberId, clock.wall());
    this.waiters = new Waiters(limits.requestTimeoutMs, clock);
    this.confWaiters = new Waiters(limits.requestTimeoutMs, clock);
  }

  /** Proposals waiting for their entry. */
  get pending(): number {
    return this.waiters.size;
  }

  /** A fresh id from this member's request-id generator (lease ids are taken from it, as in etcd). */
  nextId(): bigint {
    return this.ids.take();
  }

  /** Whether a client here waits for the entry proposed under `id`. */
  waiting(id: bigint): boolean {
    return this.waiters.has(id);
  }

  propose<K extends RequestKind>(request: RequestOf<K>, opts: ProposeOptions = {}): Promise<ResponseOf[K]> {
    const refused = this.refusal(opts);
    if (refused !== undefined) return Promise.reject(refused);
    const id = this.ids.take();
    const leaderTerm = opts.leaderOnly ? BigInt(this.host.term()) : 0n;
    const data = toBinary(InternalRequestSchema, create(InternalRequestSchema, { id, leaderTerm, request }));
    if (data.length > this.limits.maxRequestBytes) return Promise.reject(Errors.requestTooLarge());
    if (addsData((request as RequestBody).case as RequestKind) && this.host.sizeAfterLastCommit() + data.length > this.limits.quotaBytes)
      return Promise.reject(this.overQuota());
    const wait = this.waiters.wait<ResponseOf[K]>(id, this.host.leader());
    if (this.host.raftPropose(data)) {
      this.host.schedule();
      return wait;
    }
    if (opts.leaderOnly) {
      this.waiters.reject(id, Errors.notLeader());
      return wait;
    }
    // No leader (or a transfer under way): wait for one, as etcd's proposals block.
    this.blocked.push({ id, data });
    invariant(this.blocked.length <= MAX_PENDING, `${this.blocked.length} blocked proposals`);
    this.host.schedule();
    return wait;
  }

  /** Why a proposal is refused before it is encoded, if it is. */
  private refusal(opts: ProposeOptions): EtcdError | undefined {
    if (this.host.stopped()) return Errors.stopped();
    if (this.waiters.size >= MAX_PENDING) return Errors.tooManyRequests();
    if (this.host.committed() - this.host.appliedIndex() > MAX_APPLY_GAP) return Errors.tooManyRequests();
    if (this.host.isLearner()) return Errors.notSupportedForLearner();
    if (opts.leaderOnly && !this.host.isLeader()) return Errors.notLeader();
    return undefined;
  }

  /**
   * As etcd: the first write over the quota raises the NOSPACE alarm (through the log, so it
   * survives restarts), and every such write is refused.
   */
  private overQuota(): EtcdError {
    if (!this.host.noSpaceAlarm()) {
      log.warn("database space exceeded", { "quota-size-bytes": this.limits.quotaBytes, "current-size-bytes": this.host.sizeAfterLastCommit() });
      const alarm = create(AlarmRequestSchema, { action: AlarmRequest_AlarmAction.ACTIVATE, memberID: this.host.memberId, alarm: AlarmType.NOSPACE });
      void this.propose({ case: "alarm", value: alarm }).catch(() => {});
    }
    return Errors.noSpace();
  }

  /** A leader is known: proposals refused meanwhile go to it. */
  retryBlocked(): void {
    if (this.blocked.length === 0) return;
    const todo = this.blocked;
    this.blocked = [];
    for (const b of todo) {
      if (!this.waiters.has(b.id)) continue; // timed out meanwhile
      if (!this.host.raftPropose(b.data)) this.blocked.push(b);
    }
    this.host.schedule();
  }

  /** Proposes a membership change; resolves once applied here, rejects with the reason the cluster refused it at apply time. */
  async proposeConfChange(cc: ConfChange): Promise<void> {
    if (this.host.stopped()) throw Errors.stopped();
    const key = confKey(cc.type, cc.nodeId);
    const wait = this.confWaiters.wait<void>(key, this.host.leader());
    // The member may stop while this retries below, rejecting `wait` before it is returned:
    // marked handled here so that is not reported as an unhandled rejection (the caller still gets it).
    wait.catch(() => {});
    const deadline = this.clock.now() + this.limits.requestTimeoutMs;
    for (;;) {
      const ok = this.host.raftProposeConfChange(cc);
      this.host.schedule();
      if (ok) break;
      // One change at a time, and none without a leader: retry until the deadline.
      if (this.clock.now() > deadline || this.host.stopped()) break;
      await this.scheduler.sleep(this.limits.confRetryMs);
    }
    return wait;
  }

  /** Resolves once every entry committed now is applied here (etcd's waitAppliedIndex). */
  waitApplied(): Promise<void> {
    if (this.host.stopped()) return Promise.reject(Errors.stopped());
    const index = this.host.committed();
    if (this.host.appliedIndex() >= index) return Promise.resolve();
    if (this.appliedWaiters.length >= MAX_PENDING) return Promise.reject(Errors.tooManyRequests());
    return new Promise((resolve, reject) => {
      // etcd's applyTimeout: a member that cannot catch up in a second answers so.
      const cancel = this.scheduler.after(APPLY_TIMEOUT_MS, () => {
        this.appliedWaiters = this.appliedWaiters.filter((w) => w !== waiter);
        reject(Errors.timeoutWaitAppliedIndex());
      });
      const waiter: AppliedWaiter = {
        index,
        resolve: () => {
          cancel();
          resolve();
        },
        reject: (e) => {
          cancel();
          reject(e);
        },
      };
      this.appliedWaiters.push(waiter);
      this.host.schedule();
    });
  }

  /** After a Ready: clients get their answers (membership changes included). */
  settle(batch: ApplyBatch): void {
    for (const [id, result] of batch.answers) {
      if (result instanceof EtcdError) this.waiters.reject(id, result);
      else this.waiters.resolve(id, this.host.fillHeader(result));
    }
    for (const c of batch.confChanges) {
      const key = confKey(c.proposed.type, c.proposed.nodeId);
      if (c.error) this.confWaiters.reject(key, c.error);
      else this.confWaiters.resolve(key, undefined);
    }
  }

  /** The member applied up to `applied`: waitApplied callers waiting for it are released. */
  releaseApplied(applied: number): void {
    if (this.appliedWaiters.length === 0) return;
    const still: AppliedWaiter[] = [];
    for (const w of this.appliedWaiters) {
      if (applied >= w.index) w.resolve();
      else still.push(w);
    }
    this.appliedWaiters = still;
  }

  /** The clock: waits past their deadline fail; proposals blocked meanwhile are retried or dropped. */
  tick(): void {
    const now = this.clock.now();
    const leader = this.host.leader();
    const timeoutError = (startedLeader: bigint) => (startedLeader !== leader ? Errors.timeoutDueToLeaderFail() : Errors.timeout());
    this.waiters.expire(now, timeoutError);
    this.confWaiters.expire(now, timeoutError);
    if (this.blocked.length > 0) {
      this.blocked = this.blocked.filter((b) => this.waiters.has(b.id));
      if (leader !== 0n) this.retryBlocked();
    }
    invariant(this.waiters.size <= MAX_PENDING, `${this.waiters.size} proposals waiting`);
    invariant(this.appliedWaiters.length <= MAX_PENDING, `${this.appliedWaiters.length} waiting for apply`);
  }

  /** The member stops: every waiting client fails with `err`. */
  rejectAll(err: unknown): void {
    this.blocked = [];
    this.waiters.rejectAll(err);
    this.confWaiters.rejectAll(err);
    for (const w of this.appliedWaiters.splice(0)) w.reject(err);
  }
}

/** Requests that add data: refused over the quota. */
function addsData(kind: RequestKind): boolean {
  return kind === "put" || kind === "txn" || kind === "leaseGrant";
}

function confKey(type: ConfChangeType, nodeId: bigint): bigint {
  return (BigInt(type) << 64n) | nodeId;
}
