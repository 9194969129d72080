// One tsetcd member (etcd's EtcdServer): its lifecycle and the view the API
// layer and tests have of it. Each part has one job behind a narrow interface
// (wired together in parts.ts):
//   raft-loop.ts    the Ready loop: step, tick, send-first-then-persist, advance
//   loop-host.ts    what each step of a Ready hands to the parts
//   apply.ts        committed entries become state, exactly once, in log order
//   snapshots.ts    take, send, receive and install snapshots
//   proposals.ts    proposals and the clients waiting on them
//   read-index.ts   linearizable reads through ReadIndex
//   v3-server.ts    the typed v3 request surface (KV, leases, headers)
//   maintenance.ts  status, health, hashes, alarms, leader transfer, defrag
//   peers.ts        the peer set, peer-port requests, removal
//   lease-driver.ts lease expiry, keep-alive and time-to-live on the leader
//   cluster-ops.ts  the Cluster service's rules
// Time, chance and the peer network are injected (MemberDeps), so the
// simulator in sim/ runs several whole members on one seeded clock.
import type { Database } from "bun:sqlite";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { create } from "@bufbuild/protobuf";
import { MemberAttributesSchema } from "../gen/tsetcdpb/internal_pb.js";
import { invariant } from "./invariant.js";
import { Errors } from "../errors.js";
import { log } from "../log.js";
import { systemRuntime, type Cancel, type Runtime } from "../runtime/time.js";
import { openDatabase } from "../storage/db.js";
import { bootstrap, type Identity } from "./bootstrap.js";
import type { ClusterOps } from "./cluster-ops.js";
import type { LeaseDriver } from "./lease-driver.js";
import type { Maintenance } from "./maintenance.js";
import type { MemberConfig } from "./member-config.js";
import type { MemberInfo } from "./member-info.js";
import type { Metrics } from "./metrics.js";
import type { NetworkFactory, PeerNetwork } from "./peer-network.js";
import type { Parts } from "./member-parts.js";
import { buildParts, progressOf } from "./wiring.js";
import { logRemoved } from "./peers.js";
import { MAX_PENDING } from "./proposals.js";
import type { ProposeOptions, RequestKind, RequestOf, ResponseOf } from "./requests.js";
import type { MemberState } from "./state.js";
import type { V3Server } from "./v3-server.js";
import type { AuthServer } from "./auth-server.js";

export type { MemberConfig } from "./member-config.js";

/** What the member runs on; the defaults are the real clock, timers and transport. */
export interface MemberDeps {
  runtime?: Runtime;
  network?: NetworkFactory;
  /**
   * Commits holding log writes are fsynced (default). false only for the simulator, whose
   * crashes are process crashes: what SQLite handed to the OS survives them either way.
   */
  fsync?: boolean;
  /** Node's process metrics in /metrics (default); off in the simulator, which runs many members in one process. */
  processMetrics?: boolean;
}

/** How often a member retries publishing itself. */
const PUBLISH_RETRY_MS = 500;

export class Member {
  readonly memberId: bigint;
  readonly clusterId: bigint;
  /** The replicated state: store, leases, alarms, membership, watch hub. */
  readonly state: MemberState;
  /** The typed v3 request surface (KV, leases, headers). */
  readonly kv: V3Server;
  /** Users and roles (the Auth service's calls). */
  readonly auth: AuthServer;
  readonly maintenance: Maintenance;
  /** The Cluster service's rules (member add/remove/update/promote/list). */
  readonly clusterOps: ClusterOps;
  /** Lease expiry, keep-alive and time-to-live (the lessor's apply side is in the applier). */
  readonly leases: LeaseDriver;
  readonly metrics: Metrics;
  readonly network: PeerNetwork;
  /** Called when the member cannot go on (a failed write, a removal): the process should exit. */
  onFatal: (reason: string, err?: unknown) => void = () => {};

