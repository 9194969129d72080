// SqliteRaftStorage: answers exactly as MemoryStorage (the reference) under
// random operation sequences, survives reopening, leaves nothing behind on a
// rollback, and carries a real 3-node Raft cluster.
import type { Database } from "bun:sqlite";
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { bootstrapEntries, decodeConfChange } from "../raft/confchange.ts";
import { RawNode } from "../raft/node.ts";
import { MemoryStorage, type Storage } from "../raft/storage.ts";
import { type ConfState, EMPTY, type Entry, EntryType, type Message, MessageType, type NodeId, Role } from "../raft/types.ts";
import { mulberry32, randInt } from "../testing/prng.ts";
import { openDatabase } from "./db.ts";
import { SqliteRaftStorage, type SqliteRaftStorageOptions } from "./raft-storage.ts";

const dirs: string[] = [];
function tempFile(name = "db.sqlite"): string {
  const d = mkdtempSync(join(tmpdir(), "raft-storage-"));
  dirs.push(d);
  return join(d, name);
}
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** Run writes in one transaction and publish them, as the member does. */
function txn(db: Database, s: SqliteRaftStorage, fn: () => void): void {
  try {
    db.transaction(fn)();
  } catch (e) {
    s.rollbackCache();
    throw e;
  }
  s.committed();
}

const IDS: bigint[] = [1n, 2n, 3n, 0xffff_ffff_ffff_ffffn, 2n ** 63n, 2n ** 63n + 1n, 12345678901234567891n, 2n ** 53n + 1n];
const pickId = (rand: () => number): bigint => IDS[randInt(rand, IDS.length)];

function randConf(rand: () => number): ConfState {
  const voters = [...new Set(Array.from({ length: 1 + randInt(rand, 3) }, () => pickId(rand)))];
  const learners = rand() < 0.5 ? [] : [2n ** 64n - 2n];
  return { voters, learners };
}

function outcome<T>(fn: () => T): { v: T } | { err: string } {
  try {
    return { v: fn() };
  } catch (e) {
    return { err: `${(e as Error).constructor.name}: ${(e as Error).message}` };
  }
}

const plain = (es: Entry[]) => es.map((e) => ({ index: e.index, term: e.term, type: e.type, data: Array.from(e.data) }));

/** Every Storage method of `b` answers as `a` does. */
function expectSame(a: Storage, b: Storage, rand: () => number): void {
  expect(b.initialState()).toEqual(a.initialState());
  const first = a.firstIndex();
  const last = a.lastIndex();
  expect(b.firstIndex()).toBe(first);
  expect(b.lastIndex()).toBe(last);
  for (let i = Math.max(0, first - 3); i <= last + 2; i++) expect(outcome(() => b.term(i))).toEqual(outcome(() => a.term(i)));
  const ranges: [number, number, number][] = [[first, last + 1, Number.MAX_SAFE_INTEGER]];
  for (let k = 0; k < 6; k++) {
    const lo = Math.max(0, first - 2 + randInt(rand, last - first + 4));
    const hi = lo + randInt(rand, last - lo + 3);
    ranges.push([lo, hi, randInt(rand, 400)]);
  }
  for (const [lo, hi, max] of ranges) {
    const ea = outcome(() => plain(a.entries(lo, hi, max)));
    expect(outcome(() => plain(b.entries(lo, hi, max)))).toEqual(ea);
  }
  expect(b.snapshot().meta).toEqual(a.snapshot().meta);
  expect(b.snapshot().data.byteLength).toBe(0);
}

type Op =
  | { k: "append"; entries: Entry[] }
  | { k: "hard"; term: number; vote: bigint; commit: number }
  | { k: "snap"; index: number; conf: ConfState }
  | { k: "compact"; index: number }
  | { k: "apply"; index: number; term: number; conf: ConfState };

