// The member's side of leases that is not apply: the leader's clock work
// (expiring leases and checkpointing remaining TTLs, both through the log),
// keep-alives and time-to-live answered by the leader (a follower forwards
// them over the peer port, as etcd's leasehttp does), and waiting for what a
// renewal depends on. Apply itself is in apply.ts, over the Lessor.
//
// Peer wire format (ours; tsetcd members only talk to tsetcd members):
//   POST /leases           body LeaseRenewBatch         → 200 LeaseRenewResults (a TTL, NOT_FOUND
//                          or RETRY per id: the keep-alives that reached the follower together)
//   POST /leases/internal  body LeaseTimeToLiveRequest  → 200 LeaseTimeToLiveResponse, or 404
//                          "lease not found"
//   503 "not leader" from a member that is not (yet) the serving leader.
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import {
  LeaseCheckpointRequestSchema,
  LeaseRevokeRequestSchema,
  LeaseCheckpointSchema,
  LeaseTimeToLiveRequestSchema,
  LeaseTimeToLiveResponseSchema,
  type LeaseTimeToLiveResponse,
} from "../gen/etcdserverpb/rpc_pb.js";
import { LeaseRenewBatchSchema, LeaseRenewResultsSchema } from "../gen/tsetcdpb/internal_pb.js";
import { Errors } from "../errors.js";
import { invariant } from "./invariant.js";
import { log } from "../log.js";
import type { Lessor } from "../lease/lessor.js";
import type { Clock, Scheduler } from "../runtime/time.js";
import type { PeerRequest, PeerResponse } from "../transport/types.js";
import type { Propose } from "./requests.js";

export const LEASE_RENEW_PATH = "/leases";
export const LEASE_TTL_PATH = "/leases/internal";

/** Expired leases proposed for revoke per round: etcd's rate of 1000 per second. */
const REVOKES_PER_ROUND = 100;
/** etcd's maxLeaseCheckpointBatchSize. */
const CHECKPOINTS_PER_ENTRY = 1000;
/** Forwarded keep-alives per peer request. */
const MAX_RENEW_BATCH = 1000;
/** LeaseRenewResults answers besides a TTL. */
const RENEW_NOT_FOUND = -1n;
const RENEW_RETRY = -2n;
/** Housekeeping rounds (expiry, checkpoints) at most this often. */
const ROUND_MS = 100;

export interface LeaseHost {
  /** `leaderOnly`: refused unless this member leads, and applied only in the term it was proposed in. */
  propose: Propose;
  isLeader(): boolean;
  /** A POST to the current leader's peer port (on a reused connection); undefined while there is no leader. Rejects when the leader cannot be reached. */
  requestLeader(path: string, body: Uint8Array, timeoutMs: number): Promise<{ status: number; body: Uint8Array }> | undefined;
  /** Resolves once everything committed when called is applied here. */
  waitApplied(): Promise<void>;
  readonly requestTimeoutMs: number;
  readonly electionTimeoutMs: number;
  stopped(): boolean;
  readonly clock: Clock;
  readonly scheduler: Scheduler;
}

export type TimeToLive = { ttl: number; grantedTtl: number; keys: Uint8Array[] } | "notFound";

export class LeaseDriver {
  private lastRound = 0;
  /** Renewals waiting for a lease to be revoked (or for this member to stop leading). */
  private readonly goneWaiters = new Map<bigint, Array<() => void>>();
  /**
   * Leases with a checkpoint entry this leader proposed that may still apply (in flight, or
   * failed: a timed-out proposal can still be in the log), with the number of the last such
   * proposal. A renewal of one first proposes a reset; once a reset proposed after that
   * checkpoint is applied, log order guarantees the checkpoint applied before it (or never).
   */
  private readonly unsettled = new Map<bigint, number>();
  private proposals = 0;
  /** Leases whose checkpointed remaining TTL a renewal is about to reset, batched into one entry. */
  private resetBatch: { ids: Set<bigint>; done: Promise<boolean> } | undefined;
  /** Keep-alives to forward, sent together at the end of the current microtask checkpoint. */
  private renewBatch: Array<{ id: bigint; resolve: (r: number | "notFound" | undefined) => void }> = [];

