// The Raft state machine: pure and deterministic. Input arrives only through
// tick() and step(); output leaves only through `msgs`, `readStates` and the log.
import { applyChange } from "./confchange.ts";
import { RaftLog } from "./log.ts";
import { Progress, ProgressState } from "./progress.ts";
import { ReadOnly } from "./read-only.ts";
import { type Storage, SnapshotUnavailableError, copyConfState } from "./storage.ts";
import {
  type ConfChange,
  ConfChangeType,
  type ConfState,
  EMPTY,
  type Entry,
  EntryType,
  type HardState,
  type Message,
  MessageType,
  NONE,
  type NodeId,
  type ProposeResult,
  type ReadState,
  Role,
  type Snapshot,
  type SoftState,
  entrySize,
  invariant,
  msg,
} from "./types.ts";

export interface Config {
  id: NodeId;
  /**
   * Initial voters (and learners) when storage holds no configuration yet;
   * otherwise the configuration comes from storage's snapshot plus the conf
   * changes the application re-applies. A node joining an existing cluster
   * passes neither: it learns the membership from the leader.
   */
  peers?: NodeId[];
  learners?: NodeId[];
  storage: Storage;
  /** Ticks without hearing from a leader before campaigning (randomized in [e, 2e)). */
  electionTick: number;
  heartbeatTick: number;
  /** A seeded source in [0, 1): the only randomness the core uses. */
  rand: () => number;
  /** Last index the application already applied (on restart). */
  applied?: number;
  preVote?: boolean;
  checkQuorum?: boolean;
  /** Byte budget of entries in one App message (always at least one entry). */
  maxSizePerMsg?: number;
  /** Max App messages in flight per follower in Replicate state. */
  maxInflightMsgs?: number;
  maxInflightBytes?: number;
  maxCommittedSizePerReady?: number;
}

const OK: ProposeResult = { ok: true };
const NO_LEADER: ProposeResult = { ok: false, reason: "no-leader" };
const TRANSFERRING: ProposeResult = { ok: false, reason: "transferring" };
const CONF_PENDING: ProposeResult = { ok: false, reason: "conf-change-pending" };
const INVALID: ProposeResult = { ok: false, reason: "invalid" };

/** Context of a vote started by TimeoutNow: voters grant it despite their leader lease. */
export const CAMPAIGN_TRANSFER = new TextEncoder().encode("CampaignTransfer");

function isTransferCampaign(ctx: Uint8Array): boolean {
  if (ctx.byteLength !== CAMPAIGN_TRANSFER.byteLength) return false;
  for (let i = 0; i < ctx.byteLength; i++) if (ctx[i] !== CAMPAIGN_TRANSFER[i]) return false;
  return true;
}

function isVoteMsg(t: MessageType): boolean {
  return t === MessageType.Vote || t === MessageType.PreVote;
}
function isVoteRespMsg(t: MessageType): boolean {
  return t === MessageType.VoteResp || t === MessageType.PreVoteResp;
}
export function isLocalMsg(t: MessageType): boolean {
  return t === MessageType.Hup || t === MessageType.Beat || t === MessageType.CheckQuorum || t === MessageType.SnapStatus || t === MessageType.Unreachable;
}

/** Requests that travel without a term: they are forwarded as-is to the leader. */
export function isTermlessMsg(t: MessageType): boolean {
  return t === MessageType.Prop || t === MessageType.ReadIndex || t === MessageType.TransferLeader;
}

export class Raft {
  readonly id: NodeId;
  term = 0;
  vote: NodeId = NONE;
  lead: NodeId = NONE;
  role = Role.Follower;
  readonly log: RaftLog;
  /** Voters and learners (a learner's Progress says isLearner). */
  readonly prs = new Map<NodeId, Progress>();
  /** The voters of prs, kept in step with it: quorums count only these. */
  private voters: NodeId[] = [];
  private votes = new Map<NodeId, boolean>();
  /** Leader: a conf change at or below this index is not applied yet; no new one until it is. */
  pendingConfIndex = 0;
  /** Leader: the member leadership is being handed to (NONE when no transfer is under way). */
  leadTransferee: NodeId = NONE;
  /** This node applied a change removing itself (re-applied from the log after a restart). */
  private removedSelf = false;
  /**
   * A TimeoutNow arrived while committed conf changes were unapplied: campaign once they
   * are, within the ticks left here (the leader abandons a transfer after an election
   * timeout; campaigning later would depose a healthy leader).
   */
  private deferredTransferCampaign = false;
  private deferredTransferTicks = 0;
  /** Outgoing messages, drained by the node into a Ready. */
  msgs: Message[] = [];
  readStates: ReadState[] = [];

