// The Raft state machine: pure and deterministic. Input arrives only through
// tick() and step(); output leaves only through `msgs`, `readStates` and the log.
import { RaftLog } from "./log.ts";
import { Progress, ProgressState } from "./progress.ts";
import { ReadOnly } from "./read-only.ts";
import type { Storage } from "./storage.ts";
import {
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
  type SoftState,
  entrySize,
  invariant,
  msg,
} from "./types.ts";

export interface Config {
  id: NodeId;
  /** Voting members, including this node. TODO(membership): from a ConfState in storage. */
  peers: NodeId[];
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

function isVoteMsg(t: MessageType): boolean {
  return t === MessageType.Vote || t === MessageType.PreVote;
}
function isVoteRespMsg(t: MessageType): boolean {
  return t === MessageType.VoteResp || t === MessageType.PreVoteResp;
}
export function isLocalMsg(t: MessageType): boolean {
  return t === MessageType.Hup || t === MessageType.Beat || t === MessageType.CheckQuorum;
}

export class Raft {
  readonly id: NodeId;
  term = 0;
  vote: NodeId = NONE;
  lead: NodeId = NONE;
  role = Role.Follower;
  readonly log: RaftLog;
  readonly prs = new Map<NodeId, Progress>();
  private votes = new Map<NodeId, boolean>();
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