  constructor(
    readonly lessor: Lessor,
    private readonly host: LeaseHost,
  ) {}

  // ---- leadership ----

  /** The leader applied its first entry of the term: everything before it is in the lessor. */
  promote(): void {
    this.lessor.promote(this.host.electionTimeoutMs);
    log.info("lessor promoted", { leases: this.lessor.size });
  }

  demote(): void {
    if (!this.lessor.isPrimary) return;
    this.lessor.demote();
    // A new term: this leader's checkpoints either applied before the next leader's first
    // entry or were dropped (leader_term), so none can land after a later renewal.
    this.unsettled.clear();
    this.releaseAll();
  }

  /** Called after a lease was revoked by apply (client or expiry). */
  revoked(id: bigint): void {
    this.unsettled.delete(id);
    const ws = this.goneWaiters.get(id);
    if (ws === undefined) return;
    this.goneWaiters.delete(id);
    for (const w of ws) w();
  }

  stop(): void {
    this.releaseAll();
  }

  private releaseAll(): void {
    const all = [...this.goneWaiters.values()];
    this.goneWaiters.clear();
    for (const ws of all) for (const w of ws) w();
  }

  /** From the member's clock tick: the leader expires leases and records checkpoints. */
  tick(now = this.host.clock.now()): void {
    // Raft may have stepped down already, before the Ready that demotes the lessor.
    if (!this.lessor.isPrimary || !this.host.isLeader() || now - this.lastRound < ROUND_MS) return;
    this.lastRound = now;
    for (const id of this.lessor.expired(REVOKES_PER_ROUND)) {
      this.host.propose({ case: "leaseRevoke", value: create(LeaseRevokeRequestSchema, { ID: id }) }, { leaderOnly: true }).then(
        () => log.debug("revoked expired lease", { "lease-id": id.toString(16) }),
        (err) => log.warn("failed to revoke an expired lease", { "lease-id": id.toString(16), error: String((err as Error)?.message ?? err) }),
      );
    }
    for (;;) {
      const due = this.lessor.dueCheckpoints(CHECKPOINTS_PER_ENTRY);
      if (due.length === 0) break;
      this.proposeCheckpoints(due);
      if (due.length < CHECKPOINTS_PER_ENTRY) break;
    }
  }

  /** Proposes remaining TTLs (0 = reset); resolves true once applied, false when it failed. */
  private proposeCheckpoints(cps: Array<[bigint, number]>): Promise<boolean> {
    const seq = ++this.proposals;
    const req = create(LeaseCheckpointRequestSchema, {
      checkpoints: cps.map(([id, remaining]) => create(LeaseCheckpointSchema, { ID: id, remainingTTL: BigInt(remaining) })),
    });
    for (const [id, remaining] of cps) if (remaining > 0) this.unsettled.set(id, seq);
    return this.host.propose({ case: "leaseCheckpoint", value: req }, { leaderOnly: true }).then(
      () => {
        for (const [id, remaining] of cps) {
          // A reset settles every checkpoint proposed before it; an applied checkpoint is on
          // record (needsReset) and settled too, unless a later one is still out.
          if (remaining === 0 ? (this.unsettled.get(id) ?? 0) < seq : this.unsettled.get(id) === seq) this.unsettled.delete(id);
        }
        return true;
      },
      (err) => {
        log.warn("failed to checkpoint leases", { count: cps.length, error: String((err as Error)?.message ?? err) });
        return false;
      },
    );
  }

  // ---- keep-alive and time-to-live ----

  /** LeaseKeepAlive: the lease's TTL once renewed, or "notFound". Served by the leader. */
  async renew(id: bigint): Promise<number | "notFound"> {
    const deadline = this.host.clock.now() + this.host.requestTimeoutMs;
    while (!this.host.stopped()) {
      if (this.host.isLeader()) {
        const r = await this.renewHere(id, deadline);
        if (r !== "notPrimary") return r;
      } else {
        const r = await this.forwardRenew(id);
        if (r !== undefined) return r;
      }
      if (this.host.clock.now() >= deadline) throw Errors.timeout();
      await this.host.scheduler.sleep(Math.min(100, this.host.electionTimeoutMs / 4));
    }
    throw Errors.stopped();
  }