  private readonly electionTimeout: number;
  private readonly heartbeatTimeout: number;
  private randomizedElectionTimeout = 0;
  /** Follower/candidate: ticks since last leader contact or election start. Leader: since last quorum check. */
  electionElapsed = 0;
  private heartbeatElapsed = 0;
  private readonly rand: () => number;
  readonly preVote: boolean;
  readonly checkQuorum: boolean;
  private readonly maxSizePerMsg: number;
  private readonly maxInflightMsgs: number;
  private readonly maxInflightBytes: number;
  private readOnly = new ReadOnly();
  /** ReadIndex requests received before this leader committed an entry of its term. */
  private pendingReadIndex: Message[] = [];
  /** Scratch for maybeCommit, reused to avoid an allocation per acknowledgement. */
  private matchScratch: number[] = [];

  constructor(c: Config) {
    invariant(c.id !== NONE, "id must not be NONE");
    invariant(c.heartbeatTick > 0, "heartbeatTick must be > 0");
    invariant(c.electionTick > c.heartbeatTick, "electionTick must exceed heartbeatTick");
    this.id = c.id;
    this.electionTimeout = c.electionTick;
    this.heartbeatTimeout = c.heartbeatTick;
    this.rand = c.rand;
    this.preVote = c.preVote ?? false;
    this.checkQuorum = c.checkQuorum ?? false;
    this.maxSizePerMsg = c.maxSizePerMsg ?? 1024 * 1024;
    this.maxInflightMsgs = c.maxInflightMsgs ?? 256;
    this.maxInflightBytes = c.maxInflightBytes ?? Number.MAX_SAFE_INTEGER;
    this.log = new RaftLog(c.storage, c.maxCommittedSizePerReady);
    const { hardState, confState } = c.storage.initialState();
    const stored = confState.voters.length + confState.learners.length > 0;
    invariant(!(stored && (c.peers?.length || c.learners?.length)), "peers given but storage already has a configuration");
    this.switchToConfig(stored ? confState : { voters: [...new Set(c.peers ?? [])], learners: [...new Set(c.learners ?? [])] });
    // Our own snapshot without us in it: we applied our removal before it was taken.
    if (stored && !this.prs.has(this.id)) this.removedSelf = true;
    if (hardState.term !== 0 || hardState.vote !== NONE || hardState.commit !== 0) {
      invariant(
        hardState.commit >= this.log.committed && hardState.commit <= this.log.lastIndex(),
        `stored commit ${hardState.commit} outside [${this.log.committed}, ${this.log.lastIndex()}]`,
      );
      this.log.committed = hardState.commit;
      this.term = hardState.term;
      this.vote = hardState.vote;
    }
    if (c.applied) this.log.appliedTo(c.applied);
    this.becomeFollower(this.term, NONE);
  }

  private newProgress(match: number, next: number, isLearner: boolean): Progress {
    const pr = new Progress(match, next, this.maxInflightMsgs, this.maxInflightBytes);
    pr.isLearner = isLearner;
    return pr;
  }

  confState(): ConfState {
    const learners: NodeId[] = [];
    for (const [id, pr] of this.prs) if (pr.isLearner) learners.push(id);
    return { voters: this.voters.slice(), learners };
  }

  isVoter(id: NodeId): boolean {
    const pr = this.prs.get(id);
    return pr !== undefined && !pr.isLearner;
  }

  /**
   * May this node campaign? A voter of its own configuration may; a learner or
   * a joining node may not. A node that applied its own removal may too while
   * it holds entries beyond its commit index, only to finish handing over: it
   * counts votes of the new configuration alone (never its own), so any quorum
   * it wins overlaps every other one. Without this, a removed leader that lost
   * leadership while holding the longest log would refuse the survivors' votes
   * forever and could not win one itself. A removed node with nothing
   * uncommitted is never needed, and must not disturb the cluster.
   */
  promotable(): boolean {
    if (this.isVoter(this.id)) return true;
    return this.removedSelf && this.voters.length > 0 && this.log.lastIndex() > this.log.committed;
  }

  hardState(): HardState {
    return { term: this.term, vote: this.vote, commit: this.log.committed };
  }

  softState(): SoftState {
    return { lead: this.lead, role: this.role };
  }

  private quorum(): number {
    return Math.floor(this.voters.length / 2) + 1;
  }

  // ---- sending --------------------------------------------------------------

  private send(m: Message): void {
    // A forwarded TransferLeader keeps its `from`: it names the transferee.
    if (m.from === NONE) m.from = this.id;
    if (isVoteMsg(m.type) || isVoteRespMsg(m.type)) {
      // Votes carry the term being campaigned for (pre-votes: a future term), set by the caller.
      invariant(m.term !== 0, `${m.type} must carry a term`);
    } else {
      invariant(m.term === 0, `${m.type} term is set by send`);
      // Forwarded proposals, reads and transfer requests are local to the receiver: no term.
      if (!isTermlessMsg(m.type)) m.term = this.term;
    }
    this.msgs.push(m);
  }

