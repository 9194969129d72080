// The Raft core's stable log on SQLite: `Storage` (src/raft/storage.ts) over
// the `log` table (one row per entry) and the `meta` table (hard state,
// snapshot metadata, the log's compaction point).
//
// Transactions belong to the caller. Every write method (append,
// setHardState, createSnapshot, compact, applySnapshot) must run inside a
// transaction the member opened (it asserts `db.inTransaction`) and never
// begins or commits one itself, so a Ready's entries and hard state reach the
// disk in one fsync together with whatever else the member writes. After the
// transaction ends the member calls exactly one of:
//   committed()      the COMMIT succeeded: the in-memory view moves forward;
//   rollbackCache()  the transaction was rolled back (or a write threw): the
//                    in-memory view stays as it was.
//
// Why staged writes published by committed(), rather than writing through to
// the cache and undoing on rollback: the Raft core reads this storage as "what
// is durable", and a write-through cache would show it entries that are not
// yet fsynced (and may never be). With staging, the reads always describe
// committed data; a rollback is just dropping the staged delta (no undo log of
// overwritten cache entries), and a write that throws half-way is covered the
// same way. Forgetting committed() is loud (RawNode.advance() asserts the
// Ready's entries are in storage); forgetting both calls is caught by the next
// read, which finds staged writes with no transaction open and throws. Reads
// between a write and committed()/rollbackCache() throw too (they could only
// answer from the old state); write methods return what a caller needs
// (createSnapshot returns the snapshot's metadata).
//
// In memory (so the hot path does not touch SQLite):
// - bounds and the term of EVERY retained entry, as runs of equal terms (a
//   Raft log's terms never decrease, so a handful of runs covers it; `term()`
//   never queries SQLite);
// - a bounded tail of recent entries (default: the last 4096 entries or
//   64 MiB, whichever is smaller), so a leader replicating to followers reads
//   from memory; older entries come from SQLite.
//
// Layout of `meta` rows (see RaftMetaKey): the hard state (vote as decimal
// text: 64-bit ids do not fit SQLite's signed integers exactly); the snapshot
// point (index, term, conf state as JSON of decimal strings); the log's
// compaction point ("offset": the index and term of the last discarded entry,
// MemoryStorage's placeholder entry), which is what `term(firstIndex() - 1)`
// answers. The log table holds exactly the entries offset+1 ..= lastIndex.
import type { Database, Statement } from "bun:sqlite";
import { CompactedError, type InitialState, type Storage, UnavailableError, copyConfState } from "../raft/storage.ts";
import { type ConfState, EMPTY, type Entry, type HardState, NONE, type Snapshot, type SnapshotMeta, entrySize, invariant } from "../raft/types.ts";
import { MetaStore } from "./meta-store.ts";
import type { log } from "./schema.ts";
import type { SqlRow } from "./sql-table.ts";

/** Names of the `meta` rows this module owns. */
export const RaftMetaKey = {
  term: "raft_term",
  vote: "raft_vote",
  commit: "raft_commit",
  snapIndex: "raft_snap_index",
  snapTerm: "raft_snap_term",
  snapConf: "raft_snap_conf",
  offset: "raft_log_offset",
  offsetTerm: "raft_log_offset_term",
} as const;

export interface SqliteRaftStorageOptions {
  /** Most entries kept in the tail cache (default 4096). */
  cacheEntries?: number;
  /** Most bytes (entrySize) kept in the tail cache (default 64 MiB). */
  cacheBytes?: number;
}

type LogRow = SqlRow<typeof log>;
/** A `log` row as selectRange returns it: already an Entry (idx read as `index`). */
type EntryRow = { index: LogRow["idx"]; term: LogRow["term"]; type: LogRow["type"]; data: LogRow["data"] };

/** Rows fetched per query when reading entries older than the tail cache. */
const READ_CHUNK = 256;

/** The small part of the state: copied when a write batch starts. */
interface LogState {
  hard: HardState;
  snap: SnapshotMeta;
  /** Index of the last entry; equals runStart[0] (the offset) when the log is empty. */
  last: number;
  /**
   * Runs of equal terms: entries runStart[k] .. runStart[k+1]-1 have term
   * runTerm[k]. runStart[0] is the offset (the placeholder) with its term.
   */
  runStart: number[];
  runTerm: number[];
}

/** How a committed batch changes the tail cache, replayed by committed(). */
type CacheOp = { kind: "append"; entries: Entry[] } | { kind: "compact"; index: number } | { kind: "reset"; index: number };