  /** On the leader: waits for what a renewal depends on, then renews. */
  private async renewHere(id: bigint, deadline: number, applied = false): Promise<number | "notFound" | "notPrimary"> {
    if (!applied) await this.host.waitApplied();
    for (;;) {
      if (this.host.clock.now() >= deadline) throw Errors.timeout();
      if (!this.host.isLeader()) return "notPrimary";
      // A checkpoint computed before this renewal must not land after it: reset it first.
      if (this.lessor.exists(id) && (this.lessor.needsReset(id) || this.unsettled.has(id))) {
        if (!(await this.resetRemaining(id))) await this.host.scheduler.sleep(Math.min(100, this.host.electionTimeoutMs / 4));
        continue;
      }
      const r = this.lessor.renew(id);
      if (r === "expired") {
        // Its revoke is on the way: answer once it is applied (not found), or retry elsewhere if leadership moves.
        await this.waitGone(id, deadline);
        continue;
      }
      if (r === "notFound" || r === "notPrimary") return r;
      return r.ttl;
    }
  }

  private resetRemaining(id: bigint): Promise<boolean> {
    if (this.resetBatch === undefined) {
      const ids = new Set<bigint>();
      const done = Promise.resolve().then(() => {
        // Everyone who asked in this turn shares one entry.
        this.resetBatch = undefined;
        return this.proposeCheckpoints([...ids].map((i) => [i, 0]));
      });
      this.resetBatch = { ids, done };
    }
    this.resetBatch.ids.add(id);
    return this.resetBatch.done;
  }

