// A deterministic network simulator: one seed fixes every choice (which node
// ticks, which message is delivered, dropped, duplicated or reordered, when
// the network splits, which node crashes), so a failing run replays exactly.
import { bootstrapEntries, decodeConfChange } from "../confchange.ts";
import { RawNode } from "../node.ts";
import { MemoryStorage, copyConfState, emptyConfState } from "../storage.ts";
import { type ConfChange, ConfChangeType, type ConfState, EntryType, type Message, MessageType, type NodeId, Role } from "../types.ts";
import { Checker } from "./checker.ts";
import { Clients } from "./clients.ts";
import { type KvState, KvStore } from "./kv.ts";
import { mulberry32 as seededRandom } from "../../testing/prng.ts";

/** Converge rounds during which clients keep issuing requests to the healed cluster. */
const CALM_CLIENT_ROUNDS = 40;

export interface SimOptions {
  nodes: number;
  seed: number;
  /** Random actions before the final heal-and-converge phase. */
  steps: number;
  /** Cap on messages in flight; the oldest are lost beyond it (a bounded network). */
  maxInflight?: number;
}

interface SimNode {
  id: NodeId;
  /** Only what the driver persisted: a restart rebuilds from this alone. */
  storage: MemoryStorage;
  node: RawNode | undefined; // undefined while crashed
  /** Last index applied by this incarnation (the app's state is in memory, so it restarts at 0). */
  applied: number;
  /** Commit index made visible (persisted) so far, per incarnation. */
  commit: number;
  /** Commit index in memory last seen, per incarnation: must never go back. */
  memCommit: number;
  /** The app's key-value state, in memory: a restart rebuilds it from the snapshot and the log. */
  kv: KvStore;
  /** Membership as of `applied` (what a snapshot records). */
  conf: ConfState;
  /** Applied its own removal, or was told by a peer: shut down for good, as an etcd member does. */
  removed: boolean;
  /** Members this node has seen removed: their messages are refused (etcd's peer handler answers 410). */
  removedPeers: Set<NodeId>;
}

export interface SimStats {
  committed: number;
  leaders: number;
  crashes: number;
  delivered: number;
  reads: number;
  /** Snapshots taken, snapshots installed from a leader, distinct membership changes applied, transfers asked. */
  snapshots: number;
  installs: number;
  confChanges: number;
  transfers: number;
  /** Client operations: issued, answered, abandoned (timeout or crash), refused (no leader). */
  clients: Clients["stats"];
}

export class Simulator {
  readonly rand: () => number;
  readonly checker: Checker = new Checker();
  readonly nodes: SimNode[] = [];
  private byId = new Map<NodeId, SimNode>();
  /** Log indexes of membership changes applied anywhere (bootstrap entries excluded). */
  private changesApplied = new Set<number>();
  /** Node ids ever created; a new member always gets a fresh id (etcd never reuses one). */
  private nextId: number;
  private inflight: Message[] = [];
  /** Blocked directed links "from->to" (asymmetric partitions included). */
  private blocked = new Set<string>();
  private proposals = 0;
  private reads = 0;
  /** Read context -> highest visible commit index when the read was issued. */
  private readFloor = new Map<string, number>();
  readonly stats: SimStats;
  /** Logical time for client histories: one unit per action (and per converge round). */
  private now = 0;
  readonly clients: Clients;
  private readonly ids: NodeId[];

  /** Flow-control settings vary by seed: one entry per message exposes more interleavings. */
  private readonly maxSizePerMsg: number;
  private readonly maxInflightMsgs: number;
  private readonly partitionRate: number;
  private readonly crashRate: number;
  private readonly preVote: boolean;
  private readonly checkQuorum: boolean;
  private readonly electionTick: number;
  private readonly snapshotEvery: number;
  private readonly snapshotKeep: number;
  private readonly confChangeRate: number;
  private readonly transferRate: number;