  /**
   * Send entries to `to` if its flow control allows. With sendIfEmpty false,
   * an App without entries is not sent (used to top up a replicating follower).
   */
  private maybeSendAppend(to: NodeId, sendIfEmpty: boolean): boolean {
    const pr = this.prs.get(to);
    invariant(pr, `no progress for ${to}`);
    if (pr.isPaused()) return false;
    const prevIndex = pr.next - 1;
    const prevTerm = this.log.term(prevIndex);
    // The follower needs entries we compacted: only a snapshot can bring it up to date.
    if (prevTerm === undefined || pr.next < this.log.firstIndex()) return this.sendSnapshot(to, pr);
    const ents = this.log.entries(pr.next, this.maxSizePerMsg);
    if (ents.length === 0 && !sendIfEmpty) return false;
    this.send(msg({ type: MessageType.App, to, index: prevIndex, logTerm: prevTerm, entries: ents, commit: this.log.committed }));
    if (ents.length > 0) {
      const last = ents[ents.length - 1].index;
      if (pr.state === ProgressState.Replicate) {
        pr.optimisticUpdate(last);
        let bytes = 0;
        for (const e of ents) bytes += entrySize(e);
        pr.inflights.add(last, bytes);
      } else {
        pr.probeSent = true;
      }
    }
    return true;
  }

  private sendSnapshot(to: NodeId, pr: Progress): boolean {
    let snapshot: Snapshot;
    try {
      snapshot = this.log.snapshot();
    } catch (e) {
      // Being produced: a later heartbeat response retries.
      if (e instanceof SnapshotUnavailableError) return false;
      throw e;
    }
    invariant(snapshot.meta.index > 0, `need a snapshot for ${to} but none exists`);
    const cs = snapshot.meta.confState;
    if (!cs.voters.includes(to) && !cs.learners.includes(to)) {
      // Taken before `to` joined: it would refuse it. Wait for a newer one (see needsSnapshot()).
      return false;
    }
    invariant(snapshot.meta.index >= this.log.firstIndex() - 1, "snapshot older than the compacted log");
    this.send(msg({ type: MessageType.Snap, to, snapshot }));
    pr.becomeSnapshot(snapshot.meta.index);
    return true;
  }

  /**
   * Leader: members that need a snapshot newer than the stored one (they
   * joined after it was taken). The driver should snapshot its current state.
   */
  needsSnapshot(): NodeId[] {
    if (this.role !== Role.Leader) return [];
    const first = this.log.firstIndex();
    let cs: ConfState | undefined;
    const out: NodeId[] = [];
    for (const [id, pr] of this.prs) {
      if (id === this.id || pr.state === ProgressState.Snapshot || pr.next >= first) continue;
      try {
        cs ??= this.log.snapshot().meta.confState;
      } catch (e) {
        if (e instanceof SnapshotUnavailableError) return [];
        throw e;
      }
      if (!cs.voters.includes(id) && !cs.learners.includes(id)) out.push(id);
    }
    return out;
  }

  private sendTimeoutNow(to: NodeId): void {
    this.send(msg({ type: MessageType.TimeoutNow, to }));
  }

  private sendAppend(to: NodeId): void {
    this.maybeSendAppend(to, true);
  }

  private bcastAppend(): void {
    for (const id of this.prs.keys()) if (id !== this.id) this.sendAppend(id);
  }

  private bcastHeartbeat(context: Uint8Array = EMPTY): void {
    for (const [id, pr] of this.prs) {
      if (id === this.id) continue;
      // Never tell a follower to commit past what it is known to hold: it might hold a stale suffix.
      const commit = Math.min(pr.match, this.log.committed);
      this.send(msg({ type: MessageType.Heartbeat, to: id, commit, context }));
    }
  }

  // ---- roles ---------------------------------------------------------------

  private reset(term: number): void {
    if (this.term !== term) {
      invariant(term > this.term, `term going backwards ${this.term} -> ${term}`);
      this.term = term;
      this.vote = NONE;
    }
    this.lead = NONE;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.resetRandomizedElectionTimeout();
    this.votes.clear();
    const last = this.log.lastIndex();
    for (const [id, old] of [...this.prs]) {
      const pr = this.newProgress(0, last + 1, old.isLearner);
      if (id === this.id) pr.match = last;
      this.prs.set(id, pr);
    }
    this.readOnly = new ReadOnly();
    this.pendingReadIndex = [];
    this.leadTransferee = NONE;
    this.deferredTransferCampaign = false;
  }

