// The member's wiring: every part built once, each given only the narrow view
// of the others it needs (closures read `parts` at call time, so the order of
// construction does not matter for them). member.ts owns the lifecycle; this
// file only connects.
import type { Database } from "bun:sqlite";
import { join } from "node:path";
import { AlarmType } from "../gen/etcdserverpb/rpc_pb.js";
import { RawNode } from "../raft/node.js";
import type { Runtime } from "../runtime/time.js";
import { SqliteRaftStorage } from "../storage/raft-storage.js";
import { effectiveBcryptCost, hashPassword } from "../auth/password.js";
import { Applier } from "./apply.js";
import { AuthServer } from "./auth-server.js";
import { APPLIED_INDEX, type Identity } from "./bootstrap.js";
import { ClusterOps } from "./cluster-ops.js";
import { LeaseDriver } from "./lease-driver.js";
import { raftLoopHost } from "./loop-host.js";
import { Maintenance } from "./maintenance.js";
import type { MemberConfig } from "./member-config.js";
import { Metrics } from "./metrics.js";
import { transportNetwork, type NetworkFactory } from "./peer-network.js";
import { Peers, REMOVED_REASON } from "./peers.js";
import { forwardPromote } from "./promote.js";
import { MAX_PENDING, Proposals } from "./proposals.js";
import { RaftLoop } from "./raft-loop.js";
import { ReadIndexReads } from "./read-index.js";
import { Snapshots } from "./snapshots.js";
import { assertComplete, type Owner, type Parts } from "./member-parts.js";
import { MemberState } from "./state.js";
import { V3Server } from "./v3-server.js";

/** etcd's SnapshotCatchUpEntries. */
const DEFAULT_CATCH_UP_ENTRIES = 5000;
/** Bytes of entries per App message (etcd: 1 MiB). */
const MAX_SIZE_PER_MSG = 1024 * 1024;
/** App messages in flight per follower (etcd: 4096 / 8). */
const MAX_INFLIGHT = 512;
/** etcd's default lease checkpoint interval. */
const DEFAULT_LEASE_CHECKPOINT_MS = 5 * 60 * 1000;

export interface Wiring {
  db: Database;
  config: MemberConfig;
  identity: Identity;
  runtime: Runtime;
  network?: NetworkFactory;
  fsync: boolean;
  processMetrics: boolean;
  owner: Owner;
}

export function snapshotDir(config: MemberConfig): string {
  return join(config.dataDir, "member", "snap");
}

/** Builds every part of a member over its open database. */
export function buildParts(w: Wiring): Parts {
  const { config, identity } = w;
  // etcd's ReqTimeout: 5 s plus two election timeouts.
  const p = {
    memberId: identity.memberId,
    clusterId: identity.clusterId,
    requestTimeoutMs: 5000 + 2 * config.electionTimeoutMs,
    sizeAfterLastCommit: 0,
    quotaLimited: Number.isFinite(config.quotaBackendBytes),
  } as Parts;
  p.isLearner = () => p.state.membership.get(p.memberId)?.isLearner ?? false;
  const storage = buildCore(w, p);
  buildNetwork(w, p);
  p.loop = new RaftLoop(buildRawNode(w, storage), storage, w.db, raftLoopHost(p, w.owner), p.network, w.runtime.scheduler, w.runtime.clock, {
    fsync: w.fsync,
    fsynced: (s) => p.metrics.fsynced(s),
  });
  p.snapshots = new Snapshots(
    w.db,
    storage,
    p.applier,
    p.state,
    { stepAndRun: (m) => p.loop.stepNow(m), stopped: w.owner.stopped },
    { snapshotCount: config.snapshotCount, catchUpEntries: config.snapshotCatchUpEntries ?? DEFAULT_CATCH_UP_ENTRIES, dir: snapshotDir(config) },
  );
  buildRequests(w, p);
  buildServices(w, p);
  p.sizeAfterLastCommit = p.maintenance.dbSize();
  p.peers.seed(identity.remoteMembers ?? []);
  assertComplete(p);
  return p;
}

/** The replicated state and the applier over it; returns the Raft storage. */
function buildCore(w: Wiring, p: Parts): SqliteRaftStorage {
  const { config } = w;
  const electionTicks = electionTicksOf(config);
  p.state = new MemberState(w.db, {
    // etcd: 1.5 election timeouts (in whole ticks), rounded up to seconds.
    minLeaseTtl: Math.ceil((Math.floor((3 * electionTicks) / 2) * config.heartbeatIntervalMs) / 1000),
    leaseCheckpointIntervalMs: config.leaseCheckpointIntervalMs ?? DEFAULT_LEASE_CHECKPOINT_MS,
    now: () => w.runtime.clock.now(),
    hub: { schedule: (fn) => w.runtime.scheduler.after(0, fn) },
  });
  const storage = new SqliteRaftStorage(w.db);
  const snap = storage.snapshot().meta;
  p.applier = new Applier(
    p.state,
    {
      memberId: p.memberId,
      leadsTerm: (term) => p.loop.isLeader() && term === p.loop.term,
      leaderTermApplied: () => p.leases.promote(),
      leaseRevoked: (id) => p.leases.revoked(id),
      selfRemoved: () => p.peers.selfRemoved(),
      waiting: (id) => p.proposals.waiting(id),
    },
    { appliedIndex: p.state.meta.getNumber(APPLIED_INDEX) ?? 0, snapshotIndex: snap.index, confState: snap.confState },
  );
  return storage;
}