  constructor(readonly opts: SimOptions) {
    this.rand = seededRandom(opts.seed);
    this.maxSizePerMsg = this.rand() < 0.5 ? 1 : 256;
    this.maxInflightMsgs = 1 + Math.floor(this.rand() * 8);
    // How hostile the world is also varies by seed, from calm to stormy.
    this.partitionRate = 0.002 + this.rand() * 0.02;
    this.crashRate = 0.001 + this.rand() * 0.01;
    // Both election modes must be safe; plain Raft (no pre-vote) also churns leaders more.
    this.preVote = this.rand() < 0.5;
    this.checkQuorum = this.rand() < 0.5;
    this.electionTick = 3 + Math.floor(this.rand() * 8);
    // Snapshot + compaction every few applied entries, keeping a few entries or none.
    this.snapshotEvery = 3 + Math.floor(this.rand() * 40);
    this.snapshotKeep = Math.floor(this.rand() * 6);
    this.confChangeRate = 0.004 + this.rand() * 0.016;
    this.transferRate = this.rand() * 0.004;
    this.ids = Array.from({ length: opts.nodes }, (_, i) => BigInt(i + 1));
    this.nextId = opts.nodes + 1;
    // Clients draw from their own stream, so adding them left the fault schedule's draws alone.
    this.clients = new Clients(seededRandom(opts.seed ^ 0x5bd1e995), {
      propose: (id, data) => this.byId.get(id)!.node!.propose(data).ok,
      readIndex: (id, ctx) => {
        this.readFloor.set(ctx, this.checker.maxCommitted);
        return this.byId.get(id)!.node!.readIndex(new TextEncoder().encode(ctx)).ok;
      },
    });
    this.stats = {
      committed: 0,
      leaders: 0,
      crashes: 0,
      delivered: 0,
      reads: 0,
      snapshots: 0,
      installs: 0,
      confChanges: 0,
      transfers: 0,
      clients: this.clients.stats,
    };
    // Every initial member's log starts with the membership (etcd's bootstrap entries).
    const boot = bootstrapEntries({ voters: this.ids, learners: [] });
    this.checker.bootstrap(boot);
    for (const id of this.ids) {
      const n = this.addNode(id);
      n.storage.append(boot);
      n.storage.setHardState({ term: 1, vote: 0n, commit: boot.length });
      this.start(n);
    }
  }

  private addNode(id: NodeId): SimNode {
    const n: SimNode = {
      id,
      storage: new MemoryStorage(),
      node: undefined,
      applied: 0,
      commit: 0,
      memCommit: 0,
      kv: new KvStore(),
      conf: emptyConfState(),
      removed: false,
      removedPeers: new Set(),
    };
    this.nodes.push(n);
    this.byId.set(id, n);
    return n;
  }

  private pick<T>(xs: T[]): T {
    return xs[Math.floor(this.rand() * xs.length)];
  }

  private start(n: SimNode): void {
    // The app comes back from its last snapshot; the log after it is re-applied.
    const snap = n.storage.snapshot();
    n.node = new RawNode({
      id: n.id,
      storage: n.storage,
      applied: snap.meta.index,
      electionTick: this.electionTick,
      heartbeatTick: 1,
      // Each node draws from its own stream derived from the run's seed.
      rand: seededRandom(Math.floor(this.rand() * 2 ** 32)),
      preVote: this.preVote,
      checkQuorum: this.checkQuorum,
      maxSizePerMsg: this.maxSizePerMsg,
      maxInflightMsgs: this.maxInflightMsgs,
      // Even seeds apply one entry per Ready: committed-but-unapplied windows (conf changes
      // included) stay open across other events.
      maxCommittedSizePerReady: this.opts.seed % 2 === 0 ? 1 : undefined,
    });
    n.applied = snap.meta.index;
    if (snap.meta.index > 0) this.restoreApp(n, snap.data);
    else n.kv = new KvStore();
    n.conf = copyConfState(snap.meta.confState);
    n.commit = n.node.raft.log.committed;
    n.memCommit = n.commit;
  }

