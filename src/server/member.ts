// One tsetcd member (etcd's EtcdServer): composes the parts and runs their
// lifecycle. Each part has one job behind a narrow interface:
//   raft-loop.ts    the Ready loop: step, tick, send-first-then-persist, advance
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
import { ClusterVersionSchema, MemberAttributesSchema } from "../gen/tsetcdpb/internal_pb.js";
import { AlarmType } from "../gen/etcdserverpb/rpc_pb.js";
import { assert } from "../assert.js";
import { EtcdError, Errors } from "../errors.js";
import { log } from "../log.js";
import { RawNode } from "../raft/node.js";
import { type Ready, Role } from "../raft/types.js";
import { systemRuntime, type Cancel, type Runtime } from "../runtime/time.js";
import { openDatabase } from "../storage/db.js";
import { SqliteRaftStorage } from "../storage/raft-storage.js";
import type { PeerTlsOptions } from "../transport/transport.js";
import { CLUSTER_VERSION } from "../version.js";
import { Applier, emptyBatch, type ApplyBatch } from "./apply.js";
import { APPLIED_INDEX, bootstrap, type BootstrapConfig, type Identity } from "./bootstrap.js";
import { ClusterOps } from "./cluster-ops.js";
import { LeaseDriver } from "./lease-driver.js";
import { Maintenance } from "./maintenance.js";
import type { MemberInfo } from "./member-info.js";
import { Metrics } from "./metrics.js";
import { transportNetwork, type NetworkFactory, type PeerNetwork } from "./peer-network.js";
import { logRemoved, Peers, REMOVED_REASON } from "./peers.js";
import { forwardPromote } from "./promote.js";
import { MAX_PENDING, Proposals } from "./proposals.js";
import { ReadIndexReads } from "./read-index.js";
import { RaftLoop, type RaftLoopHost } from "./raft-loop.js";
import type { Propose, ProposeOptions, RequestKind, RequestOf, ResponseOf } from "./requests.js";
import { Snapshots } from "./snapshots.js";
import { MemberState } from "./state.js";
import { V3Server } from "./v3-server.js";

export interface MemberConfig {
  name: string;
  dataDir: string;
  initialAdvertisePeerUrls: string[];
  initialCluster: string;
  initialClusterToken: string;
  initialClusterState: "new" | "existing";
  listenPeerUrls: string[];
  advertiseClientUrls: string[];
  heartbeatIntervalMs: number;
  electionTimeoutMs: number;
  /** Applied entries between two snapshots (etcd's --snapshot-count). */
  snapshotCount: number;
  /** Entries kept in the log behind a snapshot for slow followers (etcd: 5000). */
  snapshotCatchUpEntries?: number;
  preVote: boolean;
  strictReconfigCheck: boolean;
  /** --max-request-bytes: the largest encoded request accepted into the log. */
  maxRequestBytes: number;
  /** The effective backend quota in bytes (Infinity: none). */
  quotaBackendBytes: number;
  peerTls?: PeerTlsOptions;
  /** How often the leader records long leases' remaining TTLs in the log (default 5 min, as etcd; 0: never). */
  leaseCheckpointIntervalMs?: number;
  /** For --initial-cluster-state existing (src/server/join.ts). */
  joinCluster?: BootstrapConfig["joinCluster"];
}

/** What the member runs on; the defaults are the real clock, timers and transport. */
export interface MemberDeps {
  runtime?: Runtime;
  network?: NetworkFactory;
  /**
   * Commits holding log writes are fsynced (default). false only for the simulator, whose
   * crashes are process crashes: what SQLite handed to the OS survives them either way.
   */
  fsync?: boolean;
}

/** etcd's SnapshotCatchUpEntries. */
const DEFAULT_CATCH_UP_ENTRIES = 5000;
/** Bytes of entries per App message (etcd: 1 MiB). */
const MAX_SIZE_PER_MSG = 1024 * 1024;
/** App messages in flight per follower (etcd: 4096 / 8). */
const MAX_INFLIGHT = 512;
/** etcd's default lease checkpoint interval. */
const DEFAULT_LEASE_CHECKPOINT_MS = 5 * 60 * 1000;
/** How often a member retries publishing itself. */
const PUBLISH_RETRY_MS = 500;