  private resetRandomizedElectionTimeout(): void {
    const r = this.rand();
    invariant(r >= 0 && r < 1, `rand() must be in [0, 1), got ${r}`);
    this.randomizedElectionTimeout = this.electionTimeout + Math.floor(r * this.electionTimeout);
  }

  becomeFollower(term: number, lead: NodeId): void {
    this.reset(term);
    this.lead = lead;
    this.role = Role.Follower;
  }

  private becomePreCandidate(): void {
    invariant(this.role !== Role.Leader, "leader cannot become pre-candidate");
    // A pre-candidate changes neither term nor vote: that is the point of pre-vote.
    this.role = Role.PreCandidate;
    this.votes.clear();
    this.lead = NONE;
  }

  private becomeCandidate(): void {
    invariant(this.role !== Role.Leader, "leader cannot become candidate");
    this.reset(this.term + 1);
    this.vote = this.id;
    this.role = Role.Candidate;
  }

  private becomeLeader(): void {
    invariant(this.role === Role.Candidate, `only a candidate can become leader (was ${this.role})`);
    this.reset(this.term);
    this.lead = this.id;
    this.role = Role.Leader;
    this.prs.get(this.id)?.becomeReplicate();
    // An entry of the new term lets earlier entries commit (§5.4.2) and ReadIndex start.
    this.appendEntries([{ term: 0, index: 0, type: EntryType.Normal, data: EMPTY }]);
    // No membership change until everything in the log so far, our empty entry included, is
    // applied: a change proposed earlier by an old leader may still be in flight (the
    // single-server-change bug Ongaro described in 2015).
    this.pendingConfIndex = this.log.lastIndex();
    if (!this.isVoter(this.id)) this.handOver(); // elected only to finish a removal
  }

  private appendEntries(es: Entry[]): void {
    const last = this.log.lastIndex();
    const stamped: Entry[] = new Array(es.length);
    for (let i = 0; i < es.length; i++) {
      stamped[i] = { term: this.term, index: last + 1 + i, type: es[i].type, data: es[i].data };
    }
    const li = this.log.append(stamped);
    this.prs.get(this.id)?.maybeUpdate(li);
    // A single-node cluster commits at once.
    this.maybeCommit();
  }

  /** Commit the highest index held by a quorum of voters, if it belongs to the current term. */
  private maybeCommit(): boolean {
    const n = this.voters.length;
    if (n === 0) return false;
    const m = this.matchScratch;
    m.length = n;
    for (let i = 0; i < n; i++) m[i] = this.prs.get(this.voters[i])!.match;
    // Sort descending (tiny arrays: insertion sort, no allocation, no comparator calls).
    for (let i = 1; i < n; i++) {
      const v = m[i];
      let j = i - 1;
      while (j >= 0 && m[j] < v) {
        m[j + 1] = m[j];
        j--;
      }
      m[j + 1] = v;
    }
    return this.log.maybeCommit(m[this.quorum() - 1], this.term);
  }

  private campaign(pre: boolean, transfer = false): void {
    let term: number;
    let type: MessageType;
    if (pre) {
      this.becomePreCandidate();
      type = MessageType.PreVote;
      term = this.term + 1;
    } else {
      this.becomeCandidate();
      type = MessageType.Vote;
      term = this.term;
    }
    if (this.poll(this.id, true) === "won") {
      // Single voter: no one to ask.
      if (pre) this.campaign(false);
      else this.becomeLeader();
      return;
    }
    const index = this.log.lastIndex();
    const logTerm = this.log.lastTerm();
    const context = transfer ? CAMPAIGN_TRANSFER : EMPTY;
    for (const id of this.voters) {
      if (id === this.id) continue;
      this.send(msg({ type, to: id, term, index, logTerm, context }));
    }
  }

  /**
   * May this node start an election now? Not if it cannot vote, nor while it
   * has committed conf changes it has not applied (its configuration is stale).
   */
  private canCampaign(): boolean {
    if (!this.promotable()) return false;
    if (this.log.committed > this.log.applied) {
      const lo = Math.max(this.log.applied + 1, this.log.firstIndex());
      for (const e of this.log.slice(lo, this.log.committed + 1, Number.MAX_SAFE_INTEGER)) {
        if (e.type === EntryType.ConfChange) return false;
      }
    }
    return true;
  }

  private poll(id: NodeId, granted: boolean): "won" | "lost" | "pending" {
    if (!this.votes.has(id)) this.votes.set(id, granted);
    let yes = 0;
    let no = 0;
    for (const [voter, v] of this.votes) {
      if (!this.isVoter(voter)) continue; // a learner's or stranger's vote does not count
      v ? yes++ : no++;
    }
    const q = this.quorum();
    if (yes >= q) return "won";
    if (no > this.voters.length - q) return "lost";
    return "pending";
  }

