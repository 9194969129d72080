// Throughput of MvccStore on the SQLite backend, as the apply loop would
// drive it: one transaction per 1,000 requests, synchronous=FULL (one fsync
// per commit). Not a test; run with
//   bun bench/mvcc.ts [puts=200000] [valueBytes=256]

import { create } from "@bufbuild/protobuf";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  CompareSchema,
  Compare_CompareResult,
  Compare_CompareTarget,
  PutRequestSchema,
  RangeRequestSchema,
  RequestOpSchema,
  TxnRequestSchema,
} from "../src/gen/etcdserverpb/rpc_pb.ts";
import { openDatabase } from "../src/storage/db.ts";
import { SqliteKvBackend } from "../src/mvcc/sqlite-backend.ts";
import { MvccStore } from "../src/mvcc/store.ts";

const N = Number(process.argv[2] ?? 200_000);
const VALUE_BYTES = Number(process.argv[3] ?? 256);
const BATCH = 1000;
const KEYS = 10_000;

const dir = mkdtempSync(join(tmpdir(), "tsetcd-mvcc-bench-"));
const db = openDatabase(join(dir, "bench.db"));
const store = new MvccStore(new SqliteKvBackend(db));

const enc = new TextEncoder();
const keys = Array.from({ length: KEYS }, (_, i) => enc.encode(`key/${String((i * 7919) % KEYS).padStart(8, "0")}`));
const value = new Uint8Array(VALUE_BYTES).fill(120);
const puts = keys.map((key) => create(PutRequestSchema, { key, value }));
const gets = keys.map((key) => create(RangeRequestSchema, { key }));

/** Runs `f(i)` n times in transactions of BATCH and prints the rate. */
function run(name: string, n: number, f: (i: number) => void, txn = true): void {
  const t0 = performance.now();
  for (let b = 0; b < n; b += BATCH) {
    if (txn) db.exec("BEGIN");
    const end = Math.min(n, b + BATCH);
    for (let i = b; i < end; i++) f(i);
    if (txn) db.exec("COMMIT");
  }
  const s = (performance.now() - t0) / 1000;
  const rate = Math.round(n / s);
  console.log(`${name.padEnd(46)} ${String(rate).padStart(9)} ops/s  ${((s * 1e6) / n).toFixed(2).padStart(7)} µs/op`);
}

console.log(`MvccStore on SQLite: ${N} ops per case, ${VALUE_BYTES} B values, ${KEYS} keys, ${BATCH} ops per transaction`);
run("put, new keys", KEYS, (i) => store.put(puts[i]));
run("put, overwrite", N, (i) => store.put(puts[i % KEYS]));
store.onEvents = () => {};
run("put, overwrite, with an events listener", N, (i) => store.put(puts[i % KEYS]));
store.onEvents = undefined;
run("range, one key", N, (i) => store.range(gets[i % KEYS]));
run("range, one key, no transaction (autocommit)", N / 4, (i) => store.range(gets[i % KEYS]), false);
const sorted = [...keys].sort(Buffer.compare);
const scans = Array.from({ length: 100 }, (_, i) => create(RangeRequestSchema, { key: sorted[i * 50], rangeEnd: sorted[i * 50 + 100], limit: 100n }));
run("range, 100 keys (limit 100)", N / 20, (i) => store.range(scans[i % scans.length]));
const past = BigInt(store.rev - N / 2);
const pastGets = keys.map((key) => create(RangeRequestSchema, { key, revision: past }));
run("range, one key at a past revision", N / 4, (i) => store.range(pastGets[i % KEYS]));
const txns = keys.map((key) =>
  create(TxnRequestSchema, {
    compare: [
      create(CompareSchema, {
        key,
        target: Compare_CompareTarget.VERSION,
        result: Compare_CompareResult.GREATER,
        targetUnion: { case: "version", value: 0n },
      }),
    ],
    success: [create(RequestOpSchema, { request: { case: "requestPut", value: create(PutRequestSchema, { key, value }) } })],
  }),
);
run("txn: compare version + put", N / 2, (i) => store.txn(txns[i % KEYS]));
const t0 = performance.now();
db.exec("BEGIN");
store.compact(store.rev - 1000);
db.exec("COMMIT");
console.log(`compact ${store.rev - 1000} revisions: ${(performance.now() - t0).toFixed(0)} ms`);

db.close();
rmSync(dir, { recursive: true, force: true });
