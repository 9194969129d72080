// RawNode: the driver-facing wrapper. The driver loop is:
//   tick()/step()/propose()/readIndex()  ...  rd = ready()
//   install rd.snapshot (if any)  ->  persist rd.hardState + rd.entries  ->  send rd.messages
//   ->  apply rd.committedEntries (ConfChange entries: applyConfChange)  ->  advance()
import { encodeConfChange } from "./confchange.ts";
import { Raft, type Config, isLocalMsg, isTermlessMsg } from "./raft.ts";
import {
  type ConfChange,
  type ConfState,
  EMPTY,
  type HardState,
  type Message,
  MessageType,
  type ProposeResult,
  type Ready,
  type NodeId,
  type SoftState,
  EntryType,
  hardStateEqual,
  invariant,
  msg,
} from "./types.ts";

export class RawNode {
  readonly raft: Raft;
  private prevSoft: SoftState;
  private prevHard: HardState;
  /** The Ready handed out and not yet advanced. */
  private pending: Ready | undefined;

  constructor(config: Config) {
    this.raft = new Raft(config);
    this.prevSoft = this.raft.softState();
    // What storage already holds counts as persisted: no need to report it again.
    this.prevHard = config.storage.initialState().hardState;
  }

  tick(): void {
    this.raft.tick();
  }

  /** Start an election now (tests, or an operator). */
  campaign(): void {
    this.raft.step(msg({ type: MessageType.Hup, from: this.raft.id }));
  }

  propose(data: Uint8Array): ProposeResult {
    return this.raft.step(
      msg({
        type: MessageType.Prop,
        from: this.raft.id,
        entries: [{ term: 0, index: 0, type: EntryType.Normal, data }],
      }),
    );
  }

  /**
   * Propose a membership change. It takes effect on each node when that node
   * applies the entry and calls applyConfChange(); one change at a time.
   */
  proposeConfChange(cc: ConfChange): ProposeResult {
    return this.raft.step(
      msg({
        type: MessageType.Prop,
        from: this.raft.id,
        entries: [{ term: 0, index: 0, type: EntryType.ConfChange, data: encodeConfChange(cc) }],
      }),
    );
  }

  /** Call when applying a committed ConfChange entry; persist the result with the applied state. */
  applyConfChange(cc: ConfChange): ConfState {
    return this.raft.applyConfChange(cc);
  }

  /**
   * Ask the leader (this node, or the leader a follower knows) to hand
   * leadership to `to`. Proposals are refused until the transfer ends, which is
   * at most one election timeout later.
   */
  transferLeader(to: NodeId): ProposeResult {
    return this.raft.step(msg({ type: MessageType.TransferLeader, from: to }));
  }

  /** The transport finished (ok) or failed to send a snapshot to `id`. */
  reportSnapshot(id: NodeId, ok: boolean): void {
    this.raft.step(msg({ type: MessageType.SnapStatus, from: id, reject: !ok }));
  }

  /** The transport could not reach `id`: messages to it may have been lost. */
  reportUnreachable(id: NodeId): void {
    this.raft.step(msg({ type: MessageType.Unreachable, from: id }));
  }

  /**
   * Ask for a linearizable read point. The answer comes later as a ReadState
   * with the same context (which should be unique per request).
   */
  readIndex(context: Uint8Array): ProposeResult {
    invariant(context.byteLength > 0, "readIndex context must not be empty");
    return this.raft.step(msg({ type: MessageType.ReadIndex, from: this.raft.id, context }));
  }

  /** Deliver a message from a peer. Local message types from the network are refused. */
  step(m: Message): void {
    if (isLocalMsg(m.type)) return;
    if (!isTermlessMsg(m.type) && m.term === 0) return;
    this.raft.step(m);
  }

  hasReady(): boolean {
    const r = this.raft;
    const soft = r.softState();
    if (soft.lead !== this.prevSoft.lead || soft.role !== this.prevSoft.role) return true;
    if (!hardStateEqual(r.hardState(), this.prevHard)) return true;
    return r.log.unstable.snapshot !== undefined || r.log.unstableEntries().length > 0 || r.msgs.length > 0 || r.readStates.length > 0 || r.log.hasNextEnts();
  }

  /** The next batch of work, or undefined when there is none. Call advance() after handling it. */
  ready(): Ready | undefined {
    invariant(this.pending === undefined, "ready() called twice without advance()");
    if (!this.hasReady()) return undefined;
    const r = this.raft;
    const rd: Ready = {
      entries: r.log.unstableEntries(),
      committedEntries: r.log.nextEnts(),
      messages: r.msgs,
      readStates: r.readStates,
    };
    if (r.log.unstable.snapshot) rd.snapshot = r.log.unstable.snapshot;
    const soft = r.softState();
    if (soft.lead !== this.prevSoft.lead || soft.role !== this.prevSoft.role) {
      rd.softState = soft;
      this.prevSoft = soft;
    }
    const hard = r.hardState();
    if (!hardStateEqual(hard, this.prevHard)) rd.hardState = hard;
    // Messages and read states belong to this Ready alone.
    r.msgs = [];
    r.readStates = [];
    this.pending = rd;
    return rd;
  }

  /** The driver persisted, sent and applied everything in the last Ready. */
  advance(): void {
    const rd = this.pending;
    invariant(rd !== undefined, "advance() without ready()");
    this.pending = undefined;
    if (rd.hardState) this.prevHard = rd.hardState;
    if (rd.snapshot) {
      const idx = rd.snapshot.meta.index;
      invariant(this.raft.log.storage.snapshot().meta.index >= idx, "advance() before the Ready's snapshot was installed");
      this.raft.log.stableSnapTo(idx);
      this.raft.log.appliedTo(idx);
    }
    const ents = rd.entries;
    if (ents.length > 0) {
      const last = ents[ents.length - 1];
      // Forgetting entries that storage does not hold would silently lose them.
      invariant(this.raft.log.storage.lastIndex() >= last.index, "advance() before the Ready's entries were persisted");
      this.raft.log.stableTo(last.index, last.term);
    }
    const ce = rd.committedEntries;
    if (ce.length > 0) this.raft.log.appliedTo(ce[ce.length - 1].index);
    this.raft.onApplied();
  }
}