  /** Leader: has a quorum been heard from during the last election timeout? Resets the marks. */
  private quorumActive(): boolean {
    let active = 0;
    for (const [id, pr] of this.prs) {
      if (!pr.isLearner && (id === this.id || pr.recentActive)) active++;
      if (id !== this.id) pr.recentActive = false;
    }
    return active >= this.quorum();
  }

  // ---- time ----------------------------------------------------------------

  tick(): void {
    if (this.deferredTransferCampaign && --this.deferredTransferTicks <= 0) this.deferredTransferCampaign = false;
    if (this.role === Role.Leader) this.tickHeartbeat();
    else this.tickElection();
  }

  private tickElection(): void {
    this.electionElapsed++;
    // A node that cannot campaign keeps counting, so its leader lease runs out and it
    // grants votes again when its leader is gone (else a learner could block an election).
    if (this.promotable() && this.electionElapsed >= this.randomizedElectionTimeout) {
      this.electionElapsed = 0;
      this.step(msg({ type: MessageType.Hup, from: this.id }));
    }
  }

  private tickHeartbeat(): void {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    if (this.electionElapsed >= this.electionTimeout) {
      this.electionElapsed = 0;
      if (this.checkQuorum) {
        this.step(msg({ type: MessageType.CheckQuorum, from: this.id }));
        if (this.role !== Role.Leader) return;
      }
      // A transfer that did not finish within an election timeout is abandoned: lead on
      // (or, if this leader was removed, try handing over again).
      if (this.leadTransferee !== NONE) this.leadTransferee = NONE;
      if (!this.isVoter(this.id)) this.handOver();
    }
    if (this.heartbeatElapsed >= this.heartbeatTimeout) {
      this.heartbeatElapsed = 0;
      this.step(msg({ type: MessageType.Beat, from: this.id }));
    }
  }

  // ---- input ---------------------------------------------------------------

  /** Feed one message. Returns a failure only for a proposal or read that had to be dropped. */
  step(m: Message): ProposeResult {
    if (m.term > this.term) {
      if (isVoteMsg(m.type)) {
        // Lease (check-quorum): while we recently heard from a live leader, a vote
        // request is from a disruptive node (e.g. one just rejoining) and is ignored.
        // A campaign started by TimeoutNow comes from the leader's own wish: grant it.
        const inLease = this.checkQuorum && this.lead !== NONE && this.electionElapsed < this.electionTimeout;
        if (inLease && !isTransferCampaign(m.context)) return OK;
      }
      if (m.type === MessageType.PreVote) {
        // A pre-vote for a future term never changes our term.
      } else if (m.type === MessageType.PreVoteResp && !m.reject) {
        // Granted pre-votes carry the future term; we adopt it only by campaigning.
      } else if (m.type === MessageType.App || m.type === MessageType.Heartbeat || m.type === MessageType.Snap) {
        this.becomeFollower(m.term, m.from);
      } else {
        this.becomeFollower(m.term, NONE);
      }
    } else if (m.term !== 0 && m.term < this.term) {
      if ((this.checkQuorum || this.preVote) && (m.type === MessageType.App || m.type === MessageType.Heartbeat)) {
        // A stale leader (or one cut off while we moved on): tell it our term so it steps
        // down. Without this, a node whose term rose in a partition could never rejoin a
        // leader that ignores it under check-quorum/pre-vote.
        this.send(msg({ type: MessageType.AppResp, to: m.from }));
      } else if (m.type === MessageType.PreVote) {
        this.send(msg({ type: MessageType.PreVoteResp, to: m.from, term: this.term, reject: true }));
      }
      return OK;
    }

    switch (m.type) {
      case MessageType.Hup:
        if (this.role !== Role.Leader && this.canCampaign()) this.campaign(this.preVote);
        return OK;
      case MessageType.Vote:
      case MessageType.PreVote: {
        const canVote = this.vote === m.from || (this.vote === NONE && this.lead === NONE) || (m.type === MessageType.PreVote && m.term > this.term);
        const respType = m.type === MessageType.Vote ? MessageType.VoteResp : MessageType.PreVoteResp;
        if (canVote && this.log.isUpToDate(m.index, m.logTerm)) {
          // Answer with the request's term so a pre-candidate can count it.
          this.send(msg({ type: respType, to: m.from, term: m.term }));
          if (m.type === MessageType.Vote) {
            this.electionElapsed = 0;
            this.vote = m.from;
          }
        } else {
          this.send(msg({ type: respType, to: m.from, term: this.term, reject: true }));
        }
        return OK;
      }
    }
    switch (this.role) {
      case Role.Leader:
        return this.stepLeader(m);
      case Role.Candidate:
      case Role.PreCandidate:
        return this.stepCandidate(m);
      case Role.Follower:
        return this.stepFollower(m);
    }
  }