export class Member {
  readonly memberId: bigint;
  readonly clusterId: bigint;
  /** The replicated state: store, leases, alarms, membership, watch hub. */
  readonly state: MemberState;
  /** The typed v3 request surface (KV, leases, headers). */
  readonly kv: V3Server;
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
  private readonly loop: RaftLoop;
  private readonly applier: Applier;
  private readonly snapshots: Snapshots;
  private readonly proposals: Proposals;
  private readonly reads: ReadIndexReads;
  private readonly peers: Peers;
  private readonly requestTimeoutMs: number;

  private stopped = false;
  /** stop() ran: network and database closed (or closing). */
  private closed = false;
  private cancelTicker: Cancel | undefined;
  private published = false;
  private readyWaiters: Array<() => void> = [];
  /** Database size as of the last commit: the quota check must not query SQLite per request. */
  private sizeAfterLastCommit = 0;

  private constructor(
    private readonly db: Database,
    readonly config: MemberConfig,
    identity: Identity,
    deps: MemberDeps,
  ) {
    this.memberId = identity.memberId;
    this.clusterId = identity.clusterId;
    const runtime = (this.runtime = deps.runtime ?? systemRuntime);
    const { clock, scheduler } = runtime;
    const electionTicks = Math.max(2, Math.round(config.electionTimeoutMs / config.heartbeatIntervalMs));
    // etcd's ReqTimeout: 5 s plus two election timeouts.
    this.requestTimeoutMs = 5000 + 2 * config.electionTimeoutMs;
    const isStopped = () => this.stopped;

    this.state = new MemberState(db, {
      // etcd: 1.5 election timeouts (in whole ticks), rounded up to seconds.
      minLeaseTtl: Math.ceil((Math.floor((3 * electionTicks) / 2) * config.heartbeatIntervalMs) / 1000),
      leaseCheckpointIntervalMs: config.leaseCheckpointIntervalMs ?? DEFAULT_LEASE_CHECKPOINT_MS,
      now: () => clock.now(),
      hub: { schedule: (fn) => scheduler.after(0, fn) },
    });
    const { membership } = this.state;
    const storage = new SqliteRaftStorage(db);
    const snap = storage.snapshot().meta;
    this.applier = new Applier(
      this.state,
      {
        memberId: this.memberId,
        leadsTerm: (term) => this.loop.isLeader() && term === this.loop.term,
        leaderTermApplied: () => this.leases.promote(),
        leaseRevoked: (id) => this.leases.revoked(id),
        selfRemoved: () => this.peers.selfRemoved(),
        waiting: (id) => this.proposals.waiting(id),
      },
      { appliedIndex: this.state.meta.getNumber(APPLIED_INDEX) ?? 0, snapshotIndex: snap.index, confState: snap.confState },
    );
    const network = deps.network ?? transportNetwork({ listenUrls: config.listenPeerUrls, snapshotDir: this.snapDir, tls: config.peerTls });
    this.network = network(
      { id: this.memberId, clusterId: this.clusterId },
      {
        onMessage: (m) => this.loop.step(m),
        onUnreachable: (id) => this.loop.raw.reportUnreachable(id),
        onSnapshotStatus: (id, ok) => {
          this.loop.raw.reportSnapshot(id, ok);
          this.loop.schedule();
        },
        onSnapshot: (m, file) => this.snapshots.receive(m, file),
        openSnapshotData: () => this.snapshots.openData(),
        isRemoved: (id) => membership.isRemoved(id),
        onPeerRemovedUs: () => this.removed(REMOVED_REASON),
        onPeerRequest: (req) => this.peers.request(req, { clusterOps: this.clusterOps, leases: this.leases }),
      },
    );
    this.peers = new Peers(this.memberId, this.clusterId, membership, this.network, clock, {
      electionTimeoutMs: config.electionTimeoutMs,
      isLeader: () => this.loop.isLeader(),
      stop: (reason) => this.removed(reason),
    });
    this.peers.ensureSelf(snap.confState, { name: config.name, peerURLs: config.initialAdvertisePeerUrls }, (fn) => db.transaction(fn)());
    const raw = new RawNode({
      id: this.memberId,
      storage,
      electionTick: electionTicks,
      heartbeatTick: 1,
      rand: () => runtime.random(),
      // Entries after the snapshot are delivered again: conf changes rebuild the
      // configuration; other entries at or below the applied index are skipped.
      applied: snap.index,
      preVote: config.preVote,
      checkQuorum: true,
      maxSizePerMsg: MAX_SIZE_PER_MSG,
      maxInflightMsgs: MAX_INFLIGHT,
    });
    this.loop = new RaftLoop(raw, storage, db, this.loopHost(), this.network, scheduler, clock, {
      fsync: deps.fsync ?? true,
      fsynced: (s) => this.metrics.fsynced(s),
    });
    this.snapshots = new Snapshots(
      db,
      storage,
      this.applier,
      this.state,
      {
        stepAndRun: (m) => {
          this.loop.raw.step(m);
          this.loop.run();
        },
        stopped: isStopped,
      },
      {
        snapshotCount: config.snapshotCount,
        catchUpEntries: config.snapshotCatchUpEntries ?? DEFAULT_CATCH_UP_ENTRIES,
        dir: this.snapDir,
      },
    );
    this.proposals = new Proposals(
      {
        memberId: this.memberId,
        raftPropose: (data) => raw.propose(data).ok,
        raftProposeConfChange: (cc) => raw.proposeConfChange(cc).ok,
        committed: () => this.loop.committed,
        term: () => this.loop.term,
        leader: () => this.loop.lead,
        isLeader: () => this.loop.isLeader(),
        appliedIndex: () => this.applier.appliedIndex,
        isLearner: () => this.isLearner(),
        stopped: isStopped,
        schedule: () => this.loop.schedule(),
        fillHeader: (resp) => this.kv.withHeader(resp),
        sizeAfterLastCommit: () => this.sizeAfterLastCommit,
        noSpaceAlarm: () => this.state.alarms.has(AlarmType.NOSPACE),
      },
      {
        maxRequestBytes: config.maxRequestBytes,
        quotaBytes: config.quotaBackendBytes,
        requestTimeoutMs: this.requestTimeoutMs,
        confRetryMs: Math.min(100, config.heartbeatIntervalMs),
      },
      clock,
      scheduler,
    );
    this.reads = new ReadIndexReads(
      {
        requestReadIndex: (ctx) => {
          const ok = raw.readIndex(ctx).ok;
          this.loop.schedule();
          return ok;
        },
        appliedIndex: () => this.applier.appliedIndex,
      },
      this.requestTimeoutMs,
      MAX_PENDING,
      clock,
      () => runtime.random(),
    );
    // Through this.propose at call time: one path for every proposal of the member's parts.
    const propose: Propose = (request, opts) => this.propose(request, opts);
    this.leases = new LeaseDriver(this.state.lessor, {
      // Both arguments: the driver's expiry and checkpoint proposals are leader-only.
      propose,
      isLeader: () => this.loop.isLeader() && !this.stopped,
      requestLeader: (path, body, timeoutMs) => {
        const urls = this.loop.lead === 0n ? undefined : membership.get(this.loop.lead)?.peerURLs;
        if (urls === undefined || urls.length === 0) return undefined;
        return this.network.request(urls, { method: "POST", path, body, headers: { "content-type": "application/protobuf" }, timeoutMs, pooled: true });
      },
      waitApplied: () => this.proposals.waitApplied(),
      requestTimeoutMs: this.requestTimeoutMs,
      electionTimeoutMs: config.electionTimeoutMs,
      stopped: isStopped,
      clock,
      scheduler,
    });
    this.kv = new V3Server(
      {
        memberId: this.memberId,
        clusterId: this.clusterId,
        term: () => this.loop.term,
        stopped: isStopped,
        isLearner: () => this.isLearner(),
        loneLeaderCaughtUp: () => this.loop.isLeader() && this.applier.isLoneVoter() && this.loop.committed === this.applier.appliedIndex,
        nextId: () => this.proposals.nextId(),
      },
      this.state,
      propose,
      this.reads,
      this.leases,
      () => this.loop.schedule(),
    );
    this.maintenance = new Maintenance(
      db,
      this.state,
      {
        memberId: this.memberId,
        stopped: isStopped,
        isLeader: () => this.loop.isLeader(),
        leader: () => this.loop.lead,
        term: () => this.loop.term,
        committed: () => this.loop.committed,
        appliedIndex: () => this.applier.appliedIndex,
        isLearner: () => this.isLearner(),
        transferLeader: (target) => {
          const ok = raw.transferLeader(target).ok;
          this.loop.schedule();
          return ok;
        },
        isVoter: (id) => {
          const m = membership.get(id);
          return m !== undefined && !m.isLearner;
        },
        resized: () => (this.sizeAfterLastCommit = this.maintenance.dbSize()),
      },
      this.kv,
      propose,
      clock,
      scheduler,
      { requestTimeoutMs: this.requestTimeoutMs, heartbeatIntervalMs: config.heartbeatIntervalMs },
    );
    this.clusterOps = new ClusterOps({
      selfId: this.memberId,
      strictReconfigCheck: config.strictReconfigCheck,
      membership,
      isLeader: () => this.loop.isLeader(),
      leaderId: () => this.loop.lead,
      progress: () => this.progress(),
      activeSince: (id) => this.network.activeSince(id),
      now: () => clock.wall(),
      proposeConfChange: (cc) => this.proposals.proposeConfChange(cc),
      linearizableBarrier: () => this.kv.linearizableBarrier() ?? Promise.resolve(),
      forwardPromote: (leader, id) => forwardPromote(membership.get(leader)?.peerURLs ?? [], id, this.requestTimeoutMs, this.network.request, clock),
    });
    this.metrics = new Metrics({
      memberId: this.memberId,
      dbSize: () => this.maintenance.dbSize(),
      dbSizeInUse: () => this.maintenance.dbSizeInUse(),
      pendingProposals: () => this.proposals.pending,
      hasLeader: () => this.loop.lead !== 0n,
      isLeader: () => this.loop.isLeader(),
      watchers: () => {
        const n = this.state.watchHub.watcherCount;
        return n.synced + n.unsynced;
      },
    });
    this.sizeAfterLastCommit = this.maintenance.dbSize();
    this.peers.seed(identity.remoteMembers ?? []);
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

  private get snapDir(): string {
    return join(this.config.dataDir, "member", "snap");
  }

  /** Listens for peers, replays what the log holds, starts the clock; resolves once the member can serve (it published itself). */
  async start(): Promise<void> {
    await this.network.start();
    // Apply what is committed (bootstrap membership, entries after the last snapshot).
    this.loop.run();
    if (this.applier.isLoneVoter()) {
      // Alone: no one to wait for (etcd fast-forwards its election ticks likewise).
      this.loop.raw.campaign();
      this.loop.run();
    }
    this.cancelTicker = this.runtime.scheduler.every(this.config.heartbeatIntervalMs, () => this.tick());
    log.info("started member", {
      "local-member-id": this.memberId.toString(16),
      "cluster-id": this.clusterId.toString(16),
      "applied-index": this.applier.appliedIndex,
      "snapshot-index": this.snapshots.snapshotIndex,
      voters: this.applier.confState.voters.map((v) => v.toString(16)),
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
    if (!this.stopped && this.loop.isLeader() && this.applier.confState.voters.length > 1) {
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

  /** Stops the loop and fails every waiting client; the database stays open until stop(). */
  stopNow(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.cancelTicker?.();
    this.state.watchHub.close();
    this.proposals.rejectAll(Errors.stopped());
    this.reads.rejectAll(Errors.stopped());
    this.leases.stop();
    for (const w of this.readyWaiters.splice(0)) w();
  }

  // ---- what the API layer and tests use ----

  /** Proposes a request to the log; resolves with its typed response once applied here. */
  propose<K extends RequestKind>(request: RequestOf<K>, opts?: ProposeOptions): Promise<ResponseOf[K]> {
    return this.proposals.propose(request, opts);
  }

  /** Resolves once every entry committed now is applied here (etcd's waitAppliedIndex). */
  waitApplied(): Promise<void> {
    return this.proposals.waitApplied();
  }

  get watchHub() {
    return this.state.watchHub;
  }

  get lessor() {
    return this.state.lessor;
  }

  isLeader(): boolean {
    return this.loop.isLeader();
  }

  leaderId(): bigint {
    return this.loop.lead;
  }

  isLearner(): boolean {
    return this.state.membership.get(this.memberId)?.isLearner ?? false;
  }

  /** Raft term now. */
  get term(): number {
    return this.loop.term;
  }

  get appliedIndex(): number {
    return this.applier.appliedIndex;
  }

  get committedIndex(): number {
    return this.loop.committed;
  }

  members(): MemberInfo[] {
    return this.state.membership.list();
  }

  /** On the leader: each member's replicated index. */
  progress(): Map<bigint, number> {
    const out = new Map<bigint, number>();
    for (const [id, pr] of this.loop.raw.raft.prs) out.set(id, pr.match);
    return out;
  }

  // ---- the clock and the Raft loop's host ----

  private tick(): void {
    if (this.stopped) return;
    this.loop.tick();
    this.proposals.tick();
    this.reads.tick(() => Errors.timeout());
    this.peers.tick();
    this.leases.tick();
    assert(this.reads.waiting <= MAX_PENDING, `${this.reads.waiting} reads waiting`);
  }

  private loopHost(): RaftLoopHost {
    return {
      roundStarting: () => this.reads.flush(),
      hasWork: () => this.reads.pending,
      softState: (lead, role, before) => this.softState(lead, role, before),
      install: (rd) => this.snapshots.install(rd.snapshot!.meta),
      apply: (rd) => this.apply(rd),
      attachSnapshot: (rd) => (rd.snapshot ? this.snapshots.attach(rd.snapshot.meta) : undefined),
      detachSnapshot: () => this.snapshots.detach(),
      committed: (rd, file) => {
        this.state.watchHub.committed();
        if (rd.snapshot === undefined) return;
        this.snapshots.installed(rd.snapshot.meta, file!);
        this.peers.changed();
        this.sizeAfterLastCommit = this.maintenance.dbSize();
      },
      rolledBack: () => this.state.watchHub.rolledBack(),
      configured: (batch) => {
        if (batch.confChanges.length > 0) this.peers.changed();
        this.peers.sync();
      },
      settled: (rd, batch) => this.settled(rd, batch),
      advanced: (rd) => this.advanced(rd),
      fatal: (what, err) => this.fatal(what, err),
      stopped: () => this.stopped,
    };
  }

  /** Inside the Ready's transaction, after its log writes. */
  private apply(rd: Ready): ApplyBatch {
    const batch = emptyBatch();
    this.applier.applyEntries(rd.committedEntries, this.loop.committed, batch);
    if (rd.committedEntries.length > 0 || rd.snapshot) this.applier.persist();
    this.snapshots.maybeTake();
    return batch;
  }

  private softState(lead: bigint, role: Role, before: bigint): void {
    // Only the leader expires leases; it starts once it applied its term's first entry (the applier).
    if (role !== Role.Leader) this.leases.demote();
    if (lead !== before) {
      if (lead !== 0n) {
        this.metrics.leaderChanged();
        log.info(before === 0n ? "raft.node: elected leader" : "raft.node: changed leader", {
          "local-member-id": this.memberId.toString(16),
          "leader-id": lead.toString(16),
          term: this.loop.term,
        });
        this.reads.leaderChanged();
        this.proposals.retryBlocked();
      } else {
        log.info("raft.node: lost leader", { "local-member-id": this.memberId.toString(16), "lost-leader-id": before.toString(16), term: this.loop.term });
      }
    }
    if (role === Role.Leader && this.state.membership.clusterVersion() === "") {
      void this.propose({ case: "clusterVersion", value: create(ClusterVersionSchema, { version: CLUSTER_VERSION }) }).catch(() => {});
    }
  }

  /** After the Ready's messages left: clients are answered and reads released. */
  private settled(rd: Ready, batch: ApplyBatch): void {
    const applied = this.applier.appliedIndex;
    this.proposals.settle(batch);
    for (const rs of rd.readStates) this.reads.onReadState(rs);
    this.reads.onApplied(applied);
    this.proposals.releaseApplied(applied);
    const failures = batch.answers.reduce((n, [, r]) => (r instanceof EtcdError ? n + 1 : n), 0);
    this.metrics.applied(failures, this.loop.committed, applied);
  }

  private advanced(rd: Ready): void {
    if (rd.committedEntries.length > 0) this.sizeAfterLastCommit = this.maintenance.dbSize();
    // A follower joined after the last snapshot: it needs one that includes it.
    if (this.loop.isLeader() && this.loop.raw.raft.needsSnapshot().length > 0 && this.snapshots.stale) {
      try {
        this.snapshots.takeNow();
      } catch (err) {
        this.fatal("failed to save a snapshot", err);
      }
    }
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
    for (const id of this.applier.confState.voters) {
      if (id === this.memberId) continue;
      const pr = this.loop.raw.raft.prs.get(id);
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
