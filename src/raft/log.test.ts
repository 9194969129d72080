// Unit tests of the log, storage and progress bookkeeping.
import { describe, expect, test } from "bun:test";
import { RaftLog } from "./log.ts";
import { Inflights, Progress, ProgressState } from "./progress.ts";
import { CompactedError, MemoryStorage, UnavailableError } from "./storage.ts";
import { type Entry, EntryType } from "./types.ts";

const ent = (index: number, term: number, data = ""): Entry => ({
  index,
  term,
  type: EntryType.Normal,
  data: new TextEncoder().encode(data),
});
const terms = (es: Entry[]) => es.map((e) => e.term);

function logWith(stable: number[], unstable: number[] = []): RaftLog {
  const s = new MemoryStorage();
  s.append(stable.map((t, i) => ent(i + 1, t)));
  const l = new RaftLog(s);
  if (unstable.length) l.append(unstable.map((t, i) => ent(stable.length + i + 1, t)));
  return l;
}

describe("MemoryStorage", () => {
  test("term, entries, compaction and errors", () => {
    const s = new MemoryStorage();
    s.append([ent(1, 1), ent(2, 1), ent(3, 2), ent(4, 3)]);
    expect(s.firstIndex()).toBe(1);
    expect(s.lastIndex()).toBe(4);
    expect(s.term(0)).toBe(0);
    expect(s.term(3)).toBe(2);
    expect(() => s.term(5)).toThrow(UnavailableError);
    expect(() => s.compact(2)).toThrow(/past the snapshot/); // a snapshot must cover what is dropped
    s.createSnapshot(2, { voters: [1n], learners: [] }, new Uint8Array([7]));
    s.compact(2);
    expect(s.firstIndex()).toBe(3);
    expect(s.term(2)).toBe(1); // the compaction point's term stays answerable
    expect(() => s.term(1)).toThrow(CompactedError);
    expect(() => s.entries(2, 4, 1000)).toThrow(CompactedError);
    expect(terms(s.entries(3, 5, 1000))).toEqual([2, 3]);
    expect(s.snapshot().meta).toEqual({ index: 2, term: 1, confState: { voters: [1n], learners: [] } });
    expect(s.initialState().confState).toEqual({ voters: [1n], learners: [] });
    // A snapshot from a leader replaces the whole log.
    s.applySnapshot({ meta: { index: 9, term: 4, confState: { voters: [1n, 2n], learners: [] } }, data: new Uint8Array() });
    expect([s.firstIndex(), s.lastIndex(), s.term(9)]).toEqual([10, 9, 4]);
  });

  test("entries honours maxBytes but always returns one entry", () => {
    const s = new MemoryStorage();
    s.append([ent(1, 1, "aaaa"), ent(2, 1, "bbbb"), ent(3, 1, "cccc")]);
    expect(s.entries(1, 4, 0).length).toBe(1);
    expect(s.entries(1, 4, 40).length).toBe(2); // 20 bytes each with overhead
  });

  test("append overwrites a conflicting tail and refuses a gap", () => {
    const s = new MemoryStorage();
    s.append([ent(1, 1), ent(2, 1), ent(3, 1)]);
    s.append([ent(2, 2)]);
    expect(s.lastIndex()).toBe(2);
    expect(s.term(2)).toBe(2);
    expect(() => s.append([ent(5, 2)])).toThrow(/gap/);
  });
});