  private stepLeader(m: Message): ProposeResult {
    switch (m.type) {
      case MessageType.Beat:
        this.bcastHeartbeat();
        return OK;
      case MessageType.CheckQuorum:
        if (!this.quorumActive()) this.becomeFollower(this.term, NONE);
        return OK;
      case MessageType.Prop: {
        invariant(m.entries.length > 0, "empty proposal");
        // Removed from the configuration while leading: only handing over now.
        if (!this.isVoter(this.id)) return NO_LEADER;
        if (this.leadTransferee !== NONE) return TRANSFERRING;
        let ents = m.entries;
        // A local caller's batch is refused whole, before anything is recorded.
        let confs = 0;
        for (const e of ents) if (e.type === EntryType.ConfChange) confs++;
        if (m.from === this.id && confs > 0 && (this.pendingConfIndex > this.log.applied || confs > 1)) return CONF_PENDING;
        for (let i = 0; i < ents.length; i++) {
          if (ents[i].type !== EntryType.ConfChange) continue;
          if (this.pendingConfIndex > this.log.applied) {
            // One change at a time. A local caller hears why; a forwarded change becomes an
            // empty entry, so the log position is used and the forwarder's waiter times out.
            if (m.from === this.id) return CONF_PENDING;
            if (ents === m.entries) ents = ents.slice();
            ents[i] = { term: 0, index: 0, type: EntryType.Normal, data: EMPTY };
          } else {
            this.pendingConfIndex = this.log.lastIndex() + i + 1;
          }
        }
        this.appendEntries(ents);
        this.bcastAppend();
        return OK;
      }
      case MessageType.TransferLeader:
        return this.startTransfer(m.from);
      case MessageType.ReadIndex:
        if (!this.isVoter(this.id)) return NO_LEADER;
        if (this.voters.length === 1) {
          this.answerReadIndex(m, this.log.committed);
          return OK;
        }
        // Our commit index is only known to be current once an entry of our term committed.
        if (this.log.term(this.log.committed) !== this.term) {
          this.pendingReadIndex.push(m);
          return OK;
        }
        this.readOnly.add(this.log.committed, m);
        this.readOnly.recvAck(this.id, m.context);
        this.bcastHeartbeat(m.context);
        return OK;
    }

    const pr = this.prs.get(m.from);
    if (!pr) return OK; // not (or no longer) a member: ignore
    switch (m.type) {
      case MessageType.AppResp: {
        pr.recentActive = true;
        if (m.reject) {
          // The follower's hint points at the last index where its term is <= m.logTerm;
          // skip further back past every entry of ours with a larger term.
          let probe = m.rejectHint;
          if (m.logTerm > 0) probe = this.log.findConflictByTerm(m.rejectHint, m.logTerm);
          if (pr.maybeDecrTo(m.index, probe)) {
            if (pr.state === ProgressState.Replicate) pr.becomeProbe();
            this.sendAppend(m.from);
          }
          return OK;
        }
        const wasPaused = pr.isPaused();
        if (pr.maybeUpdate(m.index)) {
          if (pr.state === ProgressState.Probe) pr.becomeReplicate();
          else if (pr.state === ProgressState.Snapshot) {
            // Installed the snapshot (or caught up past it): stream from here.
            if (pr.match >= pr.pendingSnapshot) pr.becomeReplicate();
          } else pr.inflights.freeLE(m.index);
          if (this.maybeCommit()) {
            this.releasePendingReadIndex();
            this.bcastAppend();
          } else if (wasPaused) {
            this.sendAppend(m.from);
          }
          // Stream whatever else the window allows.
          while (this.maybeSendAppend(m.from, false)) {}
          if (m.from === this.leadTransferee && pr.match === this.log.lastIndex()) this.sendTimeoutNow(m.from);
        }
        return OK;
      }
      case MessageType.SnapStatus:
        if (pr.state === ProgressState.Snapshot) pr.snapshotDone(!m.reject);
        return OK;
      case MessageType.Unreachable:
        // Messages may have been lost: stop streaming optimistically and probe instead.
        if (pr.state === ProgressState.Replicate) pr.becomeProbe();
        return OK;
      case MessageType.HeartbeatResp: {
        pr.recentActive = true;
        pr.probeSent = false;
        // A full window may be stuck on lost messages: free a slot so replication retries.
        if (pr.state === ProgressState.Replicate && pr.inflights.full()) pr.inflights.freeFirst();
        if (pr.match < this.log.lastIndex()) this.sendAppend(m.from);
        if (m.context.byteLength === 0) return OK;
        let acks = 0;
        for (const id of this.readOnly.recvAck(m.from, m.context)) if (this.isVoter(id)) acks++;
        if (acks < this.quorum()) return OK;
        for (const st of this.readOnly.advance(m.context)) this.answerReadIndex(st.req, st.index);
        return OK;
      }
    }
    return OK;
  }

