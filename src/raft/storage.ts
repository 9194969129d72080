// The stable (persisted) log as Raft sees it. server/ implements it on
// SQLite; MemoryStorage is the reference implementation for tests and sim.
import { type ConfState, type Entry, type HardState, NONE, type Snapshot, entrySize, invariant } from "./types.ts";

/** Requested index is below the first retained index (it was compacted). */
export class CompactedError extends Error {
  constructor(index: number) {
    super(`raft storage: index ${index} is compacted`);
  }
}
/** Requested index is beyond the last stored entry. */
export class UnavailableError extends Error {
  constructor(index: number) {
    super(`raft storage: index ${index} is unavailable`);
  }
}

/** The snapshot is being produced: try again later (the leader retries on a later heartbeat). */
export class SnapshotUnavailableError extends Error {
  constructor() {
    super("raft storage: snapshot temporarily unavailable");
  }
}

export interface InitialState {
  hardState: HardState;
  /** Membership as of the storage's snapshot; later conf changes are re-applied from the log. */
  confState: ConfState;
}

export interface Storage {
  initialState(): InitialState;
  /** Entries [lo, hi), at least one if any exist, then up to maxBytes total. */
  entries(lo: number, hi: number, maxBytes: number): Entry[];
  /** Term of entry i; valid for firstIndex()-1 ..= lastIndex(). */
  term(i: number): number;
  firstIndex(): number;
  lastIndex(): number;
  /** The latest snapshot (index 0 when none); may throw SnapshotUnavailableError. */
  snapshot(): Snapshot;
}

export const emptyConfState = (): ConfState => ({ voters: [], learners: [] });

/** Cut a list to a byte budget but always keep the first entry, so progress is possible. */
export function limitSize(ents: Entry[], maxBytes: number): Entry[] {
  if (ents.length === 0) return ents;
  let size = entrySize(ents[0]);
  let n = 1;
  for (; n < ents.length; n++) {
    size += entrySize(ents[n]);
    if (size > maxBytes) break;
  }
  return n === ents.length ? ents : ents.slice(0, n);
}

export class MemoryStorage implements Storage {
  hardState: HardState = { term: 0, vote: NONE, commit: 0 };
  private snap: Snapshot = { meta: { index: 0, term: 0, confState: emptyConfState() }, data: new Uint8Array(0) };
  // ents[0] is a placeholder standing for the snapshot point: its index and
  // term are those of the last compacted entry, which term() must still answer.
  private ents: Entry[] = [{ term: 0, index: 0, type: 0, data: new Uint8Array(0) }];

  initialState(): InitialState {
    return { hardState: { ...this.hardState }, confState: this.snap.meta.confState };
  }

  setHardState(h: HardState): void {
    this.hardState = { ...h };
  }

  private offset(): number {
    return this.ents[0].index;
  }

  firstIndex(): number {
    return this.offset() + 1;
  }

  lastIndex(): number {
    return this.offset() + this.ents.length - 1;
  }

  term(i: number): number {
    const off = this.offset();
    if (i < off) throw new CompactedError(i);
    if (i - off >= this.ents.length) throw new UnavailableError(i);
    return this.ents[i - off].term;
  }

  entries(lo: number, hi: number, maxBytes: number): Entry[] {
    const off = this.offset();
    if (lo <= off) throw new CompactedError(lo);
    invariant(hi <= this.lastIndex() + 1, `entries hi ${hi} > lastIndex+1 ${this.lastIndex() + 1}`);
    invariant(lo <= hi, `entries lo ${lo} > hi ${hi}`);
    return limitSize(this.ents.slice(lo - off, hi - off), maxBytes);
  }

  snapshot(): Snapshot {
    return this.snap;
  }

  /**
   * Append persisted entries. Entries overlapping the stored tail replace it
   * (the leader overwrote a conflicting suffix); a gap is a bug.
   */
  append(entries: Entry[]): void {
    if (entries.length === 0) return;
    const first = this.firstIndex();
    const last = entries[0].index + entries.length - 1;
    if (last < first) return; // entirely compacted already
    if (first > entries[0].index) entries = entries.slice(first - entries[0].index);
    const at = entries[0].index - this.offset();
    invariant(at <= this.ents.length, `append gap: storage last ${this.lastIndex()}, got ${entries[0].index}`);
    if (at === this.ents.length) {
      // Common case, a plain append: extend in place rather than copy the whole log.
      for (const e of entries) this.ents.push(e);
    } else {
      this.ents = this.ents.slice(0, at).concat(entries);
    }
  }

  /**
   * Record the application's snapshot at `index` (<= the applied index), with
   * the membership in effect there. Entries are kept until compact().
   */
  createSnapshot(index: number, confState: ConfState, data: Uint8Array): Snapshot {
    invariant(index > this.snap.meta.index, `snapshot ${index} not after ${this.snap.meta.index}`);
    invariant(index <= this.lastIndex(), `snapshot ${index} beyond last ${this.lastIndex()}`);
    this.snap = { meta: { index, term: this.term(index), confState: copyConfState(confState) }, data };
    return this.snap;
  }

  /** Discard entries up to and including `index` (a snapshot must cover them). */
  compact(index: number): void {
    const off = this.offset();
    if (index <= off) return;
    invariant(index <= this.lastIndex(), `compact ${index} beyond last ${this.lastIndex()}`);
    invariant(index <= this.snap.meta.index, `compact ${index} past the snapshot at ${this.snap.meta.index}`);
    const term = this.ents[index - off].term;
    this.ents = [{ term, index, type: 0, data: new Uint8Array(0) }, ...this.ents.slice(index - off + 1)];
  }

  /** Replace everything with a snapshot received from the leader. */
  applySnapshot(snap: Snapshot): void {
    invariant(snap.meta.index > this.snap.meta.index, `old snapshot ${snap.meta.index} <= ${this.snap.meta.index}`);
    this.snap = snap;
    this.ents = [{ term: snap.meta.term, index: snap.meta.index, type: 0, data: new Uint8Array(0) }];
  }

  /** A deep-enough copy, so the simulator can "crash" a node and keep only what was persisted. */
  clone(): MemoryStorage {
    const s = new MemoryStorage();
    s.hardState = { ...this.hardState };
    s.snap = this.snap;
    s.ents = this.ents.slice();
    return s;
  }
}

export function copyConfState(c: ConfState): ConfState {
  return { voters: c.voters.slice(), learners: c.learners.slice() };
}