/** A random valid write, given the reference's current state. */
function genOp(rand: () => number, m: MemoryStorage): Op {
  const first = m.firstIndex();
  const last = m.lastIndex();
  const snapIdx = m.snapshot().meta.index;
  const r = rand();
  if (r < 0.55) {
    const k = Math.max(1, first - 2 + randInt(rand, last - first + 4)); // may start in the compacted part
    let t = m.term(Math.max(k - 1, first - 1)) + (rand() < 0.3 ? 1 : 0);
    const entries: Entry[] = [];
    for (let j = 0, n = 1 + randInt(rand, 8); j < n; j++) {
      if (rand() < 0.1) t++;
      const data = new Uint8Array(rand() < 0.2 ? 0 : randInt(rand, 200)).map(() => randInt(rand, 256));
      entries.push({ index: k + j, term: t, type: randInt(rand, 2) as EntryType, data });
    }
    return { k: "append", entries };
  }
  if (r < 0.7) return { k: "hard", term: randInt(rand, 1000), vote: rand() < 0.2 ? 0n : pickId(rand), commit: randInt(rand, last + 1) };
  if (r < 0.82 && snapIdx < last) return { k: "snap", index: snapIdx + 1 + randInt(rand, last - snapIdx), conf: randConf(rand) };
  const top = Math.min(snapIdx, last); // a truncation may have cut the log below the snapshot point
  if (r < 0.94 && top >= first - 1) return { k: "compact", index: Math.max(0, first - 2 + randInt(rand, top - first + 3)) };
  if (r < 0.97) {
    return { k: "apply", index: snapIdx + 1 + randInt(rand, Math.max(1, last - snapIdx + 5)), term: m.term(last) + randInt(rand, 3), conf: randConf(rand) };
  }
  return { k: "hard", term: 7, vote: 2n ** 64n - 1n, commit: 0 };
}

function applyMem(m: MemoryStorage, op: Op): void {
  if (op.k === "append") m.append(op.entries);
  else if (op.k === "hard") m.setHardState({ term: op.term, vote: op.vote, commit: op.commit });
  else if (op.k === "snap") m.createSnapshot(op.index, op.conf, EMPTY);
  else if (op.k === "compact") m.compact(op.index);
  else m.applySnapshot({ meta: { index: op.index, term: op.term, confState: op.conf }, data: EMPTY });
}

function applySql(s: SqliteRaftStorage, op: Op): void {
  if (op.k === "append") s.append(op.entries);
  else if (op.k === "hard") s.setHardState({ term: op.term, vote: op.vote, commit: op.commit });
  else if (op.k === "snap") s.createSnapshot(op.index, op.conf);
  else if (op.k === "compact") s.compact(op.index);
  else s.applySnapshot({ index: op.index, term: op.term, confState: op.conf });
}

const CACHES: SqliteRaftStorageOptions[] = [{}, { cacheEntries: 8, cacheBytes: 1000 }, { cacheEntries: 0 }, { cacheEntries: 3 }];

function runConformance(seed: number, steps: number): void {
  const rand = mulberry32(seed);
  const path = tempFile();
  const opts = CACHES[seed % CACHES.length];
  // Durability is not what this checks (reopening closes cleanly): skip the fsyncs to stay fast.
  const open = () => {
    const d = openDatabase(path);
    d.exec("PRAGMA synchronous = OFF");
    return d;
  };
  let db = open();
  let sql = new SqliteRaftStorage(db, opts);
  const mem = new MemoryStorage();
  let step = 0;
  let sqliteReads = 0;
  let overwrites = 0;
  try {
    for (; step < steps; step++) {
      const r = rand();
      if (r < 0.75) {
        const op = genOp(rand, mem);
        if (op.k === "append" && op.entries[0].index <= mem.lastIndex() && op.entries[op.entries.length - 1].index >= mem.firstIndex()) overwrites++;
        applyMem(mem, op);
        txn(db, sql, () => applySql(sql, op));
      } else if (r < 0.87) {
        // Several writes in one transaction, as one Ready (snapshot + entries + hard state) is.
        const ops: Op[] = [];
        for (let n = 2 + randInt(rand, 3); n > 0; n--) {
          const op = genOp(rand, mem);
          applyMem(mem, op);
          ops.push(op);
        }
        txn(db, sql, () => {
          for (const op of ops) applySql(sql, op);
        });
      } else if (r < 0.97) {
        // Writes that are rolled back leave no trace.
        const scratch = mem.clone();
        db.exec("BEGIN");
        for (let n = 1 + randInt(rand, 4); n > 0; n--) {
          const op = genOp(rand, scratch);
          applyMem(scratch, op);
          applySql(sql, op);
        }
        db.exec("ROLLBACK");
        sql.rollbackCache();
      } else {
        sqliteReads += sql.sqliteEntryReads;
        db.close();
        db = open();
        sql = new SqliteRaftStorage(db, opts);
      }
      expectSame(mem, sql, rand);
    }
    sqliteReads += sql.sqliteEntryReads;
    // The sequence did exercise both read paths and suffix overwrites.
    expect(overwrites).toBeGreaterThan(0);
    if ((opts.cacheEntries ?? 4096) < 10) expect(sqliteReads).toBeGreaterThan(0);
  } catch (e) {
    console.error(`conformance failed: seed ${seed} at step ${step} (replay: RAFT_STORAGE_SEED=${seed})`);
    throw e;
  } finally {
    db.close();
  }
}

