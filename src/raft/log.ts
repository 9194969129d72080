// The Raft log as the state machine sees it: a stable prefix in Storage and
// an unstable suffix held in memory until the driver reports it persisted.
import { CompactedError, type Storage, UnavailableError, limitSize } from "./storage.ts";
import { type Entry, type Snapshot, invariant } from "./types.ts";

/**
 * What is not yet persisted: a snapshot received from the leader (if any)
 * and entries from `offset` on. Arrays are replaced, never mutated in place,
 * so slices handed out in a Ready stay valid.
 */
export class Unstable {
  /** A snapshot to install; entries (if any) follow it directly. */
  snapshot: Snapshot | undefined;

  constructor(
    public offset: number,
    public entries: Entry[] = [],
  ) {}

  lastIndex(): number | undefined {
    if (this.entries.length > 0) return this.offset + this.entries.length - 1;
    return this.snapshot?.meta.index;
  }

  term(i: number): number | undefined {
    if (i < this.offset) {
      return this.snapshot !== undefined && this.snapshot.meta.index === i ? this.snapshot.meta.term : undefined;
    }
    const e = this.entries[i - this.offset];
    return e?.term;
  }

  /** Replace everything with a snapshot from the leader. */
  restore(snap: Snapshot): void {
    this.snapshot = snap;
    this.offset = snap.meta.index + 1;
    this.entries = [];
  }

  /** The driver persisted the snapshot at index i. */
  stableSnapTo(i: number): void {
    if (this.snapshot?.meta.index === i) this.snapshot = undefined;
  }

  /** The driver persisted entries up to (i, t). Ignore it if that entry was since overwritten. */
  stableTo(i: number, t: number): void {
    if (this.term(i) !== t) return;
    this.entries = this.entries.slice(i + 1 - this.offset);
    this.offset = i + 1;
  }

  truncateAndAppend(ents: Entry[]): void {
    const after = ents[0].index;
    if (after === this.offset + this.entries.length) {
      this.entries = this.entries.concat(ents);
    } else if (after <= this.offset) {
      // Replaces all unstable entries; the driver truncates storage from `after` when persisting.
      this.offset = after;
      this.entries = ents.slice();
    } else {
      this.entries = this.entries.slice(0, after - this.offset).concat(ents);
    }
  }
}

export class RaftLog {
  readonly unstable: Unstable;
  /** Highest index known committed by a quorum. */
  committed: number;
  /** Highest index the application reported applied. */
  applied: number;

  constructor(
    readonly storage: Storage,
    /** Byte budget for committed entries handed out in one Ready. */
    readonly maxApplyBytes = Number.MAX_SAFE_INTEGER,
  ) {
    const first = storage.firstIndex();
    const last = storage.lastIndex();
    this.unstable = new Unstable(last + 1);
    this.committed = first - 1;
    this.applied = first - 1;
  }

  firstIndex(): number {
    const snap = this.unstable.snapshot;
    return snap ? snap.meta.index + 1 : this.storage.firstIndex();
  }

  /** The snapshot a follower behind firstIndex() needs: a pending one, else the stored one. */
  snapshot(): Snapshot {
    return this.unstable.snapshot ?? this.storage.snapshot();
  }

  /** Install a snapshot from the leader; the log restarts right after it. */
  restore(snap: Snapshot): void {
    invariant(snap.meta.index > this.committed, `restore ${snap.meta.index} <= committed ${this.committed}`);
    this.committed = snap.meta.index;
    this.unstable.restore(snap);
  }

  lastIndex(): number {
    return this.unstable.lastIndex() ?? this.storage.lastIndex();
  }

  /** Term of entry i, or undefined when unknown (compacted or beyond the end). */
  term(i: number): number | undefined {
    if (i < this.firstIndex() - 1 || i > this.lastIndex()) return undefined;
    const t = this.unstable.term(i);
    if (t !== undefined) return t;
    try {
      return this.storage.term(i);
    } catch (e) {
      if (e instanceof CompactedError || e instanceof UnavailableError) return undefined;
      throw e;
    }
  }

  lastTerm(): number {
    const t = this.term(this.lastIndex());
    invariant(t !== undefined, "term of last index unknown");
    return t;
  }

  matchTerm(i: number, t: number): boolean {
    return this.term(i) === t;
  }

  /**
   * Follower side of AppendEntries: if our entry at `index` has `logTerm`,
   * accept `ents` (overwriting only a conflicting suffix) and advance commit.
   * Returns the last index now known to match the leader, or undefined on mismatch.
   */
  maybeAppend(index: number, logTerm: number, committed: number, ents: Entry[]): number | undefined {
    if (!this.matchTerm(index, logTerm)) return undefined;
    const lastNew = index + ents.length;
    const ci = this.findConflict(ents);
    if (ci !== 0) {
      // A committed entry can never conflict with a valid leader's log (Leader Completeness).
      invariant(ci > this.committed, `conflict at ${ci} <= committed ${this.committed}`);
      this.append(ents.slice(ci - (index + 1)));
    }
    // Only what is known to match the leader may be committed: a stale suffix beyond lastNew may not.
    this.commitTo(Math.min(committed, lastNew));
    return lastNew;
  }

