// Safety invariants checked by the simulator after every action. Each check
// throws with a description; the simulator adds the seed so the run replays.
import type { Raft } from "../raft.ts";
import { type Entry, type HardState, type NodeId, Role, type Snapshot } from "../types.ts";

const dec = new TextDecoder();
const show = (e: Entry) => `${e.term}:${dec.decode(e.data)}`;

export class Checker {
  /** term -> the one leader ever seen in it (Election Safety). */
  private leaders = new Map<number, NodeId>();
  /** "index:term" -> entry identity and its predecessor's term (Log Matching, by induction). */
  private entries = new Map<string, { data: string; prevTerm: number }>();
  /** index -> term of the entry committed there, as seen by anyone (State Machine Safety). */
  readonly committed = new Map<number, number>();
  /** index -> entry applied there by anyone. */
  readonly applied = new Map<number, string>();
  /** index -> digest of the application's state right after applying it (snapshots must match). */
  private stateAt = new Map<number, string>();
  maxCommitted = 0;

  leaderTerms(): number {
    return this.leaders.size;
  }

  fail(what: string): never {
    throw new Error(`invariant: ${what}`);
  }

  /** The bootstrap entries every initial member starts with: committed from the outset. */
  bootstrap(ents: Entry[]): void {
    for (const e of ents) {
      this.committed.set(e.index, e.term);
      this.entries.set(`${e.index}:${e.term}`, { data: dec.decode(e.data), prevTerm: e.index === 1 ? 0 : e.term });
    }
    this.maxCommitted = Math.max(this.maxCommitted, ents.length);
  }

  /** Call after every action for each live node. */
  observe(id: NodeId, r: Raft): void {
    if (r.role !== Role.Leader) return;
    const seen = this.leaders.get(r.term);
    if (seen === undefined) {
      this.leaders.set(r.term, id);
      this.checkLeaderCompleteness(id, r);
    } else if (seen !== id) {
      this.fail(`two leaders in term ${r.term}: ${seen} and ${id}`);
    }
  }

  /** A new leader's log must hold every entry committed before it was elected. */
  private checkLeaderCompleteness(id: NodeId, r: Raft): void {
    const covered = r.log.firstIndex() - 1; // below: compacted into the leader's snapshot
    for (const [i, t] of this.committed) {
      if (i < covered) continue;
      if (r.log.term(i) !== t) this.fail(`leader ${id} of term ${r.term} lacks committed entry ${i}/${t}`);
    }
  }

  /** Entries the node just persisted (its log already holds them). */
  persisted(id: NodeId, r: Raft, ents: Entry[]): void {
    for (const e of ents) {
      const prevTerm = r.log.term(e.index - 1);
      if (prevTerm === undefined) this.fail(`node ${id} persisted ${e.index} without a predecessor`);
      const k = `${e.index}:${e.term}`;
      const data = dec.decode(e.data);
      const known = this.entries.get(k);
      if (!known) this.entries.set(k, { data, prevTerm });
      else if (known.data !== data || known.prevTerm !== prevTerm)
        this.fail(`log matching: node ${id} entry ${k} differs (${data}/${prevTerm} vs ${known.data}/${known.prevTerm})`);
    }
  }

  /** Hard state transitions on disk: term never decreases, a vote never changes within a term. */
  hardState(id: NodeId, prev: HardState, next: HardState): void {
    if (next.term < prev.term) this.fail(`node ${id} term went back ${prev.term} -> ${next.term}`);
    if (next.term === prev.term && prev.vote !== 0n && next.vote !== prev.vote)
      this.fail(`node ${id} changed vote in term ${next.term}: ${prev.vote} -> ${next.vote}`);
    if (next.commit < prev.commit) this.fail(`node ${id} persisted commit went back ${prev.commit} -> ${next.commit}`);
  }

  /** The node's commit index moved from `from` to r.log.committed. */
  commitAdvanced(id: NodeId, r: Raft, from: number): void {
    const to = r.log.committed;
    if (to < from) this.fail(`node ${id} commit went back ${from} -> ${to}`);
    // Indexes a freshly installed snapshot covers are checked at the snapshot's own index.
    for (let i = Math.max(from + 1, r.log.firstIndex() - 1); i <= to; i++) {
      const t = r.log.term(i);
      if (t === undefined) this.fail(`node ${id} committed ${i} it does not hold`);
      const known = this.committed.get(i);
      if (known === undefined) this.committed.set(i, t);
      else if (known !== t) this.fail(`node ${id} committed ${i}/${t} but ${i}/${known} was committed before`);
    }
    this.maxCommitted = Math.max(this.maxCommitted, to);
  }

  /** The node applied `e` right after `lastApplied` (per incarnation). */
  apply(id: NodeId, lastApplied: number, e: Entry): void {
    if (e.index !== lastApplied + 1) this.fail(`node ${id} applied ${e.index} after ${lastApplied}`);
    const s = show(e);
    const known = this.applied.get(e.index);
    if (known === undefined) this.applied.set(e.index, s);
    else if (known !== s) this.fail(`node ${id} applied ${s} at ${e.index}, another applied ${known}`);
    if (this.committed.get(e.index) !== e.term) this.fail(`node ${id} applied ${e.index} not known committed`);
  }

  /** The application's state after applying index i (or installing a snapshot at i). */
  state(id: NodeId, i: number, digest: string): void {
    const known = this.stateAt.get(i);
    if (known === undefined) this.stateAt.set(i, digest);
    else if (known !== digest) this.fail(`node ${id} state at ${i} is ${digest}, another had ${known}`);
  }

  /** A snapshot taken or installed: its point must be a committed entry. */
  snapshot(id: NodeId, s: Snapshot): void {
    const t = this.committed.get(s.meta.index);
    if (t === undefined) this.fail(`node ${id} snapshot at ${s.meta.index} is not known committed`);
    if (t !== s.meta.term) this.fail(`node ${id} snapshot ${s.meta.index}/${s.meta.term} but ${s.meta.index}/${t} was committed`);
  }
}
