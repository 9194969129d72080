#!/usr/bin/env bun
// etcd's own benchmark tool against a fresh real etcd and a fresh tsetcd, in the same run.
//
//   bun bench/run.ts [--only=etcd|tsetcd] [--scale=0.1] [--repeat=3] [--rows=REGEX] [--tsetcd=PATH] [--out=FILE]
//
// The machine is shared and noisy, so absolute numbers mean little: the point is the ratio,
// measured row by row with the two servers taking turns. Server CPU time per request comes
// from /proc/PID/stat (user + system, all threads), read just before and after each row.
// See bench/README.md.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { etcdctl } from "../test/harness/etcdctl.ts";
import { type Member, startMember } from "../test/harness/server.ts";
import { ETCDCTL_BIN, REPO_ROOT, isExecutable } from "../test/harness/tools.ts";
import {
  CLUSTER_HEADING,
  commonOptions,
  errorNotes,
  type Impl,
  PUT,
  RANGE_L,
  RANGE_S,
  RAW_DIR,
  type Row,
  TXN_PUT,
  LEASE_KEEPALIVE,
  cpuSeconds,
  ensureBenchmark,
  fmt,
  machineInfo,
  option,
  ratio,
  readSection,
  row,
  runBenchmark,
  WARMUP,
  scaledTotal,
} from "./lib.ts";

const ALL_ROWS: Row[] = [
  row("put, 1 client", 1, 1, 2_000, PUT),
  row("put, 1000 clients", 100, 1000, 100_000, PUT),
  row("range linearizable, 1 client", 1, 1, 10_000, RANGE_L),
  row("range linearizable, 1000 clients", 100, 1000, 100_000, RANGE_L),
  row("range serializable, 1 client", 1, 1, 10_000, RANGE_S),
  row("range serializable, 1000 clients", 100, 1000, 100_000, RANGE_S),
  row("txn-put, 1 client", 1, 1, 2_000, TXN_PUT),
  row("txn-put, 1000 clients", 100, 1000, 100_000, TXN_PUT),
  row("lease keep-alive, 1 client", 1, 1, 10_000, LEASE_KEEPALIVE),
  row("lease keep-alive, 1000 clients", 100, 1000, 100_000, LEASE_KEEPALIVE),
];

interface Measurement {
  reqPerSec: number | null;
  cpuUsPerReq: number | null;
  error?: string;
}

// ---- options -------------------------------------------------------------------------------

const { scale, repeat, binaries, impls } = commonOptions();
const outFile = option("out") ?? join(REPO_ROOT, "bench", "results.md");
/** --rows=REGEX: only the rows whose name matches (e.g. --rows=lease). */
const rowFilter = option("rows");
const ROWS = rowFilter === undefined ? ALL_ROWS : ALL_ROWS.filter((r) => new RegExp(rowFilter).test(r.name));
if (ROWS.length === 0) throw new Error(`--rows=${rowFilter} matches no row`);

// ---- helpers -------------------------------------------------------------------------------

/** The run with the median req/s of `repeat` runs: one outlier on a shared machine cannot set the row. */
async function runMedian(bench: string, member: Member, r: Row, impl: Impl, index: number): Promise<Measurement> {
  const runs: Measurement[] = [];
  for (let k = 0; k < repeat; k++) runs.push(await runOne(bench, member, r, impl, index, k));
  const failed = runs.find((m) => m.reqPerSec === null);
  if (failed) return failed;
  runs.sort((a, b) => a.reqPerSec! - b.reqPerSec!);
  return runs[Math.floor(runs.length / 2)]!;
}

async function runOne(bench: string, member: Member, r: Row, impl: Impl, index: number, attempt: number): Promise<Measurement> {
  const total = scaledTotal(r, scale);
  const before = cpuSeconds(member.pid);
  const res = await runBenchmark(bench, member.clientUrl, r.args, total, `${index + 1}-${impl}-${attempt + 1}.txt`);
  const after = cpuSeconds(member.pid);
  const cpuUsPerReq = res.reqPerSec !== null && before !== null && after !== null ? ((after - before) * 1e6) / total : null;
  return { reqPerSec: res.reqPerSec, cpuUsPerReq, ...(res.error ? { error: res.error } : {}) };
}