describe("SqliteRaftStorage conformance with MemoryStorage", () => {
  const only = process.env.RAFT_STORAGE_SEED;
  const seeds = only ? [Number(only)] : Array.from({ length: 24 }, (_, i) => i + 1);
  for (let i = 0; i < seeds.length; i += 4) {
    const group = seeds.slice(i, i + 4);
    test(`random operations, seeds ${group.join(", ")}`, () => {
      for (const seed of group) runConformance(seed, 250);
    });
  }
});

const ent = (index: number, term: number, text = `e${index}`, type = EntryType.Normal): Entry => ({
  index,
  term,
  type,
  data: new TextEncoder().encode(text),
});

describe("SqliteRaftStorage", () => {
  test("reopen: hard state, entries, terms, bounds and snapshot metadata survive exactly", () => {
    const path = tempFile();
    let db = openDatabase(path);
    let s = new SqliteRaftStorage(db);
    const big = 0xffff_ffff_ffff_fffen;
    txn(db, s, () => {
      s.append([1, 1, 1, 2, 2, 3, 3, 3, 5, 5].map((t, i) => ent(i + 1, t)));
      s.append([ent(9, 4, "x", EntryType.ConfChange), ent(10, 4, ""), ent(11, 6)]); // overwrite a suffix
      s.setHardState({ term: 6, vote: big, commit: 8 });
      s.createSnapshot(7, { voters: [big, 2n ** 63n], learners: [12345678901234567891n] });
      s.compact(4);
    });
    const before = {
      init: s.initialState(),
      first: s.firstIndex(),
      last: s.lastIndex(),
      terms: Array.from({ length: 8 }, (_, i) => s.term(i + 4)),
      ents: plain(s.entries(5, 12, 1 << 30)),
      snap: s.snapshot().meta,
    };
    expect(before.first).toBe(5);
    expect(before.last).toBe(11);
    expect(before.terms).toEqual([2, 2, 3, 3, 3, 4, 4, 6]);
    expect(before.init.hardState.vote).toBe(big);
    db.close();
    db = openDatabase(path);
    s = new SqliteRaftStorage(db, { cacheEntries: 2 }); // most entries now come from SQLite
    expect({
      init: s.initialState(),
      first: s.firstIndex(),
      last: s.lastIndex(),
      terms: Array.from({ length: 8 }, (_, i) => s.term(i + 4)),
      ents: plain(s.entries(5, 12, 1 << 30)),
      snap: s.snapshot().meta,
    }).toEqual(before);
    expect(() => s.term(3)).toThrow(/compacted/);
    expect(() => s.term(12)).toThrow(/unavailable/);
    expect(s.entries(9, 10, 0)[0].type).toBe(EntryType.ConfChange);
    expect(s.entries(10, 11, 0)[0].data.byteLength).toBe(0);
    expect(s.sqliteEntryReads).toBeGreaterThan(0);
    // After applySnapshot the log is empty and the snapshot point answers term().
    txn(db, s, () => s.applySnapshot({ index: 20, term: 7, confState: { voters: [big], learners: [] } }));
    db.close();
    db = openDatabase(path);
    s = new SqliteRaftStorage(db);
    expect([s.firstIndex(), s.lastIndex(), s.term(20)]).toEqual([21, 20, 7]);
    expect(s.snapshot().meta).toEqual({ index: 20, term: 7, confState: { voters: [big], learners: [] } });
    expect(s.initialState().confState.voters[0]).toBe(big);
    db.close();
  });

  test("the tail cache serves recent entries; older ones come from SQLite", () => {
    const db = openDatabase(tempFile());
    const s = new SqliteRaftStorage(db, { cacheEntries: 100 });
    txn(db, s, () => s.append(Array.from({ length: 300 }, (_, i) => ent(i + 1, 1))));
    expect(s.cacheStats()).toEqual({ first: 201, entries: 100, bytes: expect.any(Number) });
    s.entries(201, 301, 1 << 30);
    expect(s.sqliteEntryReads).toBe(0);
    expect(plain(s.entries(150, 260, 1 << 30))).toEqual(plain(Array.from({ length: 110 }, (_, i) => ent(i + 150, 1))));
    expect(s.sqliteEntryReads).toBe(51);
    // The byte budget: the first entry always, then while the total fits.
    expect(s.entries(1, 301, 0).length).toBe(1);
    expect(s.entries(1, 301, 3 * 20).length).toBe(3); // "eN" entries: 2-4 bytes + 16
    db.close();
  });

  test("a rolled-back transaction leaves storage and cache as before", () => {
    const db = openDatabase(tempFile());
    const s = new SqliteRaftStorage(db, { cacheEntries: 50 });
    txn(db, s, () => {
      s.append(Array.from({ length: 80 }, (_, i) => ent(i + 1, i < 40 ? 1 : 2)));
      s.setHardState({ term: 2, vote: 1n, commit: 60 });
      s.createSnapshot(30, { voters: [1n], learners: [] });
    });
    const view = () => ({
      init: s.initialState(),
      bounds: [s.firstIndex(), s.lastIndex()],
      terms: Array.from({ length: 81 }, (_, i) => s.term(i)),
      ents: plain(s.entries(1, 81, 1 << 30)),
      snap: s.snapshot().meta,
      cache: s.cacheStats(),
    });
    const before = view();
    const rowsBefore = db.query("SELECT COUNT(*) AS n FROM log").get();

    db.exec("BEGIN");
    s.append([ent(70, 3, "new"), ent(71, 3, "new")]); // overwrite the tail
    s.setHardState({ term: 3, vote: 2n, commit: 71 });
    s.compact(30);
    s.createSnapshot(60, { voters: [1n, 2n], learners: [] });
    // Reads between writes and committed()/rollbackCache() are refused (they could only see the old state).
    expect(() => s.lastIndex()).toThrow(/read while writes are staged/);
    expect(() => s.entries(1, 2, 100)).toThrow(/read while writes are staged/);
    db.exec("ROLLBACK");
    // Forgetting to say what happened is caught on the next read.
    expect(() => s.lastIndex()).toThrow(/committed\(\) or rollbackCache\(\)/);
    s.rollbackCache();
    expect(view()).toEqual(before);
    expect(db.query("SELECT COUNT(*) AS n FROM log").get()).toEqual(rowsBefore);

    db.exec("BEGIN");
    s.applySnapshot({ index: 500, term: 9, confState: { voters: [3n], learners: [] } });
    db.exec("ROLLBACK");
    s.rollbackCache();
    expect(view()).toEqual(before);

    // A write that fails half-way (a gap) inside the member's transaction: roll back, nothing changes.
    expect(() =>
      txn(db, s, () => {
        s.append([ent(81, 2)]);
        s.append([ent(90, 2)]);
      }),
    ).toThrow(/gap/);
    expect(view()).toEqual(before);

    // Writes outside a transaction are refused; committed() inside one too.
    expect(() => s.append([ent(81, 2)])).toThrow(/inside the caller's transaction/);
    db.exec("BEGIN");
    s.append([ent(81, 2)]);
    expect(() => s.committed()).toThrow(/still open/);
    db.exec("COMMIT");
    s.committed();
    expect(s.lastIndex()).toBe(81);
    db.close();
  });
});

// ---- a 3-node Raft cluster, each node on its own database ----

interface Member {
  id: NodeId;
  path: string;
  db: Database;
  storage: SqliteRaftStorage;
  node: RawNode;
  conf: ConfState;
  applied: number;
}

const te = new TextEncoder();
const td = new TextDecoder();

/** The test's application: rows written by applied entries, in the same database (so the database is the snapshot). */
const APP_DDL = "CREATE TABLE IF NOT EXISTS test_app (idx INTEGER PRIMARY KEY, data BLOB NOT NULL)";
const APPLIED_KEY = "test_applied";

class Cluster {
  members = new Map<NodeId, Member>();
  queue: Message[] = [];
  down = new Set<NodeId>();
  readyCount = 0;

  constructor(readonly ids: NodeId[]) {
    for (const id of ids) this.start(id, true);
  }

  start(id: NodeId, fresh: boolean): Member {
    const path = this.members.get(id)?.path ?? tempFile(`n${id}.sqlite`);
    const db = openDatabase(path);
    // Clean shutdowns only here: WAL without an fsync per commit keeps the test fast.
    db.exec("PRAGMA synchronous = NORMAL");
    db.exec(APP_DDL);
    const storage = new SqliteRaftStorage(db, { cacheEntries: 64 });
    const conf: ConfState = { voters: [], learners: [] };
    if (fresh) {
      // A new cluster's log starts with its membership (committed, term 1), in every initial member.
      const boot = bootstrapEntries({ voters: this.ids, learners: [] });
      txn(db, storage, () => {
        storage.append(boot);
        storage.setHardState({ term: 1, vote: 0n, commit: boot.length });
      });
    }
    // The configuration comes from the snapshot plus the conf changes re-applied after it.
    const snap = storage.snapshot().meta;
    const node = new RawNode({
      id,
      storage,
      electionTick: 10,
      heartbeatTick: 1,
      rand: mulberry32(Number(id) * 7919),
      applied: snap.index,
      preVote: true,
      checkQuorum: true,
      maxSizePerMsg: 16 * 1024,
    });
    const applied = Number((db.query("SELECT value FROM meta WHERE name = ?1").get(APPLIED_KEY) as { value: number } | null)?.value ?? 0);
    const m: Member = { id, path, db, storage, node, conf: snap.index > 0 ? snap.confState : conf, applied };
    this.members.set(id, m);
    this.down.delete(id);
    return m;
  }

  stop(id: NodeId): void {
    this.members.get(id)!.db.close();
    this.down.add(id);
  }

  live(): Member[] {
    return [...this.members.values()].filter((m) => !this.down.has(m.id));
  }

  leader(): Member | undefined {
    return this.live().find((m) => m.node.raft.role === Role.Leader);
  }

  /** One turn of the driver loop for `m`: persist in one transaction, send, apply, advance. */
  handleReady(m: Member): boolean {
    const rd = m.node.ready();
    if (!rd) return false;
    this.readyCount++;
    txn(m.db, m.storage, () => {
      if (rd.snapshot) {
        m.storage.applySnapshot(rd.snapshot);
        this.installSnapshotData(m, rd.snapshot.meta.index);
      }
      m.storage.append(rd.entries);
      if (rd.hardState) m.storage.setHardState(rd.hardState);
    });
    if (rd.snapshot) m.conf = rd.snapshot.meta.confState;
    for (const msg of rd.messages) this.queue.push(msg);
    if (rd.committedEntries.length > 0) {
      // Apply: effects and the applied index in one transaction; entries at or below the applied index are already in.
      m.db.transaction(() => {
        for (const e of rd.committedEntries) {
          if (e.type === EntryType.ConfChange) m.conf = m.node.applyConfChange(decodeConfChange(e.data));
          else if (e.index > m.applied && e.data.byteLength > 0) m.db.query("INSERT INTO test_app (idx, data) VALUES (?1, ?2)").run(e.index, e.data);
          m.applied = Math.max(m.applied, e.index);
        }
        m.db.query("INSERT INTO meta (name, value) VALUES (?1, ?2) ON CONFLICT(name) DO UPDATE SET value = excluded.value").run(APPLIED_KEY, m.applied);
      })();
    }
    m.node.advance();
    return true;
  }

  /** Streaming the leader's database, reduced to what the test needs: the application rows up to the snapshot. */
  installSnapshotData(m: Member, index: number): void {
    const from = this.leader();
    expect(from).toBeDefined();
    const rows = from!.db.query("SELECT idx, data FROM test_app WHERE idx <= ?1").all(index) as { idx: number; data: Uint8Array }[];
    m.db.exec("DELETE FROM test_app");
    for (const r of rows) m.db.query("INSERT INTO test_app (idx, data) VALUES (?1, ?2)").run(r.idx, r.data);
    m.applied = index;
    m.db.query("INSERT INTO meta (name, value) VALUES (?1, ?2) ON CONFLICT(name) DO UPDATE SET value = excluded.value").run(APPLIED_KEY, index);
  }

  settle(): void {
    for (let guard = 0; guard < 1_000_000; guard++) {
      let progressed = false;
      for (const m of this.live()) progressed = this.handleReady(m) || progressed;
      const msg = this.queue.shift();
      if (msg) {
        if (this.down.has(msg.to) || !this.members.has(msg.to)) {
          if (msg.type === MessageType.Snap) this.members.get(msg.from)?.node.reportSnapshot(msg.to, false);
          continue;
        }
        this.members.get(msg.to)!.node.step(msg);
        if (msg.type === MessageType.Snap) this.members.get(msg.from)?.node.reportSnapshot(msg.to, true);
      } else if (!progressed) {
        return;
      }
    }
    throw new Error("cluster did not settle");
  }

  tick(n: number): void {
    for (let i = 0; i < n; i++) {
      for (const m of this.live()) m.node.tick();
      this.settle();
    }
  }

  /** Every live member: snapshot at its applied index and keep only `keep` entries before it. */
  snapshotAndCompact(keep: number): void {
    for (const m of this.live()) {
      let at = m.storage.snapshot().meta.index; // read before the transaction: reads inside it would throw
      txn(m.db, m.storage, () => {
        if (m.applied > at) at = m.storage.createSnapshot(m.applied, m.conf).meta.index;
        m.storage.compact(Math.max(0, at - keep));
      });
    }
  }

  appRows(m: Member): string[] {
    return (m.db.query("SELECT data FROM test_app ORDER BY idx").all() as { data: Uint8Array }[]).map((r) => td.decode(r.data));
  }
}

describe("Raft on SqliteRaftStorage", () => {
  test("3 nodes: elect, commit hundreds of proposals, a restarted follower catches up (entries, then snapshot)", () => {
    const c = new Cluster([1n, 2n, 3n]);
    c.settle(); // each member applies the bootstrap conf changes
    c.members.get(1n)!.node.campaign();
    c.settle();
    const leader = c.leader()!;
    expect(leader.id).toBe(1n);
    let next = 0;
    const propose = (n: number) => {
      for (let i = 0; i < n; i++) {
        const l = c.leader()!;
        expect(l.node.propose(te.encode(`v${next++}`)).ok).toBe(true);
        if (i % 7 === 6) c.settle(); // batches of several proposals per Ready
      }
      c.settle();
    };
    propose(200);
    for (const m of c.live()) expect(c.appRows(m).length).toBe(200);

    // Follower 3 goes down; the others go on; it restarts from its database and catches up from entries.
    const before = c.members.get(3n)!.storage.initialState();
    const last3 = c.members.get(3n)!.storage.lastIndex();
    c.stop(3n);
    propose(100);
    let m3 = c.start(3n, false);
    expect(m3.storage.initialState()).toEqual(before);
    expect(m3.storage.lastIndex()).toBe(last3);
    c.tick(3);
    propose(5);
    const want = Array.from({ length: next }, (_, i) => `v${i}`);
    for (const m of c.live()) expect(c.appRows(m)).toEqual(want);

    // Down again, while the others compact past its log: it needs a snapshot.
    c.stop(3n);
    propose(100);
    c.snapshotAndCompact(10);
    const lead = c.leader()!;
    expect(lead.storage.firstIndex()).toBeGreaterThan(m3.storage.lastIndex() + 1);
    m3 = c.start(3n, false);
    c.tick(3);
    propose(5);
    const all = Array.from({ length: next }, (_, i) => `v${i}`);
    for (const m of c.live()) {
      expect(c.appRows(m)).toEqual(all);
      expect(m.storage.lastIndex()).toBe(lead.storage.lastIndex());
      expect(m.storage.initialState().hardState.commit).toBe(lead.storage.lastIndex());
    }
    expect(m3.storage.snapshot().meta.index).toBeGreaterThan(0); // it installed one
    expect(m3.conf.voters.slice().sort()).toEqual([1n, 2n, 3n]);

    // And once more from its database after the snapshot: the configuration comes from the snapshot.
    c.stop(3n);
    m3 = c.start(3n, false);
    expect(m3.node.raft.log.lastIndex()).toBe(lead.storage.lastIndex());
    c.tick(2);
    propose(3);
    expect(c.appRows(m3).length).toBe(next);
    for (const m of c.live()) m.db.close();
  }, 30_000);
});