  private alive(): SimNode[] {
    return this.nodes.filter((n) => n.node !== undefined);
  }

  /** Persist, then send, then apply, then advance: the driver contract. */
  private handleReady(n: SimNode): void {
    const node = n.node!;
    const rd = node.ready();
    if (!rd) return;
    const r = node.raft;
    if (rd.snapshot) {
      // Install the leader's snapshot before anything else in this Ready.
      this.checker.snapshot(n.id, rd.snapshot);
      n.storage.applySnapshot(rd.snapshot);
      this.restoreApp(n, rd.snapshot.data);
      n.conf = copyConfState(rd.snapshot.meta.confState);
      n.applied = rd.snapshot.meta.index;
      this.checker.state(n.id, n.applied, n.kv.digest());
      this.stats.installs++;
    }
    if (rd.entries.length > 0) {
      n.storage.append(rd.entries);
      this.checker.persisted(n.id, r, rd.entries);
    }
    if (rd.hardState) {
      this.checker.hardState(n.id, n.storage.hardState, rd.hardState);
      n.storage.setHardState(rd.hardState);
    }
    // A commit becomes visible only now that the log and hard state behind it are durable
    // (a leader may count its own unpersisted entries, but nobody sees that before this point).
    if (r.log.committed !== n.commit) {
      this.checker.commitAdvanced(n.id, r, n.commit);
      n.commit = r.log.committed;
    }
    for (const m of rd.messages) {
      if (this.blocked.has(`${m.from}->${m.to}`)) {
        // The transport notices it cannot reach the peer.
        this.lost(m);
        node.reportUnreachable(m.to);
        continue;
      }
      this.inflight.push(m);
    }
    const cap = this.opts.maxInflight ?? 400;
    if (this.inflight.length > cap) for (const m of this.inflight.splice(0, this.inflight.length - cap)) this.lost(m);
    for (const rs of rd.readStates) {
      const ctx = new TextDecoder().decode(rs.context);
      const floor = this.readFloor.get(ctx);
      if (floor === undefined) this.checker.fail(`node ${n.id} got a read state for unknown ${ctx}`);
      if (rs.index < floor) this.checker.fail(`stale read ${ctx}: index ${rs.index} < visible commit ${floor}`);
      // (A follower may get an index beyond its own log: the app waits until applied >= index.)
      this.stats.reads++;
      this.clients.readState(n.id, ctx, rs.index);
    }
    for (const e of rd.committedEntries) {
      this.checker.apply(n.id, n.applied, e);
      n.applied = e.index;
      if (e.type === EntryType.ConfChange) this.applyConfChange(n, e.index, decodeConfChange(e.data));
      const done = n.kv.apply(e);
      if (done) this.clients.applied(n.id, this.now, done.cmd, done.result);
      this.checker.state(n.id, n.applied, n.kv.digest());
    }
    // Reads are answered only once this node has applied up to their read index.
    this.clients.serveReads(n.id, this.now, n.applied, n.kv);
    node.advance();
    this.maybeSnapshot(n);
    // A member that applied its own removal stops once it is safe: a new leader has committed
    // an entry of its own term, so the removal is committed in that leader's log and no quorum
    // will ever need this member again. (Stopping earlier can strand a two-member cluster.)
    if (n.removedPeers.has(n.id) && r.role === Role.Follower && r.lead !== 0n && r.log.term(r.log.committed) === r.term) {
      this.shutDownRemoved(n);
    }
  }

  private applyConfChange(n: SimNode, index: number, cc: ConfChange): void {
    // Like etcd's membership store, the app refuses to bring back a removed member
    // (a stale operator request): the change is applied with no node, i.e. as nothing.
    if (cc.type !== ConfChangeType.RemoveNode && n.removedPeers.has(cc.nodeId)) cc = { ...cc, nodeId: 0n };
    const before = n.conf;
    n.conf = n.node!.applyConfChange(cc);
    if (index > this.opts.nodes) this.changesApplied.add(index); // not a bootstrap entry
    this.stats.confChanges = this.changesApplied.size;
    if (cc.type !== ConfChangeType.RemoveNode) return;
    // Only a removal that took effect (the last voter is never removed).
    const was = before.voters.includes(cc.nodeId) || before.learners.includes(cc.nodeId);
    const is = n.conf.voters.includes(cc.nodeId) || n.conf.learners.includes(cc.nodeId);
    if (was && !is) n.removedPeers.add(cc.nodeId);
  }