  private waitGone(id: bigint, deadline: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        cancel();
        resolve();
      };
      const cancel = this.host.scheduler.after(Math.max(1, deadline - this.host.clock.now()), () => {
        const rest = (this.goneWaiters.get(id) ?? []).filter((w) => w !== done);
        if (rest.length > 0) this.goneWaiters.set(id, rest);
        else this.goneWaiters.delete(id);
        resolve();
      });
      const list = this.goneWaiters.get(id) ?? [];
      list.push(done);
      this.goneWaiters.set(id, list);
    });
  }

  /** LeaseTimeToLive, from the leader. */
  async timeToLive(id: bigint, withKeys: boolean): Promise<TimeToLive> {
    const deadline = this.host.clock.now() + this.host.requestTimeoutMs;
    while (!this.host.stopped()) {
      if (this.host.isLeader()) {
        await this.host.waitApplied();
        // A leader serves leases once it applied its term's first entry (promote).
        if (this.host.isLeader() && this.lessor.isPrimary) return this.timeToLiveHere(id, withKeys);
      } else {
        const body = toBinary(LeaseTimeToLiveRequestSchema, create(LeaseTimeToLiveRequestSchema, { ID: id, keys: withKeys }));
        const r = await this.forward(LEASE_TTL_PATH, body, deadline);
        if (r === "notFound") return r;
        if (r !== undefined) {
          const resp = fromBinary(LeaseTimeToLiveResponseSchema, r);
          return { ttl: Number(resp.TTL), grantedTtl: Number(resp.grantedTTL), keys: resp.keys };
        }
      }
      if (this.host.clock.now() >= deadline) throw Errors.timeout();
      await this.host.scheduler.sleep(Math.min(100, this.host.electionTimeoutMs / 4));
    }
    throw Errors.stopped();
  }

  private timeToLiveHere(id: bigint, withKeys: boolean): TimeToLive {
    const l = this.lessor.lookup(id);
    const ms = this.lessor.remainingMs(id);
    if (l === undefined || ms === undefined) return "notFound";
    invariant(Number.isFinite(ms), `time-to-live of lease ${id} asked of a lessor that is not primary`);
    const keys = withKeys ? [...l.keys.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, k]) => k) : [];
    // etcd: int64(Remaining().Seconds()), which truncates.
    return { ttl: Math.trunc(ms / 1000), grantedTtl: l.ttl, keys };
  }

  /** Queues a keep-alive for the leader; resolves with its TTL, "notFound", or undefined to retry. */
  private forwardRenew(id: bigint): Promise<number | "notFound" | undefined> {
    return new Promise((resolve) => {
      if (this.renewBatch.length === 0) queueMicrotask(() => this.flushRenewals());
      this.renewBatch.push({ id, resolve });
    });
  }

  private flushRenewals(): void {
    while (this.renewBatch.length > 0) {
      const part = this.renewBatch.splice(0, MAX_RENEW_BATCH);
      const body = toBinary(LeaseRenewBatchSchema, create(LeaseRenewBatchSchema, { ids: part.map((p) => p.id) }));
      void this.forward(LEASE_RENEW_PATH, body, this.host.clock.now() + this.host.requestTimeoutMs).then((r) => {
        const ttls = r === undefined || r === "notFound" ? [] : fromBinary(LeaseRenewResultsSchema, r).ttls;
        part.forEach((p, i) => {
          const t = ttls.length === part.length ? ttls[i] : RENEW_RETRY;
          p.resolve(t === RENEW_NOT_FOUND ? "notFound" : t === RENEW_RETRY ? undefined : Number(t));
        });
      });
    }
  }

  /** One forwarded request to the leader: its body, "notFound", or undefined to retry. */
  private async forward(path: string, body: Uint8Array, deadline: number): Promise<Uint8Array | "notFound" | undefined> {
    const timeoutMs = Math.max(1, Math.min(deadline - this.host.clock.now(), this.host.requestTimeoutMs));
    const call = this.host.requestLeader(path, body, timeoutMs);
    if (call === undefined) return undefined;
    try {
      const reply = await call;
      if (reply.status === 200) return reply.body;
      if (reply.status === 404) return "notFound";
      return undefined;
    } catch {
      return undefined;
    }
  }

  /** The leader's half of forwarding: a peer's POST /leases or /leases/internal. */
  async peerRequest(req: PeerRequest): Promise<PeerResponse> {
    const text = (status: number, body: string): PeerResponse => ({ status, headers: { "content-type": "text/plain" }, body });
    const proto = (body: Uint8Array): PeerResponse => ({ status: 200, headers: { "content-type": "application/protobuf" }, body });
    if (req.method !== "POST") return text(405, "method not allowed\n");
    if (!this.host.isLeader() || !this.lessor.isPrimary) return text(503, "not leader\n");
    const deadline = this.host.clock.now() + this.host.requestTimeoutMs;
    try {
      if (req.path === LEASE_RENEW_PATH) {
        const { ids } = fromBinary(LeaseRenewBatchSchema, req.body);
        if (ids.length > MAX_RENEW_BATCH) return text(413, "too many leases in one batch\n");
        await this.host.waitApplied(); // once for the whole batch
        const ttls = await Promise.all(
          ids.map((id) =>
            this.renewHere(id, deadline, true).then(
              (r) => (r === "notFound" ? RENEW_NOT_FOUND : r === "notPrimary" ? RENEW_RETRY : BigInt(r)),
              () => RENEW_RETRY,
            ),
          ),
        );
        return proto(toBinary(LeaseRenewResultsSchema, create(LeaseRenewResultsSchema, { ttls })));
      }
      const q = fromBinary(LeaseTimeToLiveRequestSchema, req.body);
      await this.host.waitApplied();
      if (!this.lessor.isPrimary) return text(503, "not leader\n");
      const r = this.timeToLiveHere(q.ID, q.keys);
      if (r === "notFound") return text(404, "lease not found\n");
      const resp: LeaseTimeToLiveResponse = create(LeaseTimeToLiveResponseSchema, {
        ID: q.ID,
        TTL: BigInt(r.ttl),
        grantedTTL: BigInt(r.grantedTtl),
        keys: r.keys,
      });
      return proto(toBinary(LeaseTimeToLiveResponseSchema, resp));
    } catch (err) {
      return text(500, `${(err as Error)?.message ?? String(err)}\n`);
    }
  }
}