function electionTicksOf(config: MemberConfig): number {
  return Math.max(2, Math.round(config.electionTimeoutMs / config.heartbeatIntervalMs));
}

/** The network with the member's handlers, and the peer set over it. */
function buildNetwork(w: Wiring, p: Parts): void {
  const { config } = w;
  const factory =
    w.network ??
    transportNetwork({
      listenUrls: config.listenPeerUrls,
      advertiseUrls: config.initialAdvertisePeerUrls,
      snapshotDir: snapshotDir(config),
      tls: config.peerTls,
    });
  p.network = factory(
    { id: p.memberId, clusterId: p.clusterId },
    {
      onMessage: (m) => p.loop.step(m),
      onUnreachable: (id) => p.loop.raw.reportUnreachable(id),
      onSnapshotStatus: (id, ok) => {
        p.loop.raw.reportSnapshot(id, ok);
        p.loop.schedule();
      },
      onSnapshot: (m, file) => p.snapshots.receive(m, file),
      openSnapshotData: () => p.snapshots.openData(),
      isRemoved: (id) => p.state.membership.isRemoved(id),
      onPeerRemovedUs: () => w.owner.removed(REMOVED_REASON),
      onPeerRequest: (req) => p.peers.request(req, { clusterOps: p.clusterOps, leases: p.leases }),
      onPeerUrls: (id, urls) => p.peers.heardFrom(id, urls),
    },
  );
  p.peers = new Peers(p.memberId, p.clusterId, p.state.membership, p.network, w.runtime.clock, {
    electionTimeoutMs: config.electionTimeoutMs,
    isLeader: () => p.loop.isLeader(),
    stop: (reason) => w.owner.removed(reason),
  });
  p.peers.ensureSelf(p.applier.confState, { name: config.name, peerURLs: config.initialAdvertisePeerUrls }, (fn) => w.db.transaction(fn)());
}

function buildRawNode(w: Wiring, storage: SqliteRaftStorage): RawNode {
  const { config, identity } = w;
  const snap = storage.snapshot().meta;
  return new RawNode({
    id: identity.memberId,
    storage,
    electionTick: electionTicksOf(config),
    heartbeatTick: 1,
    rand: () => w.runtime.random(),
    // Entries after the snapshot are delivered again: conf changes rebuild the
    // configuration; other entries at or below the applied index are skipped.
    applied: snap.index,
    preVote: config.preVote,
    checkQuorum: true,
    maxSizePerMsg: MAX_SIZE_PER_MSG,
    maxInflightMsgs: MAX_INFLIGHT,
  });
}

/** Proposals and linearizable reads. */
function buildRequests(w: Wiring, p: Parts): void {
  const { config, runtime } = w;
  const raw = p.loop.raw;
  p.proposals = new Proposals(
    {
      memberId: p.memberId,
      raftPropose: (data) => raw.propose(data).ok,
      raftProposeConfChange: (cc) => raw.proposeConfChange(cc).ok,
      committed: () => p.loop.committed,
      term: () => p.loop.term,
      leader: () => p.loop.lead,
      isLeader: () => p.loop.isLeader(),
      appliedIndex: () => p.applier.appliedIndex,
      isLearner: p.isLearner,
      stopped: w.owner.stopped,
      schedule: () => p.loop.schedule(),
      fillHeader: (resp) => p.kv.withHeader(resp),
      sizeAfterLastCommit: () => p.sizeAfterLastCommit,
      noSpaceAlarm: () => p.state.alarms.has(AlarmType.NOSPACE),
    },
    {
      maxRequestBytes: config.maxRequestBytes,
      quotaBytes: config.quotaBackendBytes,
      requestTimeoutMs: p.requestTimeoutMs,
      confRetryMs: Math.min(100, config.heartbeatIntervalMs),
    },
    runtime.clock,
    runtime.scheduler,
  );
  const readHost = {
    requestReadIndex: (ctx: Uint8Array) => {
      const ok = raw.readIndex(ctx).ok;
      p.loop.schedule();
      return ok;
    },
    appliedIndex: () => p.applier.appliedIndex,
  };
  p.reads = new ReadIndexReads(readHost, p.requestTimeoutMs, MAX_PENDING, runtime.clock, () => runtime.random());
}