  private shutDownRemoved(n: SimNode): void {
    n.removed = true;
    n.node = undefined;
    this.clients.crashed(n.id);
  }

  /** A snapshot that never arrives: its sender's transport reports the failure. */
  private lost(m: Message): void {
    if (m.type === MessageType.Snap) this.byId.get(m.from)?.node?.reportSnapshot(m.to, false);
  }

  private deliver(at: number, keep: boolean): void {
    const m = this.inflight[at];
    if (!keep) this.inflight.splice(at, 1);
    const to = this.byId.get(m.to);
    if (this.blocked.has(`${m.from}->${m.to}`) || !to?.node) {
      this.lost(m);
      return;
    }
    if (to.removedPeers.has(m.from)) {
      // Refused, as etcd's peer handler refuses a removed member. (The sender is not
      // stopped by this: a voter that has not learned of the removal may still need it.)
      this.lost(m);
      return;
    }
    this.stats.delivered++;
    to.node.step(m);
    if (m.type === MessageType.Snap) this.byId.get(m.from)?.node?.reportSnapshot(m.to, true);
  }

  /**
   * The application's snapshot: the key-value state and the members known
   * removed (etcd keeps those in its backend too, so a restarted member still
   * refuses them).
   */
  private appSnapshot(n: SimNode): Uint8Array {
    return new TextEncoder().encode(JSON.stringify({ kv: n.kv.state(), removed: [...n.removedPeers].map(String) }));
  }

  private restoreApp(n: SimNode, data: Uint8Array): void {
    const { kv, removed } = JSON.parse(new TextDecoder().decode(data)) as { kv: KvState; removed: string[] };
    n.kv = KvStore.fromState(kv);
    for (const id of removed) n.removedPeers.add(BigInt(id));
  }

  /** Snapshot the app at its applied index and compact the log behind it. */
  private maybeSnapshot(n: SimNode): void {
    const last = n.storage.snapshot().meta.index;
    // A leader also snapshots when a member that joined after its last snapshot needs one.
    const needed = n.applied > last && n.node!.raft.needsSnapshot().length > 0;
    if (n.applied - last < this.snapshotEvery && !needed) return;
    const snap = n.storage.createSnapshot(n.applied, n.conf, this.appSnapshot(n));
    this.checker.snapshot(n.id, snap);
    this.checker.state(n.id, n.applied, n.kv.digest());
    n.storage.compact(Math.max(0, n.applied - this.snapshotKeep));
    this.stats.snapshots++;
  }

  /**
   * Ask a node for a membership change as an operator would: promote a learner,
   * add a fresh learner (bounded number of nodes), or remove a voter (never
   * below one voter; the rules of one-change-at-a-time are the core's).
   */
  private changeMembership(n: SimNode): void {
    const conf = n.conf;
    let cc: ConfChange | undefined;
    const none = new Uint8Array(0);
    const r = this.rand();
    if (conf.learners.length > 0 && r < 0.5) {
      cc = { type: ConfChangeType.AddNode, nodeId: this.pick(conf.learners), context: none };
    } else if (r < 0.75 && this.nextId <= this.opts.nodes + 8 && conf.voters.length > 0) {
      const id = BigInt(this.nextId);
      if (n.node!.proposeConfChange({ type: ConfChangeType.AddLearnerNode, nodeId: id, context: none }).ok) {
        // Started empty, as an operator starts a new member: it learns everything from the leader.
        this.nextId++;
        this.ids.push(id);
        this.start(this.addNode(id));
      }
      return;
    } else if (conf.voters.length > 1) {
      cc = { type: ConfChangeType.RemoveNode, nodeId: this.pick(conf.voters), context: none };
    }
    if (cc) n.node!.proposeConfChange(cc);
  }