  /** Hand leadership to `to` once its log is complete; proposals pause meanwhile. */
  private startTransfer(to: NodeId): ProposeResult {
    if (!this.isVoter(to)) return INVALID; // learners and strangers cannot lead
    if (to === this.id) return OK; // already leading
    if (this.leadTransferee === to) return OK; // already under way
    this.leadTransferee = to;
    // The transfer must finish within one election timeout, counted from now.
    this.electionElapsed = 0;
    if (this.prs.get(to)!.match === this.log.lastIndex()) this.sendTimeoutNow(to);
    else this.sendAppend(to);
    return OK;
  }

  private releasePendingReadIndex(): void {
    if (this.pendingReadIndex.length === 0 || this.log.term(this.log.committed) !== this.term) return;
    const ms = this.pendingReadIndex;
    this.pendingReadIndex = [];
    for (const m of ms) this.step(m);
  }

  private answerReadIndex(req: Message, index: number): void {
    if (req.from === NONE || req.from === this.id) {
      this.readStates.push({ index, context: req.context });
    } else {
      this.send(msg({ type: MessageType.ReadIndexResp, to: req.from, index, context: req.context }));
    }
  }

  private stepCandidate(m: Message): ProposeResult {
    const myResp = this.role === Role.PreCandidate ? MessageType.PreVoteResp : MessageType.VoteResp;
    switch (m.type) {
      case MessageType.Prop:
      case MessageType.ReadIndex:
      case MessageType.TransferLeader:
        return NO_LEADER;
      case MessageType.App:
        this.becomeFollower(m.term, m.from);
        this.handleAppend(m);
        return OK;
      case MessageType.Snap:
        this.becomeFollower(m.term, m.from);
        this.handleSnapshot(m);
        return OK;
      case MessageType.Heartbeat:
        this.becomeFollower(m.term, m.from);
        this.handleHeartbeat(m);
        return OK;
      case myResp: {
        const r = this.poll(m.from, !m.reject);
        if (r === "won") {
          if (this.role === Role.PreCandidate) {
            this.campaign(false);
          } else {
            this.becomeLeader();
            this.bcastAppend();
          }
        } else if (r === "lost") {
          // A rejected pre-candidate keeps its term; a candidate keeps its incremented term.
          this.becomeFollower(this.term, NONE);
        }
        return OK;
      }
    }
    return OK;
  }

  private stepFollower(m: Message): ProposeResult {
    switch (m.type) {
      case MessageType.Prop:
      case MessageType.ReadIndex:
      case MessageType.TransferLeader:
        if (this.lead === NONE) return NO_LEADER;
        this.send({ ...m, to: this.lead, term: 0 });
        return OK;
      case MessageType.Snap:
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleSnapshot(m);
        return OK;
      case MessageType.TimeoutNow:
        // The leader hands over: campaign at once, skipping pre-vote (the leader asked for it).
        // The same message often carries the commit of the removal that caused it: then
        // campaign as soon as that is applied, with the configuration it brings.
        if (this.canCampaign()) this.campaign(false, true);
        else if (this.promotable() || this.log.committed > this.log.applied) {
          this.deferredTransferCampaign = true;
          this.deferredTransferTicks = this.electionTimeout;
        }
        return OK;
      case MessageType.App:
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleAppend(m);
        return OK;
      case MessageType.Heartbeat:
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleHeartbeat(m);
        return OK;
      case MessageType.ReadIndexResp:
        this.readStates.push({ index: m.index, context: m.context });
        return OK;
    }
    return OK;
  }

  private handleAppend(m: Message): void {
    if (m.index < this.log.committed) {
      // Everything up to our commit index matches any leader's log; say where we are.
      this.send(msg({ type: MessageType.AppResp, to: m.from, index: this.log.committed }));
      return;
    }
    const lastNew = this.log.maybeAppend(m.index, m.logTerm, m.commit, m.entries);
    if (lastNew !== undefined) {
      this.send(msg({ type: MessageType.AppResp, to: m.from, index: lastNew }));
      return;
    }
    // Reject with a hint: the last index whose term is <= the leader's term at m.index,
    // so the leader can skip a whole run of conflicting entries in one round trip.
    const hint = this.log.findConflictByTerm(Math.min(m.index, this.log.lastIndex()), m.logTerm);
    const hintTerm = this.log.term(hint) ?? 0;
    this.send(msg({ type: MessageType.AppResp, to: m.from, index: m.index, reject: true, rejectHint: hint, logTerm: hintTerm }));
  }