/** What the API layer and peers call: leases, the v3 surface, maintenance, cluster operations, metrics. */
function buildServices(w: Wiring, p: Parts): void {
  const { config, runtime, owner } = w;
  const { membership } = p.state;
  p.leases = new LeaseDriver(p.state.lessor, {
    // Both arguments: the driver's expiry and checkpoint proposals are leader-only.
    propose: owner.propose,
    isLeader: () => p.loop.isLeader() && !owner.stopped(),
    requestLeader: (path, body, timeoutMs) => {
      const urls = p.loop.lead === 0n ? undefined : membership.get(p.loop.lead)?.peerURLs;
      if (urls === undefined || urls.length === 0) return undefined;
      return p.network.request(urls, { method: "POST", path, body, headers: { "content-type": "application/protobuf" }, timeoutMs, pooled: true });
    },
    waitApplied: () => p.proposals.waitApplied(),
    requestTimeoutMs: p.requestTimeoutMs,
    electionTimeoutMs: config.electionTimeoutMs,
    stopped: owner.stopped,
    clock: runtime.clock,
    scheduler: runtime.scheduler,
  });
  p.kv = new V3Server(
    {
      memberId: p.memberId,
      clusterId: p.clusterId,
      term: () => p.loop.term,
      stopped: owner.stopped,
      isLearner: p.isLearner,
      loneLeaderCaughtUp: () => p.loop.isLeader() && p.applier.isLoneVoter() && p.loop.committed === p.applier.appliedIndex,
      nextId: () => p.proposals.nextId(),
    },
    p.state,
    owner.propose,
    p.reads,
    p.leases,
    () => p.loop.schedule(),
  );
  p.auth = buildAuth(w, p);
  p.maintenance = buildMaintenance(w, p);
  p.clusterOps = new ClusterOps({
    selfId: p.memberId,
    strictReconfigCheck: config.strictReconfigCheck,
    membership,
    isLeader: () => p.loop.isLeader(),
    leaderId: () => p.loop.lead,
    progress: () => progressOf(p.loop),
    activeSince: (id) => p.network.activeSince(id),
    now: () => runtime.clock.wall(),
    proposeConfChange: (cc) => p.proposals.proposeConfChange(cc),
    linearizableBarrier: () => p.kv.linearizableBarrier() ?? Promise.resolve(),
    forwardPromote: (leader, id) => forwardPromote(membership.get(leader)?.peerURLs ?? [], id, p.requestTimeoutMs, p.network.request, runtime.clock),
  });
  const metricsSource = {
    memberId: p.memberId,
    dbSize: () => p.maintenance.dbSize(),
    dbSizeInUse: () => p.maintenance.dbSizeInUse(),
    pendingProposals: () => p.proposals.pending,
    hasLeader: () => p.loop.lead !== 0n,
    isLeader: () => p.loop.isLeader(),
    watchers: () => {
      const n = p.state.watchHub.watcherCount;
      return n.synced + n.unsynced;
    },
  };
  p.metrics = new Metrics(metricsSource, w.processMetrics);
}

/** Users and roles: passwords hashed here at the member's --bcrypt-cost, before proposing. */
function buildAuth(w: Wiring, p: Parts): AuthServer {
  const bcryptCost = effectiveBcryptCost(w.config.bcryptCost);
  return new AuthServer({
    state: p.state,
    propose: w.owner.propose,
    headers: p.kv,
    barrier: () => p.kv.linearizableBarrier(),
    hashPassword: (password) => hashPassword(password, bcryptCost),
  });
}

function buildMaintenance(w: Wiring, p: Parts): Maintenance {
  const host = {
    memberId: p.memberId,
    stopped: w.owner.stopped,
    isLeader: () => p.loop.isLeader(),
    leader: () => p.loop.lead,
    term: () => p.loop.term,
    committed: () => p.loop.committed,
    appliedIndex: () => p.applier.appliedIndex,
    isLearner: p.isLearner,
    transferLeader: (target: bigint) => {
      const ok = p.loop.raw.transferLeader(target).ok;
      p.loop.schedule();
      return ok;
    },
    isVoter: (id: bigint) => {
      const m = p.state.membership.get(id);
      return m !== undefined && !m.isLearner;
    },
    resized: () => (p.sizeAfterLastCommit = p.maintenance.dbSize()),
  };
  const timing = { requestTimeoutMs: p.requestTimeoutMs, heartbeatIntervalMs: w.config.heartbeatIntervalMs };
  return new Maintenance(w.db, p.state, host, p.kv, w.owner.propose, w.runtime.clock, w.runtime.scheduler, timing);
}

/** On the leader: each member's replicated index. */
export function progressOf(loop: RaftLoop): Map<bigint, number> {
  const out = new Map<bigint, number>();
  for (const [id, pr] of loop.raw.raft.prs) out.set(id, pr.match);
  return out;
}