  private propose(n: SimNode): void {
    const data = new TextEncoder().encode(`s${this.opts.seed}p${this.proposals++}`);
    n.node!.propose(data);
  }

  /**
   * Start a ReadIndex. Linearizability of reads demands the answer be at least
   * every commit index already visible when the read started.
   */
  private read(n: SimNode): void {
    const ctx = `r${this.reads++}`;
    this.readFloor.set(ctx, this.checker.maxCommitted);
    n.node!.readIndex(new TextEncoder().encode(ctx));
  }

  private repartition(): void {
    this.blocked.clear();
    const r = this.rand();
    if (r < 0.4) return; // healed
    if (r < 0.7) {
      // Symmetric split into two sides.
      const side = new Map(this.ids.map((id) => [id, this.rand() < 0.5]));
      for (const a of this.ids) for (const b of this.ids) if (side.get(a) !== side.get(b)) this.blocked.add(`${a}->${b}`);
    } else {
      // Asymmetric: some directed links fail.
      for (const a of this.ids) for (const b of this.ids) if (a !== b && this.rand() < 0.3) this.blocked.add(`${a}->${b}`);
    }
  }

  /** After every action: record what each live node shows. */
  private check(): void {
    for (const n of this.nodes) this.observe(n);
  }

  private observe(n: SimNode): void {
    if (!n.node) return;
    const r = n.node.raft;
    this.checker.observe(n.id, r);
    if (r.log.committed < n.memCommit) this.checker.fail(`node ${n.id} commit went back ${n.memCommit} -> ${r.log.committed}`);
    n.memCommit = r.log.committed;
  }

  step(): void {
    const x = this.rand();
    const alive = this.alive();
    if (x < 0.08) {
      // One unit of time passes for everyone.
      for (const n of alive) n.node!.tick();
    } else if (x < 0.1) {
      // Clock skew: one node's clock runs ahead.
      if (alive.length) this.pick(alive).node!.tick();
    } else if (x < 0.55) {
      if (this.inflight.length) {
        const at = Math.floor(this.rand() * this.inflight.length); // any message: reordering
        const y = this.rand();
        if (y < 0.05)
          this.lost(this.inflight.splice(at, 1)[0]); // drop
        else this.deliver(at, y < 0.08); // deliver (sometimes keeping a duplicate)
      }
    } else if (x < 0.9) {
      if (alive.length) {
        this.handleReady(this.pick(alive));
      }
    } else if (x < 0.9 + this.confChangeRate) {
      if (alive.length) this.changeMembership(this.pick(alive));
    } else if (x < 0.9 + this.confChangeRate + this.transferRate) {
      if (alive.length) {
        const n = this.pick(alive);
        if (n.conf.voters.length) {
          n.node!.transferLeader(this.pick(n.conf.voters));
          this.stats.transfers++;
        }
      }
    } else if (x < 0.9 + this.confChangeRate + this.transferRate + this.partitionRate) {
      this.repartition();
    } else if (x >= 1 - this.crashRate) {
      const n = this.pick(this.nodes);
      if (n.removed) {
        // Gone for good.
      } else if (n.node) {
        // Crash: everything not handed to storage is gone, including the app's state.
        n.node = undefined;
        this.stats.crashes++;
        this.clients.crashed(n.id);
      } else {
        this.start(n);
      }
    } else if (this.rand() < 0.2) {
      if (alive.length) this.read(this.pick(alive));
    } else if (alive.length) {
      // A client request to a random node when a client is idle, else background load.
      const n = this.pick(alive);
      if (!this.clients.issue(this.now, n.id)) this.propose(n);
    }
    this.now++;
    this.clients.expire(this.now);
    this.check();
  }