describe("RaftLog", () => {
  test("maybeAppend: accepts a match, truncates only a conflicting suffix, commits up to lastNew", () => {
    const l = logWith([1, 2, 3]);
    // Mismatched previous entry: refused.
    expect(l.maybeAppend(3, 2, 3, [ent(4, 4)])).toBeUndefined();
    // Entries already present: nothing truncated.
    expect(l.maybeAppend(1, 1, 0, [ent(2, 2)])).toBe(2);
    expect(l.lastIndex()).toBe(3);
    // Conflict at 3: replace from 3 on.
    expect(l.maybeAppend(2, 2, 10, [ent(3, 4), ent(4, 4)])).toBe(4);
    expect(terms(l.allEntries())).toEqual([1, 2, 4, 4]);
    // The leader's commit 10 is capped at what is known to match (4).
    expect(l.committed).toBe(4);
  });

  test("maybeAppend does not commit a stale suffix beyond what the leader sent", () => {
    const l = logWith([1, 1, 1, 1]);
    expect(l.maybeAppend(1, 1, 4, [])).toBe(1);
    expect(l.committed).toBe(1);
  });

  test("a conflict at or below commit is an invariant violation", () => {
    const l = logWith([1, 1, 1]);
    l.commitTo(3);
    expect(() => l.maybeAppend(1, 1, 3, [ent(2, 2)])).toThrow(/invariant/);
  });

  test("commitTo never moves back and never past the log", () => {
    const l = logWith([1, 1, 1]);
    l.commitTo(2);
    l.commitTo(1);
    expect(l.committed).toBe(2);
    expect(() => l.commitTo(4)).toThrow(/invariant/);
  });

  test("isUpToDate compares last term, then length", () => {
    const l = logWith([1, 2, 2]);
    expect(l.isUpToDate(1, 3)).toBe(true);
    expect(l.isUpToDate(3, 2)).toBe(true);
    expect(l.isUpToDate(2, 2)).toBe(false);
    expect(l.isUpToDate(10, 1)).toBe(false);
  });

  test("findConflictByTerm skips whole terms", () => {
    const l = logWith([1, 1, 2, 2, 5, 5, 5]);
    expect(l.findConflictByTerm(7, 3)).toBe(4);
    expect(l.findConflictByTerm(7, 5)).toBe(7);
    expect(l.findConflictByTerm(7, 1)).toBe(2);
    expect(l.findConflictByTerm(100, 0)).toBe(0);
  });

  test("unstable entries become stable only if unchanged; slices span both parts", () => {
    const l = logWith([1, 1], [2, 2]);
    expect(l.unstableEntries().map((e) => e.index)).toEqual([3, 4]);
    expect(terms(l.slice(2, 5, 1e9))).toEqual([1, 2, 2]);
    l.stableTo(4, 3); // wrong term: those entries were replaced meanwhile, ignore
    expect(l.unstableEntries().length).toBe(2);
    l.stableTo(3, 2);
    expect(l.unstableEntries().map((e) => e.index)).toEqual([4]);
  });

  test("nextEnts hands out committed, unapplied entries; appliedTo is bounded by commit", () => {
    const l = logWith([1, 1, 1]);
    l.commitTo(2);
    expect(l.nextEnts().map((e) => e.index)).toEqual([1, 2]);
    l.appliedTo(2);
    expect(l.hasNextEnts()).toBe(false);
    expect(() => l.appliedTo(3)).toThrow(/invariant/);
  });

  test("leader commit only for the current term", () => {
    const l = logWith([1, 2]);
    expect(l.maybeCommit(2, 3)).toBe(false);
    expect(l.maybeCommit(2, 2)).toBe(true);
    expect(l.committed).toBe(2);
  });
});

describe("Progress", () => {
  test("probe pauses after one send and resumes on rejection with a hint", () => {
    const p = new Progress(0, 10, 4, 1e9);
    expect(p.state).toBe(ProgressState.Probe);
    p.probeSent = true;
    expect(p.isPaused()).toBe(true);
    expect(p.maybeDecrTo(5, 3)).toBe(false); // stale: not the outstanding probe (prev 9)
    expect(p.maybeDecrTo(9, 3)).toBe(true);
    expect(p.next).toBe(4);
    expect(p.isPaused()).toBe(false);
  });

  test("replicate: stale rejections ignored, real ones fall back to match+1", () => {
    const p = new Progress(0, 1, 4, 1e9);
    p.maybeUpdate(5);
    p.becomeReplicate();
    p.optimisticUpdate(9);
    expect(p.maybeDecrTo(4, 0)).toBe(false);
    expect(p.maybeDecrTo(7, 0)).toBe(true);
    expect(p.next).toBe(6);
  });

  test("inflights bound messages and bytes", () => {
    const f = new Inflights(2, 100);
    f.add(3, 10);
    f.add(5, 10);
    expect(f.full()).toBe(true);
    expect(() => f.add(6, 1)).toThrow(/invariant/);
    f.freeLE(3);
    expect(f.count()).toBe(1);
    f.add(8, 95);
    expect(f.full()).toBe(true); // 105 bytes >= 100
    f.freeLE(100);
    expect(f.count()).toBe(0);
  });
});