  append(ents: Entry[]): number {
    if (ents.length === 0) return this.lastIndex();
    invariant(ents[0].index - 1 >= this.committed, `append after ${ents[0].index - 1} < committed ${this.committed}`);
    this.unstable.truncateAndAppend(ents);
    return this.lastIndex();
  }

  /**
   * Index of the first entry whose term differs from ours, or of the first new
   * entry beyond our log; 0 when all of `ents` is already present.
   */
  findConflict(ents: Entry[]): number {
    for (const e of ents) {
      if (!this.matchTerm(e.index, e.term)) return e.index;
    }
    return 0;
  }

  /**
   * Largest index <= `index` whose term is <= `term`. Used to answer a rejected
   * App with a hint that skips a whole term of conflicting entries at once.
   */
  findConflictByTerm(index: number, term: number): number {
    for (let i = Math.min(index, this.lastIndex()); i >= this.firstIndex() - 1; i--) {
      const t = this.term(i);
      if (t === undefined || t <= term) return i;
    }
    return this.firstIndex() - 1;
  }

  /** Advance commit; a lower value is a no-op since callers pass stale upper bounds (e.g. heartbeats). */
  commitTo(toCommit: number): void {
    if (toCommit <= this.committed) return;
    invariant(toCommit <= this.lastIndex(), `commit ${toCommit} beyond last index ${this.lastIndex()}`);
    this.committed = toCommit;
  }

  /** Leader: commit `maxIndex` if a quorum has it and it is from the current term (Raft §5.4.2). */
  maybeCommit(maxIndex: number, term: number): boolean {
    if (maxIndex > this.committed && this.term(maxIndex) === term) {
      this.commitTo(maxIndex);
      return true;
    }
    return false;
  }

  appliedTo(i: number): void {
    if (i === 0 || i === this.applied) return;
    invariant(i <= this.committed && i >= this.applied, `applied ${i} outside [${this.applied}, ${this.committed}]`);
    this.applied = i;
  }

  stableTo(i: number, t: number): void {
    this.unstable.stableTo(i, t);
  }

  stableSnapTo(i: number): void {
    this.unstable.stableSnapTo(i);
  }

  unstableEntries(): Entry[] {
    return this.unstable.entries;
  }

  hasNextEnts(): boolean {
    return this.committed > Math.max(this.applied, this.firstIndex() - 1);
  }

  /** Committed, not yet applied entries, bounded by maxApplyBytes. */
  nextEnts(): Entry[] {
    const lo = Math.max(this.applied + 1, this.firstIndex());
    if (this.committed + 1 <= lo) return [];
    return this.slice(lo, this.committed + 1, this.maxApplyBytes);
  }

  /** Election restriction (§5.4.1): is a candidate's log at least as up to date as ours? */
  isUpToDate(lastIndex: number, term: number): boolean {
    const ourTerm = this.lastTerm();
    return term > ourTerm || (term === ourTerm && lastIndex >= this.lastIndex());
  }

  /** Entries from i to the end, bounded by maxBytes (at least one if any). */
  entries(i: number, maxBytes: number): Entry[] {
    if (i > this.lastIndex()) return [];
    return this.slice(i, this.lastIndex() + 1, maxBytes);
  }

  allEntries(): Entry[] {
    return this.entries(this.firstIndex(), Number.MAX_SAFE_INTEGER);
  }

  /** Entries [lo, hi) across storage and unstable. Throws CompactedError below firstIndex. */
  slice(lo: number, hi: number, maxBytes: number): Entry[] {
    invariant(lo <= hi, `slice lo ${lo} > hi ${hi}`);
    if (lo < this.firstIndex()) throw new CompactedError(lo);
    invariant(hi <= this.lastIndex() + 1, `slice hi ${hi} > last+1 ${this.lastIndex() + 1}`);
    if (lo === hi) return [];
    let out: Entry[] = [];
    const uoff = this.unstable.offset;
    if (lo < uoff) {
      out = this.storage.entries(lo, Math.min(hi, uoff), maxBytes);
      // Storage cut short by the byte budget: stop here, the rest comes next time.
      if (out.length < Math.min(hi, uoff) - lo) return out;
    }
    if (hi > uoff) {
      const u = this.unstable.entries.slice(Math.max(lo, uoff) - uoff, hi - uoff);
      out = out.length > 0 ? out.concat(u) : u;
    }
    return limitSize(out, maxBytes);
  }
}