  /** Heal, restart everyone, deliver reliably until a final proposal is applied everywhere. */
  converge(maxRounds = 3000): void {
    this.blocked.clear();
    for (const n of this.nodes) if (!n.node && !n.removed) this.start(n);
    const want = new TextEncoder().encode(`final-${this.opts.seed}`);
    let proposedAt = -1;
    for (let round = 0; round < maxRounds; round++) {
      this.now++;
      this.clients.expire(this.now);
      // The healed cluster also serves clients for a while: their answers must agree
      // with whatever the stormy phase's unanswered writes did.
      // (One attempt per round: a refused request leaves its client idle for the next round.)
      const alive = this.alive();
      if (round < CALM_CLIENT_ROUNDS) this.clients.issue(this.now, this.clients.pickNode(alive.map((n) => n.id)));
      for (const n of alive) n.node!.tick();
      for (let k = 0; k < 50; k++) {
        for (const n of this.alive()) this.handleReady(n);
        if (this.inflight.length === 0) break;
        const batch = this.inflight;
        this.inflight = [];
        for (let i = 0; i < batch.length; i++) {
          this.inflight.push(batch[i]);
          this.deliver(this.inflight.length - 1, false);
        }
        this.check();
      }
      this.check();
      // The leader of the highest term (a removed leader nobody listens to any more may linger).
      let leader: SimNode | undefined;
      for (const n of this.alive()) {
        const r = n.node!.raft;
        if (r.role === Role.Leader && r.promotable() && (!leader || r.term > leader.node!.raft.term)) leader = n;
      }
      if (leader && proposedAt < 0) {
        leader.node!.propose(want);
        proposedAt = round;
      }
      // Every member of the leader's configuration (voters and learners) must get there.
      // ... and be fully caught up with it, not just past the final proposal.
      const members = leader ? this.members(leader) : [];
      const upTo = leader?.node!.raft.log.committed ?? 0;
      const done = (n: SimNode) => n.node !== undefined && n.applied >= upTo && this.hasApplied(n, want);
      if (round >= CALM_CLIENT_ROUNDS && proposedAt >= 0 && members.every(done)) {
        this.finalChecks(members);
        return;
      }
      // A proposal can be lost with a leader that steps down: propose again later.
      if (proposedAt >= 0 && round - proposedAt > 100) proposedAt = -1;
    }
    throw new Error(`no convergence after heal (seed ${this.opts.seed})`);
  }

  private hasApplied(n: SimNode, data: Uint8Array): boolean {
    const r = n.node!.raft;
    if (r.log.applied !== n.applied) return false;
    const want = new TextDecoder().decode(data);
    for (let i = n.applied; i > Math.max(0, n.applied - 20); i--) {
      if (this.checker.applied.get(i)?.endsWith(`:${want}`)) return true;
    }
    return false;
  }

  private members(leader: SimNode): SimNode[] {
    const cs = leader.node!.raft.confState();
    return [...cs.voters, ...cs.learners].map((id) => this.byId.get(id)!);
  }

  /** Every member holds every committed entry (or a snapshot covering it): nothing committed was lost. */
  private finalChecks(members: SimNode[]): void {
    for (const n of members) {
      const r = n.node!.raft;
      const covered = r.log.firstIndex() - 1;
      for (const [i, t] of this.checker.committed) {
        if (i < covered) continue;
        if (r.log.term(i) !== t) throw new Error(`invariant: node ${n.id} lost committed entry ${i}/${t}`);
      }
    }
    this.stats.committed = this.checker.maxCommitted;
    this.stats.leaders = this.checker.leaderTerms();
  }

  run(): SimStats {
    try {
      for (let i = 0; i < this.opts.steps; i++) this.step();
      this.converge();
    } catch (e) {
      const err = e as Error;
      err.message = `seed ${this.opts.seed} (nodes ${this.opts.nodes}; replay with RAFT_SEED=${this.opts.seed}): ${err.message}`;
      throw err;
    }
    return this.stats;
  }
}