  private handleSnapshot(m: Message): void {
    const snap = m.snapshot;
    invariant(snap !== undefined, "Snap message without a snapshot");
    if (this.restore(snap)) {
      this.send(msg({ type: MessageType.AppResp, to: m.from, index: this.log.lastIndex() }));
    } else {
      this.send(msg({ type: MessageType.AppResp, to: m.from, index: this.log.committed }));
    }
  }

  /** Install a leader's snapshot; false when it brings nothing new. */
  private restore(snap: Snapshot): boolean {
    invariant(this.role === Role.Follower, `restore as ${this.role}`);
    const { index, term, confState } = snap.meta;
    if (index <= this.log.committed) return false;
    if (!confState.voters.includes(this.id) && !confState.learners.includes(this.id)) {
      // Not for us (a stale or misrouted snapshot): installing it would drop us from our own config.
      return false;
    }
    if (this.log.matchTerm(index, term)) {
      // We hold the entry it ends at: just commit up to it, keep the log after it.
      this.log.commitTo(index);
      return false;
    }
    this.log.restore(snap);
    this.switchToConfig(copyConfState(confState), true);
    return true;
  }

  /** The driver advanced the applied index: a deferred transfer campaign may start now. */
  onApplied(): void {
    if (!this.deferredTransferCampaign || this.role === Role.Leader) return;
    if (this.log.applied < this.log.committed) return;
    this.deferredTransferCampaign = false;
    if (this.canCampaign()) this.campaign(false, true);
  }

  /**
   * The application applied a committed ConfChange entry: switch to the new
   * configuration. Returns it, for the application to persist with its state.
   */
  applyConfChange(cc: ConfChange): ConfState {
    const next = applyChange(this.confState(), cc);
    if (cc.nodeId === this.id && cc.type !== ConfChangeType.UpdateNode) this.removedSelf = cc.type === ConfChangeType.RemoveNode;
    this.switchToConfig(next);
    return next;
  }

  private switchToConfig(cs: ConfState, fresh = false): void {
    invariant(
      cs.voters.every((v) => !cs.learners.includes(v)),
      "an id is both voter and learner",
    );
    if (fresh) this.prs.clear();
    const last = this.log.lastIndex();
    const keep = new Set<NodeId>([...cs.voters, ...cs.learners]);
    for (const id of [...this.prs.keys()]) if (!keep.has(id)) this.prs.delete(id);
    for (const [ids, learner] of [
      [cs.voters, false],
      [cs.learners, true],
    ] as const) {
      for (const id of ids) {
        let pr = this.prs.get(id);
        if (!pr) {
          pr = this.newProgress(0, last + 1, learner);
          if (id === this.id) pr.match = last;
          this.prs.set(id, pr);
        }
        pr.isLearner = learner; // a promotion keeps the learner's progress
      }
    }
    this.voters = cs.voters.slice();
    if (this.role !== Role.Leader) return;
    if (!this.isVoter(this.id)) {
      this.handOver();
      return;
    }
    if (this.leadTransferee !== NONE && !this.isVoter(this.leadTransferee)) this.leadTransferee = NONE;
    // The quorum changed: the commit index may move; new members need entries.
    if (this.maybeCommit()) this.bcastAppend();
    else for (const id of this.prs.keys()) if (id !== this.id) this.maybeSendAppend(id, false);
  }

  /**
   * This leader was removed. It keeps leading only to hand over: it refuses
   * proposals and reads, keeps replicating (so the others learn the removal is
   * committed), and asks the most caught-up voter to campaign at once
   * (TimeoutNow, sent as soon as that voter holds the whole log). It steps down
   * when the new leader's term reaches it. Stepping down at once instead would
   * leave a two-member cluster stuck if the last messages were lost: the
   * survivor would still count the removed node in its quorum.
   */
  private handOver(): void {
    let best: NodeId = NONE;
    let bestMatch = -1;
    for (const id of this.voters) {
      const pr = this.prs.get(id)!;
      if (pr.match > bestMatch) {
        best = id;
        bestMatch = pr.match;
      }
    }
    if (best === NONE) return;
    this.leadTransferee = best;
    if (bestMatch === this.log.lastIndex()) this.sendTimeoutNow(best);
    else this.sendAppend(best);
  }

  private handleHeartbeat(m: Message): void {
    this.log.commitTo(m.commit);
    this.send(msg({ type: MessageType.HeartbeatResp, to: m.from, context: m.context }));
  }
}
