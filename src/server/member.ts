// One tsetcd member: the Raft driver that ties the pure core (src/raft) to the
// disk (one SQLite database: log, hard state, applied state), the network
// (src/transport) and the clients (src/api). DESIGN.md's write path:
//   propose → Raft appends → persisted (fsync) and replicated → committed →
//   applied in log order → the proposing member answers its client.
//
// The loop (runReady), once per event-loop turn with work:
//   1. a leader sends its messages first (followers persist in parallel; the
//      leader's own entries count for commit only once persisted, because the
//      next Ready is handled only after this one's transaction committed), and
//      when they carry new entries it yields one event-loop turn before its
//      fsync: Bun's node:http2 hands writes to the socket only when the loop
//      turns, so without the yield followers would start only after it;
//   2. ONE SQLite transaction: install a received snapshot, append entries,
//      hard state, apply committed entries (MVCC, membership, alarms) and
//      the applied index, maybe take a snapshot and compact the log. It is
//      fsynced (synchronous=FULL) when it holds entries, a vote or a term;
//      a transaction that only applies needs no fsync (the entries are
//      durable already; after a crash they are applied again);
//   3. a follower sends its messages (acknowledgements only after the fsync);
//   4. clients are answered, reads released, Raft advanced.
// A lone member commits on append, so a batch of writes costs one
// transaction and one fsync, as before the cluster existed.
//
// A failed transaction is fatal (as a failed WAL write is for etcd): Raft
// already counted what this Ready holds as written, so the member stops
// rather than risk acknowledging what is not on disk.
import type { Database } from "bun:sqlite";
import { mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { create, toBinary, fromBinary } from "@bufbuild/protobuf";
import { InternalRequestSchema, type InternalRequest } from "../gen/tsetcdpb/internal_pb.js";
import {
  AlarmRequestSchema,
  AlarmRequest_AlarmAction,
  AlarmType,
  HashKVResponseSchema,
  ResponseHeaderSchema,
  StatusResponseSchema,
  type HashKVResponse,
  type RangeRequest,
  type RangeResponse,
  type ResponseHeader,
  type StatusResponse,
  type TxnRequest,
  type TxnResponse,
} from "../gen/etcdserverpb/rpc_pb.js";
import { EtcdError, Errors } from "../errors.js";
import { log } from "../log.js";
import { openDatabase } from "../storage/db.js";
import { MetaStore } from "../storage/meta-store.js";
import { SqliteRaftStorage } from "../storage/raft-storage.js";
import { MvccStore } from "../mvcc/store.js";
import { storeSource, WatchHub } from "../watch/hub.js";
import { SqliteBackend } from "../mvcc/sqlite-backend.js";
import { RawNode } from "../raft/node.js";
import { applyChange, decodeConfChange } from "../raft/confchange.js";
import {
  type ConfChange,
  ConfChangeType,
  type ConfState,
  type Entry,
  EntryType,
  type Message,
  MessageType,
  type Ready,
  Role,
  type SnapshotMeta,
  invariant,
} from "../raft/types.js";
import { Transport, type PeerTlsOptions } from "../transport/transport.js";
import { decodeMessage, encodeMessage } from "../transport/codec.js";
import { CLUSTER_VERSION, SERVER_VERSION } from "../version.js";
import { Alarms } from "./alarms.js";
import { Metrics } from "./metrics.js";
import { applyRequest } from "./apply.js";
import { APPLIED_INDEX, bootstrap, type BootstrapConfig, type Identity } from "./bootstrap.js";
import { Membership, encodeMemberContext } from "./membership.js";
import type { MemberInfo } from "./member-info.js";
import { ReadIndexReads } from "./read-index.js";
import { ClusterOps } from "./cluster-ops.js";
import { encodeMembersResponse, MEMBERS_PATH } from "./join.js";
import { encodePromoteResponse, forwardPromote, parsePromotePath, promoteBadPathResponse, PROMOTE_PREFIX } from "./promote.js";
import type { PeerRequest, PeerResponse } from "../transport/types.js";
import { RequestIds, Waiters } from "./waiters.js";
import { Lessor } from "../lease/lessor.js";
import { SqliteLeaseBackend } from "../lease/sqlite-lease-backend.js";
import { LEASE_RENEW_PATH, LEASE_TTL_PATH, LeaseDriver } from "./lease-driver.js";
import { attachSnapshot, copyDatabase, detachSnapshot, installAttachedSnapshot, streamAndDelete } from "./snapshot-data.js";

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

type Request = InternalRequest["request"];

/** Proposals and reads waiting at once; past this, clients get "too many requests". */
const MAX_PENDING = 20_000;
/** etcd's SnapshotCatchUpEntries. */
const DEFAULT_CATCH_UP_ENTRIES = 5000;
/** etcd's maxGapBetweenApplyAndCommitIndex: refuse proposals when apply lags this far behind. */
const MAX_APPLY_GAP = 5000;
/** Bytes of entries per App message (etcd: 1 MiB). */
const MAX_SIZE_PER_MSG = 1024 * 1024;
/** App messages in flight per follower (etcd: 4096 / 8). */
const MAX_INFLIGHT = 512;
/** etcd's applyTimeout: how long waitApplied waits. */
const APPLY_TIMEOUT_MS = 1000;
/** etcd's default lease checkpoint interval. */
const DEFAULT_LEASE_CHECKPOINT_MS = 5 * 60 * 1000;
/** Readys handled per turn before yielding to the event loop. */
const READY_ROUNDS = 16;

interface Blocked {
  id: bigint;
  data: Uint8Array;
}

export class Member {
  readonly memberId: bigint;
  readonly clusterId: bigint;
  store: MvccStore;
  readonly watchHub: WatchHub;
  alarms: Alarms;
  /** Leases (the apply state); `leases` drives them (expiry, keep-alive, time-to-live). */
  readonly lessor: Lessor;
  readonly leases: LeaseDriver;
  readonly membership: Membership;
  readonly metrics: Metrics;
  readonly transport: Transport;
  /** The Cluster service's rules (member add/remove/update/promote/list). */
  readonly clusterOps: ClusterOps;
  /** Called when the member cannot go on (a failed write, a removal): the process should exit. */
  onFatal: (reason: string, err?: unknown) => void = () => {};

  private readonly meta: MetaStore;
  private readonly storage: SqliteRaftStorage;
  private readonly raw: RawNode;
  private readonly ids: RequestIds;
  private readonly waiters: Waiters;
  /** Conf change proposals, keyed by confKey(type, node id): one change at a time. */
  private readonly confWaiters: Waiters;
  private readonly reads: ReadIndexReads;
  private readonly quota: number;
  private readonly pageSize: number;
  private readonly requestTimeoutMs: number;
  private readonly catchUpEntries: number;
  private readonly snapDir: string;

  private appliedIndex: number;
  private snapshotIndex: number;
  /** Last log index whose entry was delivered to apply (replays included): this.confState is exact here. */
  private confIndex: number;
  private confState: ConfState;
  private lead = 0n;
  private blocked: Blocked[] = [];
  private readyScheduled = false;
  private inReady = false;
  private stopped = false;
  /** stop() ran: transport and database closed (or closing). */
  private closed = false;
  private ticker: ReturnType<typeof setInterval> | undefined;
  private peersDirty = true;
  /** Peers added to the transport (syncPeers removes those no longer members). */
  private knownPeers = new Set<bigint>();
  private persistedTerm: number;
  private persistedVote: bigint;
  private synchronous: "FULL" | "NORMAL" = "FULL";
  /** Received snapshot files, by "index:term", until installed. */
  private readonly incoming = new Map<string, string>();
  /** When this member applied its own removal (ms), if it did. */
  private removedAt = 0;
  private published = false;
  private readyWaiters: Array<() => void> = [];
  /** Callers of waitApplied, each with the committed index it waits for. */
  private appliedWaiters: Array<{ index: number; resolve: () => void; reject: (e: unknown) => void }> = [];
  /** Database size as of the last commit: the quota check must not query SQLite per request. */
  private sizeAfterLastCommit = 0;

  private constructor(
    private readonly db: Database,
    readonly config: MemberConfig,
    identity: Identity,
  ) {
    this.memberId = identity.memberId;
    this.clusterId = identity.clusterId;
    this.meta = new MetaStore(db);
    this.pageSize = (db.query("PRAGMA page_size").get() as { page_size: number }).page_size;
    const electionTicks = Math.max(2, Math.round(config.electionTimeoutMs / config.heartbeatIntervalMs));
    this.lessor = new Lessor(new SqliteLeaseBackend(db), {
      // etcd: 1.5 election timeouts (in whole ticks), rounded up to seconds.
      minTtl: Math.ceil((Math.floor((3 * electionTicks) / 2) * config.heartbeatIntervalMs) / 1000),
      checkpointIntervalMs: config.leaseCheckpointIntervalMs ?? DEFAULT_LEASE_CHECKPOINT_MS,
      now: () => performance.now(),
    });
    this.store = this.openStore();
    this.watchHub = new WatchHub(storeSource(this.store));
    this.alarms = new Alarms(this.meta);
    this.membership = new Membership(db);
    this.quota = config.quotaBackendBytes;
    // etcd's ReqTimeout: 5 s plus two election timeouts.
    this.requestTimeoutMs = 5000 + 2 * config.electionTimeoutMs;
    this.catchUpEntries = config.snapshotCatchUpEntries ?? DEFAULT_CATCH_UP_ENTRIES;
    this.ids = new RequestIds(this.memberId);
    this.waiters = new Waiters(this.requestTimeoutMs);
    this.confWaiters = new Waiters(this.requestTimeoutMs);
    this.reads = new ReadIndexReads(
      {
        requestReadIndex: (ctx) => {
          const ok = this.raw.readIndex(ctx).ok;
          this.scheduleReady();
          return ok;
        },
        appliedIndex: () => this.appliedIndex,
      },
      this.requestTimeoutMs,
      MAX_PENDING,
    );
    this.snapDir = join(config.dataDir, "member", "snap");
    // Snapshot files left by a previous run (a copy being sent, one being received) are stale.
    rmSync(this.snapDir, { recursive: true, force: true });
    mkdirSync(this.snapDir, { recursive: true, mode: 0o700 });

    this.storage = new SqliteRaftStorage(db);
    const init = this.storage.initialState();
    const snap = this.storage.snapshot().meta;
    this.appliedIndex = this.meta.getNumber(APPLIED_INDEX) ?? 0;
    this.snapshotIndex = snap.index;
    this.confIndex = snap.index;
    this.confState = snap.confState;
    this.persistedTerm = init.hardState.term;
    this.persistedVote = init.hardState.vote;
    this.ensureSelfInMembership(snap.confState);
    this.raw = new RawNode({
      id: this.memberId,
      storage: this.storage,
      electionTick: electionTicks,
      heartbeatTick: 1,
      rand: Math.random,
      // Entries after the snapshot are delivered again: conf changes rebuild the
      // configuration; other entries at or below the applied index are skipped.
      applied: snap.index,
      preVote: config.preVote,
      checkQuorum: true,
      maxSizePerMsg: MAX_SIZE_PER_MSG,
      maxInflightMsgs: MAX_INFLIGHT,
    });

    this.metrics = new Metrics({
      memberId: this.memberId,
      dbSize: () => this.dbSize(),
      dbSizeInUse: () => this.dbSizeInUse(),
      pendingProposals: () => this.waiters.size,
      hasLeader: () => this.lead !== 0n,
      isLeader: () => this.isLeader(),
      watchers: () => {
        const n = this.watchHub.watcherCount;
        return n.synced + n.unsynced;
      },
    });
    this.transport = new Transport({
      id: this.memberId,
      clusterId: this.clusterId,
      codec: { encode: encodeMessage, decode: (b) => decodeMessage(b) },
      listenUrls: config.listenPeerUrls,
      snapshotDir: this.snapDir,
      tls: config.peerTls,
      logger: log,
      onMessage: (m) => this.step(m),
      onUnreachable: (id) => this.raw.reportUnreachable(id),
      onSnapshotStatus: (id, ok) => {
        this.raw.reportSnapshot(id, ok);
        this.scheduleReady();
      },
      onSnapshot: (m, file) => this.receiveSnapshot(m, file),
      openSnapshotData: () => streamAndDelete(copyDatabase(this.db, this.snapDir), 256 * 1024),
      isRemoved: (id) => this.membership.isRemoved(id),
      onPeerRemovedUs: () => this.removed("the member has been permanently removed from the cluster"),
      onPeerRequest: (req) => this.peerRequest(req),
    });
    this.leases = new LeaseDriver(this.lessor, {
      // Both arguments: the driver's expiry and checkpoint proposals are leader-only.
      propose: (r, opts) => this.propose(r, opts),
      isLeader: () => this.isLeader() && !this.stopped,
      leaderPeerUrls: () => (this.lead === 0n ? undefined : this.membership.get(this.lead)?.peerURLs),
      waitApplied: () => this.waitApplied(),
      peerTls: config.peerTls?.client,
      requestTimeoutMs: this.requestTimeoutMs,
      electionTimeoutMs: config.electionTimeoutMs,
      stopped: () => this.stopped,
    });
    this.clusterOps = new ClusterOps({
      selfId: this.memberId,
      strictReconfigCheck: config.strictReconfigCheck,
      membership: this.membership,
      isLeader: () => this.isLeader(),
      leaderId: () => this.lead,
      progress: () => this.progress(),
      activeSince: (id) => this.activeSince(id),
      now: () => Date.now(),
      proposeConfChange: (cc) => this.proposeConfChange(cc),
      linearizableBarrier: () => this.linearizableBarrier() ?? Promise.resolve(),
      forwardPromote: (leader, id) => {
        const urls = this.membership.get(leader)?.peerURLs ?? [];
        return forwardPromote(urls, id, this.config.peerTls?.client, this.requestTimeoutMs);
      },
    });
    this.sizeAfterLastCommit = this.dbSize();
    for (const m of identity.remoteMembers ?? []) {
      if (m.id === this.memberId) continue;
      this.transport.addPeer(m.id, m.peerURLs);
      this.knownPeers.add(m.id);
    }
  }

  static async open(config: MemberConfig): Promise<Member> {
    const dir = join(config.dataDir, "member");
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const db = openDatabase(join(dir, "tsetcd.db"));
    try {
      const identity = await bootstrap(db, config);
      return new Member(db, config, identity);
    } catch (err) {
      db.close();
      throw err;
    }
  }

  /** Listens for peers, replays what the log holds, starts the clock; resolves once the member can serve (it published itself). */
  async start(): Promise<void> {
    await this.transport.start();
    // Apply what is committed (bootstrap membership, entries after the last snapshot).
    this.runReady();
    if (this.confState.voters.length === 1 && this.confState.voters[0] === this.memberId) {
      // Alone: no one to wait for (etcd fast-forwards its election ticks likewise).
      this.raw.campaign();
      this.runReady();
    }
    this.ticker = setInterval(() => this.tick(), this.config.heartbeatIntervalMs);
    log.info("started member", {
      "local-member-id": this.memberId.toString(16),
      "cluster-id": this.clusterId.toString(16),
      "applied-index": this.appliedIndex,
      "snapshot-index": this.snapshotIndex,
      voters: this.confState.voters.map((v) => v.toString(16)),
    });
    void this.publish();
    await new Promise<void>((resolve) => {
      if (this.published || this.stopped) resolve();
      else this.readyWaiters.push(resolve);
    });
  }

  // ---- the loop -------------------------------------------------------------------------------

  private step(m: Message): void {
    if (this.stopped) return;
    this.raw.step(m);
    this.scheduleReady();
  }

  private tick(): void {
    if (this.stopped) return;
    this.raw.tick();
    const now = performance.now();
    this.waiters.expire(now, (leader) => this.timeoutError(leader));
    this.confWaiters.expire(now, (leader) => this.timeoutError(leader));
    this.reads.tick(() => Errors.timeout(), now);
    // Proposals refused while there was no leader (or a transfer ran): drop the expired, retry the rest.
    if (this.blocked.length > 0) {
      this.blocked = this.blocked.filter((b) => this.waiters.has(b.id));
      if (this.lead !== 0n) this.retryBlocked();
    }
    if (this.removedAt !== 0) this.maybeStopRemoved();
    this.leases.tick(now);
    this.scheduleReady();
  }

  private scheduleReady(): void {
    if (this.readyScheduled || this.stopped) return;
    this.readyScheduled = true;
    setImmediate(() => this.runReady());
  }

  private runReady(): void {
    this.readyScheduled = false;
    if (this.stopped || this.inReady) return;
    this.inReady = true;
    let yielding = false;
    try {
      this.reads.flush();
      for (let i = 0; i < READY_ROUNDS && !this.stopped; i++) {
        const rd = this.raw.ready();
        if (rd === undefined) break;
        if (this.guard(() => this.sendFirst(rd)) === true) {
          // Bun's node:http2 writes reach the socket only when the event loop turns: let
          // them go before blocking on this Ready's fsync, so followers write in parallel.
          yielding = true;
          setImmediate(() => this.finishYielded(rd));
          return;
        }
        this.guard(() => this.persistAndApply(rd));
      }
    } finally {
      if (!yielding) this.inReady = false;
    }
    this.afterReadyRound();
  }

  /** The rest of a Ready whose appends were sent first (runReady keeps inReady meanwhile). */
  private finishYielded(rd: Ready): void {
    try {
      // Stopping meanwhile abandons the Ready: nothing of it was acknowledged.
      if (!this.stopped) this.guard(() => this.persistAndApply(rd));
    } finally {
      this.inReady = false;
    }
    this.afterReadyRound();
    if (!this.stopped && this.raw.hasReady()) this.runReady();
  }

  private afterReadyRound(): void {
    if (this.stopped) return;
    // Out now, not at the end of the turn: acknowledgements and appends are on the commit path.
    this.transport.flush();
    if (this.raw.hasReady() || this.reads.pending) this.scheduleReady();
  }

  /** Any failure while handling a Ready is fatal: the core already counts it as done. */
  private guard<T>(fn: () => T): T | undefined {
    try {
      return fn();
    } catch (err) {
      this.fatal("failed to handle a Raft batch", err);
      return undefined;
    }
  }

  /**
   * The first part of a Ready: soft state, and a leader's messages when it may send before its
   * own fsync. Returns true when it sent new entries to followers (worth yielding for).
   */
  private sendFirst(rd: Ready): boolean {
    if (rd.softState) this.onSoftState(rd.softState.lead, rd.softState.role);
    const voteOrTerm = this.changesVoteOrTerm(rd);
    // Only while no message can carry a commit index above what is on disk here: a lone
    // voter commits its own unpersisted entries, and a learner must not apply them first.
    const leaderFirst =
      this.raw.raft.role === Role.Leader && !voteOrTerm && rd.snapshot === undefined && this.raw.raft.log.committed <= this.storage.lastIndex();
    this.sentFirst = leaderFirst;
    if (!leaderFirst || rd.messages.length === 0) return false;
    this.send(rd.messages);
    this.transport.flush();
    return rd.entries.length > 0;
  }
  /** Whether the Ready being handled had its messages sent by sendFirst. */
  private sentFirst = false;

  /** A new vote or term must be on disk before any message that depends on it leaves. */
  private changesVoteOrTerm(rd: Ready): boolean {
    const hard = rd.hardState;
    return hard !== undefined && (hard.term !== this.persistedTerm || hard.vote !== this.persistedVote);
  }

  /** The rest of a Ready: one transaction, then the Raft configuration, messages, answers, advance. */
  private persistAndApply(rd: Ready): void {
    const hard = rd.hardState;
    const voteOrTerm = this.changesVoteOrTerm(rd);
    const leaderFirst = this.sentFirst;
    let snapFile: string | undefined;
    if (rd.snapshot) {
      snapFile = this.incoming.get(snapKey(rd.snapshot.meta));
      invariant(snapFile !== undefined, `no data for the snapshot at ${rd.snapshot.meta.index}`);
      attachSnapshot(this.db, snapFile);
    }
    const answers: Array<[bigint, unknown]> = [];
    const confChanges: AppliedChange[] = [];
    const started = performance.now();
    // Heartbeats and most acknowledgements bring only messages: no transaction for those.
    const writes = rd.snapshot !== undefined || rd.entries.length > 0 || hard !== undefined || rd.committedEntries.length > 0;
    if (writes) this.setSynchronous(rd.entries.length > 0 || voteOrTerm || rd.snapshot !== undefined ? "FULL" : "NORMAL");
    if (writes) {
      try {
        this.db.transaction(() => {
          if (rd.snapshot) this.installSnapshot(rd.snapshot.meta);
          if (rd.entries.length > 0) this.storage.append(rd.entries);
          if (hard) this.storage.setHardState(hard);
          for (const e of rd.committedEntries) this.applyEntry(e, answers, confChanges);
          if (rd.committedEntries.length > 0 || rd.snapshot) this.meta.setNumber(APPLIED_INDEX, this.appliedIndex);
          this.maybeSnapshot();
        })();
        this.storage.committed();
        this.watchHub.committed();
      } catch (err) {
        this.watchHub.rolledBack();
        this.storage.rollbackCache();
        throw err;
      } finally {
        if (snapFile !== undefined) {
          detachSnapshot(this.db);
        }
      }
    }
    if (writes && this.synchronous === "FULL") this.metrics.fsynced((performance.now() - started) / 1000);
    if (hard) {
      this.persistedTerm = hard.term;
      this.persistedVote = hard.vote;
    }
    if (rd.snapshot) this.afterSnapshotInstall(rd.snapshot.meta, snapFile!);
    // The Raft core learns its new configuration once the transaction is over
    // (it reads storage, which refuses reads while writes are staged).
    for (const c of confChanges) {
      const conf = this.raw.applyConfChange(c.cc);
      invariant(sameConf(conf, c.conf), `configuration after entry ${c.index} differs between member and Raft`);
    }
    if (confChanges.length > 0) this.peersDirty = true;
    if (this.peersDirty) this.syncPeers();
    if (!leaderFirst) this.send(rd.messages);

    let failures = 0;
    for (const [id, result] of answers) {
      if (result instanceof EtcdError) {
        failures++;
        this.waiters.reject(id, result);
      } else this.waiters.resolve(id, this.withHeader(result as { header?: ResponseHeader }));
    }
    for (const c of confChanges) {
      const key = confKey(c.proposed.type, c.proposed.nodeId);
      if (c.error) this.confWaiters.reject(key, c.error);
      else this.confWaiters.resolve(key, undefined);
    }
    for (const rs of rd.readStates) this.reads.onReadState(rs);
    this.reads.onApplied(this.appliedIndex);
    this.releaseApplied();
    this.metrics.applied(failures, this.raw.raft.log.committed, this.appliedIndex);
    this.raw.advance();
    if (rd.committedEntries.length > 0) this.sizeAfterLastCommit = this.dbSize();
    if (this.raw.raft.role === Role.Leader && this.raw.raft.needsSnapshot().length > 0 && this.confIndex > this.snapshotIndex) {
      this.snapshotNow();
    }
  }

  private send(msgs: Message[]): void {
    if (msgs.length > 0) this.transport.send(msgs);
  }

  private setSynchronous(mode: "FULL" | "NORMAL"): void {
    if (mode === this.synchronous) return;
    this.db.exec(`PRAGMA synchronous = ${mode}`);
    this.synchronous = mode;
  }

  private onSoftState(lead: bigint, role: Role): void {
    // Only the leader expires leases; it starts once it applied its term's first entry (applyEntry).
    if (role !== Role.Leader) this.leases.demote();
    if (lead !== this.lead) {
      const before = this.lead;
      this.lead = lead;
      if (lead !== 0n) {
        this.metrics.leaderChanged();
        log.info(before === 0n ? "raft.node: elected leader" : "raft.node: changed leader", {
          "local-member-id": this.memberId.toString(16),
          "leader-id": lead.toString(16),
          term: this.raw.raft.term,
        });
        this.reads.leaderChanged();
        this.retryBlocked();
      } else {
        log.info("raft.node: lost leader", { "local-member-id": this.memberId.toString(16), "lost-leader-id": before.toString(16), term: this.raw.raft.term });
      }
    }
    if (role === Role.Leader && this.membership.clusterVersion() === "") {
      void this.propose({ case: "clusterVersion", value: { version: CLUSTER_VERSION } as any }).catch(() => {});
    }
  }

  // ---- apply ---------------------------------------------------------------------------------

  /** Inside the Ready's transaction. */
  private applyEntry(e: Entry, answers: Array<[bigint, unknown]>, confChanges: AppliedChange[]): void {
    const replay = e.index <= this.appliedIndex;
    this.confIndex = e.index;
    if (e.type === EntryType.ConfChange) {
      const proposed = decodeConfChange(e.data);
      const res = this.membership.applyConfChange(proposed, replay);
      const cc: ConfChange = { type: res.type, nodeId: res.nodeId, context: res.context };
      const error = res.error;
      const conf = applyChange(this.confState, cc);
      this.confState = conf;
      confChanges.push({ proposed, cc, conf, index: e.index, error });
      if (cc.nodeId === this.memberId && cc.type === ConfChangeType.RemoveNode && !replay) this.removedAt = Date.now();
      if (!replay) this.appliedIndex = e.index;
      return;
    }
    if (replay) return; // already in the state (a snapshot's copy, or applied before a restart)
    this.appliedIndex = e.index;
    if (e.data.byteLength === 0) {
      // A new leader's empty entry: once it is applied here, so is everything of earlier terms,
      // and the lessor knows every lease (etcd promotes its lessor at the same point).
      if (this.isLeader() && e.term === this.raw.raft.term) this.leases.promote();
      return;
    }
    const req = fromBinary(InternalRequestSchema, e.data);
    let result: unknown;
    try {
      // A leader-only decision counts only in the term it was made in (see leader_term).
      if (req.leaderTerm !== 0n && req.leaderTerm !== BigInt(e.term)) throw Errors.leaderChanged();
      result = this.applyRequest(req.request);
    } catch (err) {
      // A user error is a deterministic result of the entry, not a failure of the batch.
      if (!(err instanceof EtcdError)) throw err;
      result = err;
    }
    if (req.id !== 0n && this.waiters.has(req.id)) answers.push([req.id, result]);
  }

  private applyRequest(r: Request): unknown {
    switch (r.case) {
      case "memberAttributes":
        this.membership.applyAttributes(r.value.memberId, r.value.name, r.value.clientUrls);
        return {};
      case "clusterVersion":
        this.membership.applyClusterVersion(r.value.version);
        return {};
      default:
        // The member is the state machine: its store and alarms (replaced by a snapshot install).
        return applyRequest(this, r);
    }
  }

  // ---- snapshots -------------------------------------------------------------------------------

  /** Inside the transaction: every --snapshot-count applied entries, snapshot and compact the log. */
  private maybeSnapshot(): void {
    if (this.confIndex - this.snapshotIndex < this.config.snapshotCount) return;
    this.takeSnapshot();
  }

  private takeSnapshot(): void {
    // At the last delivered entry, whose configuration this.confState is; the data may be
    // ahead of it (a snapshot copy installed at a later applied index), as a streamed copy is.
    this.storage.createSnapshot(this.confIndex, this.confState);
    this.snapshotIndex = this.confIndex;
    const compactTo = this.confIndex - this.catchUpEntries;
    if (compactTo > 0) this.storage.compact(compactTo);
    log.info("saved snapshot", { "snapshot-index": this.confIndex, "compacted-to": Math.max(0, compactTo) });
  }

  /** A follower joined after the last snapshot: it needs one that includes it. */
  private snapshotNow(): void {
    try {
      this.db.transaction(() => this.takeSnapshot())();
      this.storage.committed();
    } catch (err) {
      this.storage.rollbackCache();
      this.fatal("failed to save a snapshot", err);
    }
  }

  private receiveSnapshot(m: Message, file: string): void {
    const meta = m.snapshot?.meta;
    if (this.stopped || meta === undefined) return;
    const key = snapKey(meta);
    this.incoming.set(key, file);
    this.raw.step(m);
    // Install now, while the file is certainly ours; the sender hears success after this returns.
    this.runReady();
    if (this.incoming.get(key) === file) {
      // Raft did not take it (older than what we have): drop the file.
      this.incoming.delete(key);
      rmSync(file, { force: true });
    }
  }

  /** Inside the transaction: the snapshot's tables replace ours. */
  private installSnapshot(meta: SnapshotMeta): void {
    const applied = installAttachedSnapshot(this.db);
    this.storage.applySnapshot(meta);
    this.appliedIndex = Math.max(meta.index, applied);
    this.snapshotIndex = meta.index;
    this.confIndex = meta.index;
    this.confState = meta.confState;
    // Every in-memory view of the replaced tables is rebuilt from them now, inside the
    // transaction: entries of the same Ready are applied next, and must see the new state.
    this.lessor.reload();
    this.store = this.openStore();
    this.watchHub.storeReplaced(storeSource(this.store));
    this.alarms = new Alarms(this.meta);
    this.membership.reload();
  }

  /** The MVCC store over this member's tables: the lessor indexes its leased keys, the watch hub gets its events. */
  private openStore(): MvccStore {
    const store = new MvccStore(new SqliteBackend(this.db), { leases: this.lessor });
    store.onEvents = (rev, evs) => this.watchHub.publish(rev, evs);
    return store;
  }

  private afterSnapshotInstall(meta: SnapshotMeta, file: string): void {
    this.incoming.delete(snapKey(meta));
    rmSync(file, { force: true });
    this.peersDirty = true;
    this.sizeAfterLastCommit = this.dbSize();
    log.info("applied incoming snapshot", { "snapshot-index": meta.index, "applied-index": this.appliedIndex });
  }

  // ---- membership -----------------------------------------------------------------------------

  /** The peer port's requests besides Raft traffic: the member list for joiners, promotions forwarded to the leader. */
  private async peerRequest(req: PeerRequest): Promise<PeerResponse> {
    if (req.path === LEASE_RENEW_PATH || req.path === LEASE_TTL_PATH) return this.leases.peerRequest(req);
    if (req.method === "GET" && req.path === MEMBERS_PATH) return encodeMembersResponse(this.clusterId, this.membership.list());
    if (req.method === "POST" && req.path.startsWith(PROMOTE_PREFIX)) {
      const id = parsePromotePath(req.path);
      if (id === undefined) return promoteBadPathResponse(req.path);
      try {
        return encodePromoteResponse(await this.clusterOps.promoteOnLeader(id));
      } catch (err) {
        return encodePromoteResponse(err);
      }
    }
    return { status: 404, body: "404 page not found\n" };
  }

  /** Peers in the transport = members in the membership, minus this one. */
  private syncPeers(): void {
    this.peersDirty = false;
    // A joining member knows nobody until the log brings the membership: keep the peers it was given.
    if (this.membership.list().length === 0) return;
    const want = new Map<bigint, string[]>();
    for (const m of this.membership.list()) if (m.id !== this.memberId) want.set(m.id, m.peerURLs);
    for (const [id, urls] of want) this.transport.addPeer(id, urls);
    for (const id of this.knownPeers) if (!want.has(id)) this.transport.removePeer(id);
    this.knownPeers = new Set(want.keys());
  }

  /** A data dir migrated from the single-member format has no membership rows: this member is the cluster. */
  private ensureSelfInMembership(conf: ConfState): void {
    if (this.membership.list().length > 0 || !(conf.voters.length === 1 && conf.voters[0] === this.memberId)) return;
    this.db.transaction(() => {
      void this.membership.applyConfChange(
        {
          type: ConfChangeType.AddNode,
          nodeId: this.memberId,
          context: encodeMemberContext({
            id: this.memberId,
            name: this.config.name,
            peerURLs: this.config.initialAdvertisePeerUrls,
            clientURLs: [],
            isLearner: false,
          }),
        },
        false,
      );
    })();
  }

  private maybeStopRemoved(): void {
    // Give the cluster a moment to learn the removal (etcd waits likewise); a removed
    // leader first hands over (the Raft core does that on its own).
    const waited = Date.now() - this.removedAt;
    if ((this.isLeader() && waited < 2 * this.config.electionTimeoutMs) || waited < 1000) return;
    this.removed("the member has been permanently removed from the cluster");
  }

  private removed(reason: string): void {
    if (this.stopped) return;
    log.warn(reason, { "local-member-id": this.memberId.toString(16) });
    this.onFatal(reason);
  }

  // ---- proposals ------------------------------------------------------------------------------

  /** A fresh id from this member's request-id generator (lease ids are taken from it, as in etcd). */
  nextRequestId(): bigint {
    return this.ids.take();
  }

  /**
   * Proposes a write; resolves with its response once applied on this member. `leaderOnly`: a
   * decision only this term's leader may make (lease expiry, checkpoints): refused at once when
   * this member does not lead, never queued for a later leader, and applied only if appended
   * in the current term.
   */
  propose(request: Request, opts: { leaderOnly?: boolean } = {}): Promise<any> {
    if (this.stopped) return Promise.reject(Errors.stopped());
    if (this.waiters.size >= MAX_PENDING) return Promise.reject(Errors.tooManyRequests());
    if (this.raw.raft.log.committed - this.appliedIndex > MAX_APPLY_GAP) return Promise.reject(Errors.tooManyRequests());
    if (this.isLearner()) return Promise.reject(Errors.notSupportedForLearner());
    const leaderTerm = opts.leaderOnly ? BigInt(this.raw.raft.term) : 0n;
    if (opts.leaderOnly && !this.isLeader()) return Promise.reject(Errors.notLeader());
    const id = this.ids.take();
    const data = toBinary(InternalRequestSchema, create(InternalRequestSchema, { id, leaderTerm, request }));
    if (data.length > this.config.maxRequestBytes) return Promise.reject(Errors.requestTooLarge());
    if ((request.case === "put" || request.case === "txn" || request.case === "leaseGrant") && this.sizeAfterLastCommit + data.length > this.quota) {
      // As etcd: the first write over the quota raises the NOSPACE alarm (through
      // the log, so it survives restarts) and every such write is refused.
      if (!this.alarms.has(AlarmType.NOSPACE)) {
        log.warn("database space exceeded", { "quota-size-bytes": this.quota, "current-size-bytes": this.sizeAfterLastCommit });
        void this.propose({
          case: "alarm",
          value: create(AlarmRequestSchema, { action: AlarmRequest_AlarmAction.ACTIVATE, memberID: this.memberId, alarm: AlarmType.NOSPACE }),
        }).catch(() => {});
      }
      return Promise.reject(Errors.noSpace());
    }
    const wait = this.waiters.wait(id, this.lead);
    const r = this.raw.propose(data);
    if (!r.ok && opts.leaderOnly) {
      this.waiters.reject(id, Errors.notLeader());
      return wait;
    }
    // No leader (or a transfer under way): wait for one, as etcd's proposals block.
    if (!r.ok) this.blocked.push({ id, data });
    this.scheduleReady();
    return wait;
  }

  private retryBlocked(): void {
    if (this.blocked.length === 0) return;
    const todo = this.blocked;
    this.blocked = [];
    for (const b of todo) {
      if (!this.waiters.has(b.id)) continue; // timed out meanwhile
      if (!this.raw.propose(b.data).ok) this.blocked.push(b);
    }
    this.scheduleReady();
  }

  /** Proposes a membership change; resolves once applied here, rejects with the reason the cluster refused it at apply time. */
  async proposeConfChange(cc: ConfChange): Promise<void> {
    if (this.stopped) throw Errors.stopped();
    const key = confKey(cc.type, cc.nodeId);
    const wait = this.confWaiters.wait(key, this.lead);
    const deadline = performance.now() + this.requestTimeoutMs;
    for (;;) {
      const r = this.raw.proposeConfChange(cc);
      this.scheduleReady();
      if (r.ok) break;
      // One change at a time, and none without a leader: retry until the deadline.
      if (performance.now() > deadline || this.stopped) break;
      await Bun.sleep(Math.min(100, this.config.heartbeatIntervalMs));
    }
    return wait;
  }

  /** Publishes this member's name and client URLs (etcd's publish), retrying until it is applied. */
  private async publish(): Promise<void> {
    while (!this.stopped) {
      try {
        await this.propose({
          case: "memberAttributes",
          value: { memberId: this.memberId, name: this.config.name, clientUrls: this.config.advertiseClientUrls } as any,
        });
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
        await Bun.sleep(500);
      }
    }
    for (const w of this.readyWaiters.splice(0)) w();
  }

  private timeoutError(startedLeader: bigint): EtcdError {
    return startedLeader !== this.lead ? Errors.timeoutDueToLeaderFail() : Errors.timeout();
  }

  /** The member's state machine hook: a revoked lease's waiting renewals answer "not found". */
  leaseRevoked(id: bigint): void {
    this.leases.revoked(id);
  }

  /** Resolves once every entry committed now is applied here (etcd's waitAppliedIndex). */
  waitApplied(): Promise<void> {
    if (this.stopped) return Promise.reject(Errors.stopped());
    const index = this.raw.raft.log.committed;
    if (this.appliedIndex >= index) return Promise.resolve();
    return new Promise((resolve, reject) => {
      // etcd's applyTimeout: a member that cannot catch up in a second answers so.
      const timer = setTimeout(() => {
        this.appliedWaiters = this.appliedWaiters.filter((w) => w !== waiter);
        reject(Errors.timeoutWaitAppliedIndex());
      }, APPLY_TIMEOUT_MS);
      const waiter = {
        index,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
        reject: (e: unknown) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      this.appliedWaiters.push(waiter);
      this.scheduleReady();
    });
  }

  private releaseApplied(): void {
    if (this.appliedWaiters.length === 0) return;
    const still: typeof this.appliedWaiters = [];
    for (const w of this.appliedWaiters) {
      if (this.appliedIndex >= w.index) w.resolve();
      else still.push(w);
    }
    this.appliedWaiters = still;
  }

  // ---- reads -----------------------------------------------------------------------------------

  /** Resolves when a read now would be linearizable (undefined: it already is). */
  linearizableBarrier(): Promise<void> | undefined {
    if (this.stopped) return Promise.reject(Errors.stopped());
    // A lone voter that leads has applied everything it committed (apply runs in the commit's transaction).
    const r = this.raw.raft;
    if (r.role === Role.Leader && this.confState.voters.length === 1 && this.confState.voters[0] === this.memberId && r.log.committed === this.appliedIndex)
      return undefined;
    if (this.isLearner()) return Promise.reject(Errors.notSupportedForLearner());
    const p = this.reads.wait(() => Errors.tooManyRequests());
    this.scheduleReady();
    return p;
  }

  range(req: RangeRequest): RangeResponse | Promise<RangeResponse> {
    if (this.stopped) throw Errors.stopped();
    if (req.serializable) return this.withHeader(this.store.range(req));
    const barrier = this.linearizableBarrier();
    if (barrier === undefined) return this.withHeader(this.store.range(req));
    return barrier.then(() => this.withHeader(this.store.range(req)));
  }

  /** A transaction without writes is served like a read, without entering the log. */
  readTxn(req: TxnRequest, serializable: boolean): TxnResponse | Promise<TxnResponse> {
    if (this.stopped) throw Errors.stopped();
    const barrier = serializable ? undefined : this.linearizableBarrier();
    if (barrier === undefined) return this.withHeader(this.store.txn(req));
    return barrier.then(() => this.withHeader(this.store.txn(req)));
  }

  // ---- status ----------------------------------------------------------------------------------

  isLeader(): boolean {
    return this.raw.raft.role === Role.Leader;
  }

  leaderId(): bigint {
    return this.lead;
  }

  isLearner(): boolean {
    return this.membership.get(this.memberId)?.isLearner ?? false;
  }

  /** Raft term now. */
  get term(): number {
    return this.raw.raft.term;
  }

  /** On the leader: each member's replicated index. */
  progress(): Map<bigint, number> {
    const out = new Map<bigint, number>();
    for (const [id, pr] of this.raw.raft.prs) out.set(id, pr.match);
    return out;
  }

  /** When the peer stream to `id` became active (ms), or undefined. */
  activeSince(id: bigint): number | undefined {
    const since = this.transport.activeSince(id);
    return since === 0 ? undefined : since;
  }

  members(): MemberInfo[] {
    return this.membership.list();
  }

  header(revision = this.store.rev): ResponseHeader {
    return create(ResponseHeaderSchema, {
      clusterId: this.clusterId,
      memberId: this.memberId,
      revision: BigInt(revision),
      raftTerm: BigInt(this.raw.raft.term),
    });
  }

  private withHeader<T extends { header?: ResponseHeader }>(resp: T): T {
    const h = resp.header;
    if (h) {
      h.clusterId = this.clusterId;
      h.memberId = this.memberId;
      h.raftTerm = BigInt(this.raw.raft.term);
    } else {
      resp.header = this.header();
    }
    return resp;
  }

  dbSize(): number {
    const pages = this.db.query("PRAGMA page_count").get() as { page_count: number };
    return pages.page_count * this.pageSize;
  }

  /** The database size less its free pages; pass `total` when the caller just read dbSize(). */
  dbSizeInUse(total = this.dbSize()): number {
    const free = this.db.query("PRAGMA freelist_count").get() as { freelist_count: number };
    return total - free.freelist_count * this.pageSize;
  }

  status(): StatusResponse {
    const total = this.dbSize();
    return create(StatusResponseSchema, {
      header: this.header(),
      version: SERVER_VERSION,
      dbSize: BigInt(total),
      dbSizeInUse: BigInt(this.dbSizeInUse(total)),
      leader: this.lead,
      raftIndex: BigInt(this.raw.raft.log.committed),
      raftTerm: BigInt(this.raw.raft.term),
      raftAppliedIndex: BigInt(this.appliedIndex),
      isLearner: this.isLearner(),
      errors: this.alarms.list().map((a) => `memberID:${a.memberID} alarm:${AlarmType[a.alarm]} `),
    });
  }

  /** Why /health is false ("" when healthy): etcd 3.5's reasons. */
  healthProblem(): string {
    const alarms = this.alarms.list();
    if (alarms.length > 0) return `ALARM ${alarms.map((a) => AlarmType[a.alarm]).join(",")}`;
    if (this.lead === 0n) return "RAFT NO LEADER";
    return "";
  }

  /** Maintenance.HashKV: the store's hash up to `revision` (0 = current). */
  hashKV(revision: number): HashKVResponse {
    const h = this.store.hashKV(revision);
    return create(HashKVResponseSchema, {
      header: this.header(h.revision),
      hash: h.hash,
      compactRevision: BigInt(h.compactRevision),
    });
  }

  /** Maintenance.MoveLeader: only the leader can hand over, to a voting member. */
  async moveLeader(target: bigint): Promise<void> {
    if (!this.isLeader()) throw Errors.notLeader();
    const m = this.membership.get(target);
    if (m === undefined || m.isLearner) throw Errors.badLeaderTransferee();
    if (target === this.memberId) return;
    const r = this.raw.transferLeader(target);
    this.scheduleReady();
    if (!r.ok) throw Errors.badLeaderTransferee();
    const deadline = performance.now() + this.requestTimeoutMs;
    while (this.lead !== target) {
      if (performance.now() > deadline || this.stopped) throw Errors.timeoutLeaderTransfer();
      await Bun.sleep(this.config.heartbeatIntervalMs);
    }
    log.info("leadership transferred", { from: this.memberId.toString(16), to: target.toString(16) });
  }

  /**
   * Maintenance.Defragment: rewrites the database file without free pages
   * (SQLite's VACUUM), then truncates the WAL. Blocks the member meanwhile,
   * as etcd's defragmentation blocks its backend.
   */
  defragment(): void {
    if (this.stopped) throw Errors.stopped();
    const before = this.dbSize();
    this.db.run("VACUUM");
    this.db.run("PRAGMA wal_checkpoint(TRUNCATE)");
    this.sizeAfterLastCommit = this.dbSize();
    log.info("finished defragmenting the database", { "size-before": before, "size-after": this.sizeAfterLastCommit });
  }

  /** Stops serving at once (in-memory state may be ahead of the disk now), then tells the owner. */
  private fatal(what: string, err: unknown): void {
    if (this.stopped) return;
    log.error(what, { error: String((err as Error)?.stack ?? err) });
    this.stopNow();
    this.onFatal(what, err);
  }

  /** Hands leadership over if this member leads others (etcd does on shutdown), then stops. */
  async stop(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (!this.stopped && this.isLeader() && this.confState.voters.length > 1) {
      const target = this.bestTransferee();
      if (target !== undefined) {
        try {
          await Promise.race([this.moveLeader(target), Bun.sleep(2 * this.config.electionTimeoutMs)]);
        } catch {
          // stopping anyway
        }
      }
    }
    this.stopNow();
    await this.transport.stop();
    this.db.close();
  }

  /** Stops the loop and fails every waiting client; the database stays open until stop(). */
  private stopNow(): void {
    if (this.stopped) return;
    this.stopped = true;
    if (this.ticker) clearInterval(this.ticker);
    this.watchHub.close();
    this.waiters.rejectAll(Errors.stopped());
    this.confWaiters.rejectAll(Errors.stopped());
    this.reads.rejectAll(Errors.stopped());
    this.leases.stop();
    for (const w of this.appliedWaiters.splice(0)) w.reject(Errors.stopped());
    for (const w of this.readyWaiters.splice(0)) w();
  }

  private bestTransferee(): bigint | undefined {
    let best: bigint | undefined;
    let bestMatch = -1;
    for (const id of this.confState.voters) {
      if (id === this.memberId) continue;
      const pr = this.raw.raft.prs.get(id);
      if (pr && pr.match > bestMatch && this.transport.isActive(id)) {
        best = id;
        bestMatch = pr.match;
      }
    }
    return best;
  }
}

interface AppliedChange {
  /** As proposed (the waiter's key). */
  proposed: ConfChange;
  /** As applied: node id 0 when the membership refused it. */
  cc: ConfChange;
  conf: ConfState;
  index: number;
  error?: EtcdError;
}

function snapKey(meta: SnapshotMeta): string {
  return `${meta.index}:${meta.term}`;
}

function confKey(type: ConfChangeType, nodeId: bigint): bigint {
  return (BigInt(type) << 64n) | nodeId;
}

function sameConf(a: ConfState, b: ConfState): boolean {
  const key = (c: ConfState) => `${[...c.voters].sort().join(",")}|${[...c.learners].sort().join(",")}`;
  return key(a) === key(b);
}
