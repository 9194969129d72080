// Benchmark of SqliteRaftStorage (not a test).
//   bun bench/raft-storage.ts [--seconds=2] [--dir=/tmp]
// 1. append throughput: 1-KiB entries, one transaction per batch (append +
//    setHardState, as one Ready), batches of 1 and 64, synchronous=FULL as
//    openDatabase() sets it (each commit fsyncs the WAL); then the same with
//    synchronous=OFF, to show the CPU cost apart from the fsync.
// 2. entries() read speed: 64-entry reads from the tail cache vs from SQLite.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Database } from "bun:sqlite";
import { openDatabase } from "../src/storage/db.ts";
import { SqliteRaftStorage } from "../src/storage/raft-storage.ts";
import { type Entry, EntryType } from "../src/raft/types.ts";

const arg = (name: string, dflt: string) => {
  const a = process.argv.find((s) => s.startsWith(`--${name}=`));
  return a ? a.slice(name.length + 3) : dflt;
};
const seconds = Number(arg("seconds", "2"));
const dir = mkdtempSync(join(arg("dir", tmpdir()), "bench-raft-storage-"));
const payload = new Uint8Array(1024).map((_, i) => i & 0xff);
const fmt = (n: number) => Math.round(n).toLocaleString("en-US");

function txn(db: Database, s: SqliteRaftStorage, fn: () => void): void {
  db.transaction(fn)();
  s.committed();
}

function appendBench(batch: number, syncOff = false): void {
  const db = openDatabase(join(dir, `append-${batch}-${syncOff}.sqlite`));
  if (syncOff) db.exec("PRAGMA synchronous = OFF");
  const sync = (db.query("PRAGMA synchronous").get() as { synchronous: number }).synchronous;
  const s = new SqliteRaftStorage(db);
  let index = 0;
  let txns = 0;
  const end = performance.now() + seconds * 1000;
  const t0 = performance.now();
  while (performance.now() < end) {
    const ents: Entry[] = [];
    for (let i = 0; i < batch; i++) ents.push({ index: ++index, term: 1, type: EntryType.Normal, data: payload });
    txn(db, s, () => {
      s.append(ents);
      s.setHardState({ term: 1, vote: 1n, commit: index - 1 });
    });
    txns++;
  }
  const secs = (performance.now() - t0) / 1000;
  console.log(
    `append, batch ${String(batch).padStart(2)}: ${fmt(index / secs).padStart(9)} entries/s, ${fmt(txns / secs).padStart(7)} txns/s ` +
      `(${((secs * 1e6) / txns).toFixed(0)} us/txn, synchronous=${sync === 2 ? "FULL" : sync === 0 ? "OFF: CPU cost, no fsync" : sync})`,
  );
  db.close();
}

function readBench(): void {
  const db = openDatabase(join(dir, "read.sqlite"));
  db.exec("PRAGMA synchronous = OFF"); // only the fill
  const n = 20_000;
  const cached = new SqliteRaftStorage(db); // default bounds: the last 4096 entries
  txn(db, cached, () => {
    const ents: Entry[] = [];
    for (let i = 1; i <= n; i++) ents.push({ index: i, term: 1, type: EntryType.Normal, data: payload });
    cached.append(ents);
  });
  const uncached = new SqliteRaftStorage(db, { cacheEntries: 0 });
  const cs = cached.cacheStats();
  const run = (label: string, s: SqliteRaftStorage, lo: number, hi: number) => {
    let read = 0;
    let i = lo;
    const end = performance.now() + seconds * 1000;
    const t0 = performance.now();
    while (performance.now() < end) {
      for (let k = 0; k < 100; k++) {
        read += s.entries(i, i + 64, 1 << 20).length;
        i += 64;
        if (i + 64 > hi) i = lo;
      }
    }
    const secs = (performance.now() - t0) / 1000;
    console.log(`entries(), 64 per call, ${label}: ${fmt(read / secs).padStart(10)} entries/s (${((secs * 1e6) / (read / 64)).toFixed(1)} us/call)`);
  };
  run("tail cache", cached, cs.first, n + 1);
  run("SQLite    ", uncached, 1, n + 1);
  db.close();
}

try {
  console.log(`SqliteRaftStorage, 1-KiB entries, ${seconds} s per figure, files in ${dir}`);
  appendBench(1);
  appendBench(64);
  appendBench(1, true);
  appendBench(64, true);
  readBench();
} finally {
  rmSync(dir, { recursive: true, force: true });
}