  private readonly runtime: Runtime;
  private readonly parts: Parts;
  private stopped = false;
  /** stop() ran: network and database closed (or closing). */
  private closed = false;
  private cancelTicker: Cancel | undefined;
  private published = false;
  private readyWaiters: Array<() => void> = [];

  private constructor(
    private readonly db: Database,
    readonly config: MemberConfig,
    identity: Identity,
    deps: MemberDeps,
  ) {
    this.runtime = deps.runtime ?? systemRuntime;
    const p = (this.parts = buildParts({
      db,
      config,
      identity,
      runtime: this.runtime,
      network: deps.network,
      fsync: deps.fsync ?? true,
      processMetrics: deps.processMetrics ?? true,
      owner: {
        stopped: () => this.stopped,
        fatal: (what, err) => this.fatal(what, err),
        removed: (reason) => this.removed(reason),
        // Through this.propose at call time: one path for every proposal of the member's parts.
        propose: (request, opts) => this.propose(request, opts),
      },
    }));
    this.memberId = p.memberId;
    this.clusterId = p.clusterId;
    this.state = p.state;
    this.kv = p.kv;
    this.auth = p.auth;
    this.maintenance = p.maintenance;
    this.clusterOps = p.clusterOps;
    this.leases = p.leases;
    this.metrics = p.metrics;
    this.network = p.network;
  }

  static async open(config: MemberConfig, deps: MemberDeps = {}): Promise<Member> {
    const dir = join(config.dataDir, "member");
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const db = openDatabase(join(dir, "tsetcd.db"));
    try {
      const identity = await bootstrap(db, config);
      return new Member(db, config, identity, deps);
    } catch (err) {
      db.close();
      throw err;
    }
  }

  /** Listens for peers, replays what the log holds, starts the clock; resolves once the member can serve (it published itself). */
  async start(): Promise<void> {
    const { loop, applier } = this.parts;
    await this.network.start();
    // Apply what is committed (bootstrap membership, entries after the last snapshot).
    loop.run();
    if (applier.isLoneVoter()) {
      // Alone: no one to wait for (etcd fast-forwards its election ticks likewise).
      loop.raw.campaign();
      loop.run();
    }
    this.cancelTicker = this.runtime.scheduler.every(this.config.heartbeatIntervalMs, () => this.tick());
    log.info("started member", {
      "local-member-id": this.memberId.toString(16),
      "cluster-id": this.clusterId.toString(16),
      "applied-index": applier.appliedIndex,
      "snapshot-index": this.parts.snapshots.snapshotIndex,
      voters: applier.confState.voters.map((v) => v.toString(16)),
    });
    void this.publish();
    await new Promise<void>((resolve) => {
      if (this.published || this.stopped) resolve();
      else this.readyWaiters.push(resolve);
    });
  }

  /** Hands leadership over if this member leads others (etcd does on shutdown), then stops. */
  async stop(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (!this.stopped && this.isLeader() && this.parts.applier.confState.voters.length > 1) {
      const target = this.bestTransferee();
      if (target !== undefined) {
        try {
          await Promise.race([this.maintenance.moveLeader(target), this.runtime.scheduler.sleep(2 * this.config.electionTimeoutMs)]);
        } catch {
          // stopping anyway: a failed hand-over only means the others elect a leader themselves
        }
      }
    }
    this.stopNow();
    await this.network.stop();
    this.db.close();
  }

  /**
   * Ends the member as a killed process ends: no hand-over, no graceful close of the network,
   * nothing more written; the database keeps exactly what its transactions committed. For the
   * simulator, whose crashes are process crashes (its network simply stops delivering).
   */
  abandon(): void {
    this.stopNow();
    if (this.closed) return;
    this.closed = true;
    this.db.close();
  }