interface Batch {
  state: LogState;
  ops: CacheOp[];
}

function cloneState(s: LogState): LogState {
  return { hard: s.hard, snap: s.snap, last: s.last, runStart: s.runStart.slice(), runTerm: s.runTerm.slice() };
}

/** Term of entry i, for offset <= i <= last (the caller checks the bounds). */
function termAt(s: LogState, i: number): number {
  const starts = s.runStart;
  let hi = starts.length - 1;
  if (i >= starts[hi]) return s.runTerm[hi];
  let lo = 0;
  // Largest k with starts[k] <= i.
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (starts[mid] <= i) lo = mid;
    else hi = mid - 1;
  }
  return s.runTerm[lo];
}

function confToJson(c: ConfState): string {
  return JSON.stringify({ voters: c.voters.map(String), learners: c.learners.map(String) });
}

function confFromJson(text: string): ConfState {
  const o = JSON.parse(text) as { voters: string[]; learners: string[] };
  return { voters: o.voters.map((v) => BigInt(v)), learners: o.learners.map((v) => BigInt(v)) };
}

export class SqliteRaftStorage implements Storage {
  private readonly meta: MetaStore;
  private readonly insertEntry: Statement;
  private readonly deleteFrom: Statement;
  private readonly deleteUpTo: Statement;
  private readonly deleteAll: Statement;
  private readonly selectRange: Statement<EntryRow, [number, number, number]>;
  private readonly selectTerm: Statement<Pick<LogRow, "term">, [number]>;
  private readonly selectBounds: Statement;

  private readonly maxCacheEntries: number;
  private readonly maxCacheBytes: number;

  /** The committed state: what every read answers from. */
  private state: LogState;
  /** Staged writes of the caller's open transaction, or null. */
  private batch: Batch | null = null;
  private snapObj: Snapshot;

  // Tail cache: cache[head..] hold the entries cacheFirst ..= state.last.
  private cache: Entry[] = [];
  private head = 0;
  private cacheFirst: number;
  private cacheSize = 0;

  /** Entries read from SQLite (not the cache) since construction: for tests and metrics. */
  sqliteEntryReads = 0;

  constructor(
    private readonly db: Database,
    opts: SqliteRaftStorageOptions = {},
  ) {
    this.maxCacheEntries = opts.cacheEntries ?? 4096;
    this.maxCacheBytes = opts.cacheBytes ?? 64 * 1024 * 1024;
    invariant(this.maxCacheEntries >= 0 && this.maxCacheBytes >= 0, "cache bounds must be >= 0");
    this.meta = new MetaStore(db);
    this.insertEntry = db.prepare("INSERT INTO log (idx, term, type, data) VALUES (?1, ?2, ?3, ?4)");
    this.deleteFrom = db.prepare("DELETE FROM log WHERE idx >= ?1");
    this.deleteUpTo = db.prepare("DELETE FROM log WHERE idx <= ?1");
    this.deleteAll = db.prepare("DELETE FROM log");
    this.selectRange = db.prepare<EntryRow, [number, number, number]>(
      "SELECT idx AS 'index', term, type, data FROM log WHERE idx >= ?1 AND idx < ?2 ORDER BY idx LIMIT ?3",
    );
    this.selectTerm = db.prepare<Pick<LogRow, "term">, [number]>("SELECT term FROM log WHERE idx = ?1");
    this.selectBounds = db.prepare("SELECT MIN(idx) AS first, MAX(idx) AS last FROM log");
    this.state = this.load();
    this.snapObj = { meta: this.state.snap, data: EMPTY };
    this.cacheFirst = this.state.last + 1;
    this.warmCache();
  }

  // ---- Storage (reads: the committed state, from memory where possible) ----

  initialState(): InitialState {
    this.checkBatch();
    return { hardState: { ...this.state.hard }, confState: copyConfState(this.state.snap.confState) };
  }

  firstIndex(): number {
    this.checkBatch();
    return this.state.runStart[0] + 1;
  }

  lastIndex(): number {
    this.checkBatch();
    return this.state.last;
  }

  term(i: number): number {
    this.checkBatch();
    const s = this.state;
    if (i < s.runStart[0]) throw new CompactedError(i);
    if (i > s.last) throw new UnavailableError(i);
    return termAt(s, i);
  }