  constructor(c: Config) {
    invariant(c.id !== NONE, "id must not be NONE");
    invariant(c.heartbeatTick > 0, "heartbeatTick must be > 0");
    invariant(c.electionTick > c.heartbeatTick, "electionTick must exceed heartbeatTick");
    invariant(c.peers.includes(c.id), "peers must include self");
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
    for (const p of new Set(c.peers)) this.prs.set(p, this.newProgress(0, 1));
    const { hardState } = c.storage.initialState();
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

  private newProgress(match: number, next: number): Progress {
    return new Progress(match, next, this.maxInflightMsgs, this.maxInflightBytes);
  }

  hardState(): HardState {
    return { term: this.term, vote: this.vote, commit: this.log.committed };
  }

  softState(): SoftState {
    return { lead: this.lead, role: this.role };
  }

  private quorum(): number {
    return Math.floor(this.prs.size / 2) + 1;
  }

  // ---- sending --------------------------------------------------------------

  private send(m: Message): void {
    m.from = this.id;
    if (isVoteMsg(m.type) || isVoteRespMsg(m.type)) {
      // Votes carry the term being campaigned for (pre-votes: a future term), set by the caller.
      invariant(m.term !== 0, `${m.type} must carry a term`);
    } else {
      invariant(m.term === 0, `${m.type} term is set by send`);
      // Forwarded proposals and reads are local to the receiver: they carry no term.
      if (m.type !== MessageType.Prop && m.type !== MessageType.ReadIndex) m.term = this.term;
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
    // TODO(snapshots): when prevTerm is compacted, send a snapshot instead.
    invariant(prevTerm !== undefined, `term of ${prevIndex} unavailable for ${to}: snapshots not implemented`);
    const ents = this.log.entries(pr.next, this.maxSizePerMsg);
    if (ents.length === 0 && !sendIfEmpty) return false;
    this.send(
      msg({ type: MessageType.App, to, index: prevIndex, logTerm: prevTerm, entries: ents, commit: this.log.committed }),
    );
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
    for (const id of [...this.prs.keys()]) {
      const pr = this.newProgress(0, last + 1);
      if (id === this.id) pr.match = last;
      this.prs.set(id, pr);
    }
    this.readOnly = new ReadOnly();
    this.pendingReadIndex = [];
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
    this.prs.get(this.id)!.becomeReplicate();
    // An entry of the new term lets earlier entries commit (§5.4.2) and ReadIndex start.
    this.appendEntries([{ term: 0, index: 0, type: EntryType.Normal, data: EMPTY }]);
  }

  private appendEntries(es: Entry[]): void {
    const last = this.log.lastIndex();
    const stamped = es.map((e, i) => ({ ...e, term: this.term, index: last + 1 + i }));
    const li = this.log.append(stamped);
    this.prs.get(this.id)!.maybeUpdate(li);
    // A single-node cluster commits at once.
    this.maybeCommit();
  }

  /** Commit the highest index held by a quorum, if it belongs to the current term. */
  private maybeCommit(): boolean {
    const matches = [...this.prs.values()].map((p) => p.match).sort((a, b) => b - a);
    const mci = matches[this.quorum() - 1];
    return this.log.maybeCommit(mci, this.term);
  }

  private campaign(pre: boolean): void {
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
    for (const id of this.prs.keys()) {
      if (id === this.id) continue;
      this.send(msg({ type, to: id, term, index, logTerm }));
    }
  }

  private poll(id: NodeId, granted: boolean): "won" | "lost" | "pending" {
    if (!this.votes.has(id)) this.votes.set(id, granted);
    let yes = 0;
    let no = 0;
    for (const v of this.votes.values()) v ? yes++ : no++;
    const q = this.quorum();
    if (yes >= q) return "won";
    if (no > this.prs.size - q) return "lost";
    return "pending";
  }

  /** Leader: has a quorum been heard from during the last election timeout? Resets the marks. */
  private quorumActive(): boolean {
    let active = 0;
    for (const [id, pr] of this.prs) {
      if (id === this.id || pr.recentActive) active++;
      if (id !== this.id) pr.recentActive = false;
    }
    return active >= this.quorum();
  }

  // ---- time ----------------------------------------------------------------

  tick(): void {
    if (this.role === Role.Leader) this.tickHeartbeat();
    else this.tickElection();
  }

  private tickElection(): void {
    this.electionElapsed++;
    if (this.electionElapsed >= this.randomizedElectionTimeout) {
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
        const inLease = this.checkQuorum && this.lead !== NONE && this.electionElapsed < this.electionTimeout;
        if (inLease) return OK;
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
        if (this.role !== Role.Leader) this.campaign(this.preVote);
        return OK;
      case MessageType.Vote:
      case MessageType.PreVote: {
        const canVote =
          this.vote === m.from ||
          (this.vote === NONE && this.lead === NONE) ||
          (m.type === MessageType.PreVote && m.term > this.term);
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
      case MessageType.Prop:
        invariant(m.entries.length > 0, "empty proposal");
        // TODO(transfer): drop while a leadership transfer is in progress.
        this.appendEntries(m.entries);
        this.bcastAppend();
        return OK;
      case MessageType.ReadIndex:
        if (this.prs.size === 1) {
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
    if (!pr) return OK; // not a member (TODO(membership)): ignore
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
          else pr.inflights.freeLE(m.index);
          if (this.maybeCommit()) {
            this.releasePendingReadIndex();
            this.bcastAppend();
          } else if (wasPaused) {
            this.sendAppend(m.from);
          }
          // Stream whatever else the window allows.
          while (this.maybeSendAppend(m.from, false)) {}
        }
        return OK;
      }
      case MessageType.HeartbeatResp: {
        pr.recentActive = true;
        pr.probeSent = false;
        // A full window may be stuck on lost messages: free a slot so replication retries.
        if (pr.state === ProgressState.Replicate && pr.inflights.full()) pr.inflights.freeFirst();
        if (pr.match < this.log.lastIndex()) this.sendAppend(m.from);
        if (m.context.byteLength === 0) return OK;
        if (this.readOnly.recvAck(m.from, m.context).size < this.quorum()) return OK;
        for (const st of this.readOnly.advance(m.context)) this.answerReadIndex(st.req, st.index);
        return OK;
      }
    }
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
        return NO_LEADER;
      case MessageType.App:
        this.becomeFollower(m.term, m.from);
        this.handleAppend(m);
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
        if (this.lead === NONE) return NO_LEADER;
        this.send({ ...m, to: this.lead, term: 0 });
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
    this.send(
      msg({ type: MessageType.AppResp, to: m.from, index: m.index, reject: true, rejectHint: hint, logTerm: hintTerm }),
    );
  }

  private handleHeartbeat(m: Message): void {
    this.log.commitTo(m.commit);
    this.send(msg({ type: MessageType.HeartbeatResp, to: m.from, context: m.context }));
  }
}