// ---- table ---------------------------------------------------------------------------------

function table(results: Array<Partial<Record<Impl, Measurement>>>): string[] {
  const lines = ["| test | etcd req/s | tsetcd req/s | ratio | etcd CPU µs/req | tsetcd CPU µs/req |", "| --- | ---: | ---: | ---: | ---: | ---: |"];
  ROWS.forEach((r, i) => {
    const e = results[i]?.etcd;
    const t = results[i]?.tsetcd;
    lines.push(
      `| ${r.name} | ${fmt(e?.reqPerSec)} | ${fmt(t?.reqPerSec)} | ${ratio(t?.reqPerSec, e?.reqPerSec)} | ${fmt(e?.cpuUsPerReq, 1)} | ${fmt(t?.cpuUsPerReq, 1)} |`,
    );
  });
  return lines;
}

// ---- main ----------------------------------------------------------------------------------

async function main(): Promise<void> {
  for (const impl of impls) {
    if (!isExecutable(binaries[impl])) throw new Error(`${impl}: ${binaries[impl]} is missing (npm run build / apt-get install etcd-server)`);
  }
  if (!isExecutable(ETCDCTL_BIN)) throw new Error(`${ETCDCTL_BIN} is missing (apt-get install etcd-client)`);
  const bench = await ensureBenchmark();

  // Fresh members with fresh data dirs, both up for the whole run; rows alternate between
  // them so slow drifts in machine load hit both alike.
  const members: Partial<Record<Impl, Member>> = {};
  for (const impl of impls) {
    const m = await startMember({ binary: binaries[impl], name: `bench-${impl}` });
    members[impl] = m;
    const put = await etcdctl(m.clientUrl, ["put", "foo", "bar"]); // the key the range rows read
    if (put.code !== 0) throw new Error(`${impl}: put foo failed: ${put.stderr}`);
    for (const [k, w] of WARMUP.entries()) await runBenchmark(bench, m.clientUrl, w.args, w.total, `0-warmup${k + 1}-${impl}.txt`);
  }

  const results: Array<Partial<Record<Impl, Measurement>>> = [];
  try {
    for (const [i, r] of ROWS.entries()) {
      results[i] = {};
      // Alternate who goes first: the second run of a row follows the first one's load.
      for (const impl of i % 2 === 0 ? impls : impls.toReversed()) {
        const m = await runMedian(bench, members[impl]!, r, impl, i);
        results[i]![impl] = m;
        const detail = m.error ? `  (${m.error})` : "";
        console.log(`${r.name} [${impl}]: ${fmt(m.reqPerSec)} req/s, ${fmt(m.cpuUsPerReq, 1)} µs CPU/req${detail}`);
      }
    }
  } finally {
    await Promise.all(Object.values(members).map((m) => m?.stop()));
  }

  const notes = errorNotes(results, ROWS, impls);
  const doc = [
    "# Benchmark: tsetcd vs etcd",
    "",
    ...machineInfo(binaries),
    `- scale: ${scale} (totals multiplied by it); each cell: median req/s of ${repeat} run(s)`,
    "",
    ...table(results),
    "",
    "ratio = tsetcd req/s ÷ etcd req/s (above 1: tsetcd is faster). CPU = server user+system time per request.",
    ...(notes.length ? ["", "Errors:", ...notes] : []),
    "",
    "Commands (`benchmark --endpoints=127.0.0.1:PORT <args> --total=N`):",
    "",
    ...ROWS.map((r) => `- ${r.name}: \`${r.args.join(" ")} --total=${scaledTotal(r, scale)}\``),
    "",
  ].join("\n");
  // bench/cluster.ts's section stays (it is rewritten only by a run of bench/cluster.ts).
  const clusterSection = readSection(outFile, CLUSTER_HEADING);
  writeFileSync(outFile, clusterSection ? `${doc}\n${clusterSection}` : doc);
  console.log(`\n${doc}`);
  console.log(`written to ${outFile}; raw benchmark output in ${RAW_DIR}/`);
}

await main();