  entries(lo: number, hi: number, maxBytes: number): Entry[] {
    this.checkBatch();
    const s = this.state;
    if (lo <= s.runStart[0]) throw new CompactedError(lo);
    invariant(hi <= s.last + 1, `entries hi ${hi} > lastIndex+1 ${s.last + 1}`);
    invariant(lo <= hi, `entries lo ${lo} > hi ${hi}`);
    const out: Entry[] = [];
    // The first entry is always returned; then entries while the total fits maxBytes.
    let size = 0;
    let i = lo;
    if (i < this.cacheFirst && i < hi) {
      const end = Math.min(hi, this.cacheFirst);
      while (i < end) {
        const rows: Entry[] = this.selectRange.all(i, end, Math.min(end - i, READ_CHUNK));
        invariant(rows.length > 0 && rows[0].index === i, `log row ${i} missing`);
        this.sqliteEntryReads += rows.length;
        for (const e of rows) {
          invariant(e.index === i, `log row ${i} missing (found ${e.index})`);
          size += entrySize(e);
          if (out.length > 0 && size > maxBytes) return out;
          out.push(e);
          i++;
        }
      }
    }
    const cache = this.cache;
    const base = this.head - this.cacheFirst;
    for (; i < hi; i++) {
      const e = cache[base + i];
      size += entrySize(e);
      if (out.length > 0 && size > maxBytes) break;
      out.push(e);
    }
    return out;
  }

  /** The snapshot point; `data` is empty: the snapshot's data is the database itself, streamed by the member. */
  snapshot(): Snapshot {
    this.checkBatch();
    return this.snapObj;
  }

  // ---- Writes: inside the caller's transaction, published by committed() ----

  setHardState(h: HardState): void {
    const s = this.begin();
    const old = s.hard;
    if (h.term !== old.term) this.meta.setNumber(RaftMetaKey.term, h.term);
    if (h.vote !== old.vote) this.meta.setBigInt(RaftMetaKey.vote, h.vote);
    if (h.commit !== old.commit) this.meta.setNumber(RaftMetaKey.commit, h.commit);
    s.hard = { term: h.term, vote: h.vote, commit: h.commit };
  }

  /**
   * Persist entries. Entries overlapping the stored tail replace it (the
   * leader overwrote a conflicting suffix); entries at or below the
   * compaction point are skipped; a gap is a bug.
   */
  append(entries: Entry[]): void {
    if (entries.length === 0) return;
    const s = this.begin();
    const first = s.runStart[0] + 1;
    const last = entries[0].index + entries.length - 1;
    if (last < first) return; // entirely compacted already
    if (first > entries[0].index) entries = entries.slice(first - entries[0].index);
    else entries = entries.slice(); // the caller's array may change after we return
    const k = entries[0].index;
    invariant(k <= s.last + 1, `append gap: storage last ${s.last}, got ${k}`);
    // Check everything before writing anything.
    let prevTerm = termAt(s, k - 1);
    for (let j = 0; j < entries.length; j++) {
      const e = entries[j];
      invariant(e.index === k + j, `append: entries not contiguous at ${k + j} (got ${e.index})`);
      invariant(e.term >= prevTerm, `append: term ${e.term} at ${e.index} below the previous term ${prevTerm}`);
      prevTerm = e.term;
    }
    if (k <= s.last) this.deleteFrom.run(k);
    const ins = this.insertEntry;
    for (const e of entries) ins.run(e.index, e.term, e.type, e.data);
    // Terms: drop the runs of the replaced suffix, then extend.
    const starts = s.runStart;
    const terms = s.runTerm;
    while (starts[starts.length - 1] >= k) {
      starts.pop();
      terms.pop();
    }
    for (const e of entries) {
      if (e.term !== terms[terms.length - 1]) {
        starts.push(e.index);
        terms.push(e.term);
      }
    }
    s.last = last;
    this.batch!.ops.push({ kind: "append", entries });
  }

  /**
   * Record a snapshot of the applied state at `index` (<= the applied index)
   * with the membership in effect there. Metadata only: the data is the
   * database itself. Entries are kept until compact().
   */
  createSnapshot(index: number, confState: ConfState): Snapshot {
    const s = this.begin();
    invariant(index > s.snap.index, `snapshot ${index} not after ${s.snap.index}`);
    invariant(index <= s.last, `snapshot ${index} beyond last ${s.last}`);
    invariant(index >= s.runStart[0], `snapshot ${index} below the compaction point ${s.runStart[0]}`);
    const meta: SnapshotMeta = { index, term: termAt(s, index), confState: copyConfState(confState) };
    this.writeSnapMeta(meta);
    s.snap = meta;
    return { meta, data: EMPTY };
  }