  /** Stops the loop and fails every waiting client; the database stays open until stop(). */
  stopNow(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.cancelTicker?.();
    this.state.watchHub.close();
    this.parts.proposals.rejectAll(Errors.stopped());
    this.parts.reads.rejectAll(Errors.stopped());
    this.leases.stop();
    for (const w of this.readyWaiters.splice(0)) w();
  }

  // ---- what the API layer, the simulator and tests read ----

  /** Proposes a request to the log; resolves with its typed response once applied here. */
  propose<K extends RequestKind>(request: RequestOf<K>, opts?: ProposeOptions): Promise<ResponseOf[K]> {
    return this.parts.proposals.propose(request, opts);
  }

  /** Resolves once every entry committed now is applied here (etcd's waitAppliedIndex). */
  waitApplied(): Promise<void> {
    return this.parts.proposals.waitApplied();
  }

  get watchHub() {
    return this.state.watchHub;
  }

  get lessor() {
    return this.state.lessor;
  }

  isLeader(): boolean {
    return this.parts.loop.isLeader();
  }

  leaderId(): bigint {
    return this.parts.loop.lead;
  }

  isLearner(): boolean {
    return this.parts.isLearner();
  }

  get isStopped(): boolean {
    return this.stopped;
  }

  /** Raft term now. */
  get term(): number {
    return this.parts.loop.term;
  }

  get appliedIndex(): number {
    return this.parts.applier.appliedIndex;
  }

  get committedIndex(): number {
    return this.parts.loop.committed;
  }

  members(): MemberInfo[] {
    return this.state.membership.list();
  }

  /** On the leader: each member's replicated index. */
  progress(): Map<bigint, number> {
    return progressOf(this.parts.loop);
  }

  // ---- the clock and the end of the member ----

  private tick(): void {
    if (this.stopped) return;
    const { loop, proposals, reads, peers, leases } = this.parts;
    loop.tick();
    proposals.tick();
    reads.tick(() => Errors.timeout());
    peers.tick();
    leases.tick();
    invariant(reads.waiting <= MAX_PENDING, `${reads.waiting} reads waiting`);
  }

  /** Publishes this member's name and client URLs (etcd's publish), retrying until it is applied. */
  private async publish(): Promise<void> {
    const value = create(MemberAttributesSchema, { memberId: this.memberId, name: this.config.name, clientUrls: this.config.advertiseClientUrls });
    while (!this.stopped) {
      try {
        await this.propose({ case: "memberAttributes", value });
        this.published = true;
        log.info("published local member to cluster through raft", {
          "local-member-id": this.memberId.toString(16),
          "local-member-attributes": JSON.stringify({ Name: this.config.name, ClientURLs: this.config.advertiseClientUrls }),
          "cluster-id": this.clusterId.toString(16),
        });
        break;
      } catch (err) {
        if (this.stopped) break;
        log.warn("failed to publish local member to cluster through raft", { error: String((err as Error)?.message ?? err) });
        await this.runtime.scheduler.sleep(PUBLISH_RETRY_MS);
      }
    }
    for (const w of this.readyWaiters.splice(0)) w();
  }

  private bestTransferee(): bigint | undefined {
    let best: bigint | undefined;
    let bestMatch = -1;
    for (const id of this.parts.applier.confState.voters) {
      if (id === this.memberId) continue;
      const pr = this.parts.loop.raw.raft.prs.get(id);
      if (pr && pr.match > bestMatch && this.network.isActive(id)) {
        best = id;
        bestMatch = pr.match;
      }
    }
    return best;
  }

  /** Stops serving at once (in-memory state may be ahead of the disk now), then tells the owner. */
  private fatal(what: string, err: unknown): void {
    if (this.stopped) return;
    log.error(what, { error: String((err as Error)?.stack ?? err) });
    this.stopNow();
    this.onFatal(what, err);
  }

  /** Removed from the cluster: the owner stops the member. */
  private removed(reason: string): void {
    if (this.stopped) return;
    logRemoved(this.memberId, reason);
    this.onFatal(reason);
  }
}