  /** Discard entries up to and including `index` (a snapshot must cover them). */
  compact(index: number): void {
    const s = this.begin();
    const off = s.runStart[0];
    if (index <= off) return;
    invariant(index <= s.last, `compact ${index} beyond last ${s.last}`);
    invariant(index <= s.snap.index, `compact ${index} past the snapshot at ${s.snap.index}`);
    const term = termAt(s, index);
    this.deleteUpTo.run(index);
    this.meta.setNumber(RaftMetaKey.offset, index);
    this.meta.setNumber(RaftMetaKey.offsetTerm, term);
    // Drop the runs that end at or before `index`; the run holding it now starts there.
    let k = 0;
    while (k + 1 < s.runStart.length && s.runStart[k + 1] <= index) k++;
    s.runStart = s.runStart.slice(k);
    s.runTerm = s.runTerm.slice(k);
    s.runStart[0] = index;
    this.batch!.ops.push({ kind: "compact", index });
  }

  /** A snapshot received from the leader: discard the whole log and record its metadata. */
  applySnapshot(snap: Snapshot | SnapshotMeta): void {
    const m: SnapshotMeta = "meta" in snap ? snap.meta : snap;
    const s = this.begin();
    invariant(m.index > s.snap.index, `old snapshot ${m.index} <= ${s.snap.index}`);
    const meta: SnapshotMeta = { index: m.index, term: m.term, confState: copyConfState(m.confState) };
    this.deleteAll.run();
    this.meta.setNumber(RaftMetaKey.offset, meta.index);
    this.meta.setNumber(RaftMetaKey.offsetTerm, meta.term);
    this.writeSnapMeta(meta);
    s.snap = meta;
    s.last = meta.index;
    s.runStart = [meta.index];
    s.runTerm = [meta.term];
    this.batch!.ops.push({ kind: "reset", index: meta.index });
  }

  /** The caller's transaction committed: publish the staged writes to the in-memory view. */
  committed(): void {
    invariant(!this.db.inTransaction, "committed() called while the transaction is still open");
    const b = this.batch;
    if (b === null) return;
    this.batch = null;
    const old = this.state;
    this.state = b.state;
    if (b.state.snap !== old.snap) this.snapObj = { meta: b.state.snap, data: EMPTY };
    for (const op of b.ops) {
      if (op.kind === "append") this.cacheAppend(op.entries);
      else if (op.kind === "compact") this.cacheDropThrough(op.index);
      else this.cacheReset(op.index);
    }
    this.trimCache();
    invariant(
      this.cacheFirst + (this.cache.length - this.head) - 1 === this.state.last,
      `tail cache ends at ${this.cacheFirst + this.cache.length - this.head - 1}, log at ${this.state.last}`,
    );
  }

  /** The caller's transaction was rolled back (or a write threw): forget the staged writes. */
  rollbackCache(): void {
    this.batch = null;
  }

  /** Whether writes are staged, waiting for committed() or rollbackCache(). */
  get pending(): boolean {
    return this.batch !== null;
  }

  /** The tail cache's extent, for tests, benchmarks and metrics. */
  cacheStats(): { first: number; entries: number; bytes: number } {
    return { first: this.cacheFirst, entries: this.cache.length - this.head, bytes: this.cacheSize };
  }

  // ---- internals ----

  private begin(): LogState {
    invariant(this.db.inTransaction, "SqliteRaftStorage writes must run inside the caller's transaction");
    if (this.batch === null) this.batch = { state: cloneState(this.state), ops: [] };
    return this.batch.state;
  }

  /**
   * Reads describe committed data only. While writes are staged they would
   * not see them (nor would SQLite agree with the cache), so a read then is a
   * bug in the caller and throws, rather than quietly answering from the old
   * state: compute from what the write methods return instead.
   */
  private checkBatch(): void {
    if (this.batch === null) return;
    if (!this.db.inTransaction) {
      throw new Error(
        "raft invariant violated: SqliteRaftStorage has staged writes but no transaction is open: call committed() or rollbackCache() after the transaction",
      );
    }
    throw new Error("raft invariant violated: SqliteRaftStorage read while writes are staged (before committed() or rollbackCache())");
  }

  private writeSnapMeta(m: SnapshotMeta): void {
    this.meta.setNumber(RaftMetaKey.snapIndex, m.index);
    this.meta.setNumber(RaftMetaKey.snapTerm, m.term);
    this.meta.setText(RaftMetaKey.snapConf, confToJson(m.confState));
  }

  /** Read the committed state from the database (construction). */
  private load(): LogState {
    const meta = this.meta;
    const hard: HardState = {
      term: meta.getNumber(RaftMetaKey.term) ?? 0,
      vote: meta.getBigInt(RaftMetaKey.vote) ?? NONE,
      commit: meta.getNumber(RaftMetaKey.commit) ?? 0,
    };
    const confText = meta.getText(RaftMetaKey.snapConf);
    const snap: SnapshotMeta = {
      index: meta.getNumber(RaftMetaKey.snapIndex) ?? 0,
      term: meta.getNumber(RaftMetaKey.snapTerm) ?? 0,
      confState: confText === undefined ? { voters: [], learners: [] } : confFromJson(confText),
    };
    const offset = meta.getNumber(RaftMetaKey.offset) ?? 0;
    const offsetTerm = meta.getNumber(RaftMetaKey.offsetTerm) ?? 0;
    invariant(offset <= snap.index, `log offset ${offset} past the snapshot ${snap.index}`);
    const b = this.selectBounds.get() as { first: number | null; last: number | null };
    const s: LogState = { hard, snap, last: offset, runStart: [offset], runTerm: [offsetTerm] };
    if (b.first === null || b.last === null) return s;
    invariant(b.first === offset + 1, `log starts at ${b.first}, expected ${offset + 1} (compaction point ${offset})`);
    s.last = b.last;
    // Terms never decrease along the log, so runs are found by bisection with point reads.
    const termOf = (i: number): number => {
      const row = this.selectTerm.get(i);
      invariant(row !== null, `log row ${i} missing`);
      return row.term;
    };
    const fill = (lo: number, tlo: number, hi: number, thi: number): void => {
      invariant(tlo <= thi, `log term decreases between ${lo} (${tlo}) and ${hi} (${thi})`);
      if (tlo === thi) return;
      if (hi === lo + 1) {
        s.runStart.push(hi);
        s.runTerm.push(thi);
        return;
      }
      const mid = lo + Math.floor((hi - lo) / 2);
      const tm = termOf(mid);
      fill(lo, tlo, mid, tm);
      fill(mid, tm, hi, thi);
    };
    fill(offset, offsetTerm, b.last, termOf(b.last));
    return s;
  }

  /** Fill the tail cache with the newest entries, so a restarted leader replicates from memory. */
  private warmCache(): void {
    const s = this.state;
    const n = Math.min(this.maxCacheEntries, s.last - s.runStart[0]);
    if (n <= 0) return;
    const from = s.last - n + 1;
    const rows: Entry[] = this.selectRange.all(from, s.last + 1, n);
    invariant(rows.length === n, `log rows ${from}..${s.last}: found ${rows.length}`);
    this.cacheReset(from - 1);
    this.cacheAppend(rows);
    this.trimCache();
  }

  private cacheAppend(entries: Entry[]): void {
    const k = entries[0].index;
    const count = this.cache.length - this.head;
    if (k <= this.cacheFirst) {
      this.cacheReset(k - 1);
    } else if (k < this.cacheFirst + count) {
      const keep = k - this.cacheFirst;
      for (let j = this.head + keep; j < this.cache.length; j++) this.cacheSize -= entrySize(this.cache[j]);
      this.cache.length = this.head + keep;
    }
    for (const e of entries) {
      this.cache.push(e);
      this.cacheSize += entrySize(e);
    }
  }

  /** Drop cached entries at or below `index` (compaction). */
  private cacheDropThrough(index: number): void {
    while (this.cacheFirst <= index && this.head < this.cache.length) this.dropFront();
    if (this.cacheFirst <= index) this.cacheFirst = index + 1;
  }

  private cacheReset(index: number): void {
    this.cache = [];
    this.head = 0;
    this.cacheSize = 0;
    this.cacheFirst = index + 1;
  }

  private dropFront(): void {
    this.cacheSize -= entrySize(this.cache[this.head]);
    this.cache[this.head] = undefined as unknown as Entry; // let it be collected
    this.head++;
    this.cacheFirst++;
  }

  private trimCache(): void {
    while (this.head < this.cache.length && (this.cache.length - this.head > this.maxCacheEntries || this.cacheSize > this.maxCacheBytes)) {
      this.dropFront();
    }
    // Reclaim the dropped prefix once it is the larger part of the array.
    if (this.head > 1024 && this.head * 2 > this.cache.length) {
      this.cache = this.cache.slice(this.head);
      this.head = 0;
    }
    if (this.head === this.cache.length && this.head > 0) {
      this.cache = [];
      this.head = 0;
    }
  }
}
