#!/usr/bin/env bun
// etcd's own `benchmark watch` against a fresh real etcd and a fresh tsetcd, in the same run.
//
//   bun bench/watch.ts [--only=etcd|tsetcd] [--scale=0.1] [--repeat=3] [--tsetcd=PATH]
//
// `benchmark watch` opens --streams watch streams of --watch-per-stream watchers each over
// --watched-key-total keys, then makes --put-total puts to those keys (at most --put-rate per
// second; this build needs the flag) and times every event each watcher receives. Its second
// summary, "Watch events received", gives events per second; that is the number compared.
// Server CPU per event comes from /proc/PID/stat, read just before and after each row.
// The table goes to stdout (and --out=FILE if given); raw outputs to .bench-out/.
import { writeFileSync } from "node:fs";
import { type Member, startMember } from "../test/harness/server.ts";
import { isExecutable } from "../test/harness/tools.ts";
import {
  type Impl,
  RAW_DIR,
  commonOptions,
  cpuSeconds,
  errorNotes,
  ensureBenchmark,
  fmt,
  loadAverage,
  machineInfo,
  option,
  ratio,
  runBenchmark,
} from "./lib.ts";

interface WatchRow {
  name: string;
  /** Global flags and the watch sub-command's flags, except --put-total. */
  args: string[];
  putTotal: number;
  /** Watchers per watched key: events = puts x this (every put hits a watched key). */
  watchersPerKey: number;
}

const STREAMS = 10;
const PER_STREAM = 100;
const WATCHERS = STREAMS * PER_STREAM;

function watchRow(name: string, keys: number, putTotal: number): WatchRow {
  return {
    name,
    args: [
      "--conns=10",
      "--clients=10",
      "watch",
      `--streams=${STREAMS}`,
      `--watch-per-stream=${PER_STREAM}`,
      `--watched-key-total=${keys}`,
      // Distinct keys need a key space as large and sequential keys; with the default space of
      // 1 every "watched key" is the same key.
      `--key-space-size=${keys}`,
      "--sequential-keys",
      "--put-rate=100000",
    ],
    putTotal,
    watchersPerKey: WATCHERS / keys,
  };
}

const ROWS: WatchRow[] = [watchRow("1 key, 1000 watchers on 10 streams", 1, 1_000), watchRow("100 keys, 10 watchers each (1000 on 10 streams)", 100, 10_000)];

interface Measurement {
  eventsPerSec: number | null;
  cpuUsPerEvent: number | null;
  seconds: number | null;
  error?: string;
}

// ---- options -------------------------------------------------------------------------------

const { scale, repeat, binaries, impls } = commonOptions();
const outFile = option("out");

const putTotal = (r: WatchRow) => Math.max(1, Math.round(r.putTotal * scale));
const eventsOf = (r: WatchRow) => putTotal(r) * r.watchersPerKey;

// ---- one run -------------------------------------------------------------------------------

/** The "Watch events received" part of the output: its Requests/sec is events per second. */
function eventsSummary(raw: string): { perSec: number | null; seconds: number | null } {
  const at = raw.indexOf("Watch events received summary:");
  if (at < 0) return { perSec: null, seconds: null };
  const part = raw.slice(at);
  const perSec = /Requests\/sec:\s*([\d.]+)/.exec(part);
  const total = /Total:\s*([\d.]+) secs/.exec(part);
  return { perSec: perSec ? Number(perSec[1]) : null, seconds: total ? Number(total[1]) : null };
}

async function runOne(bench: string, member: Member, r: WatchRow, impl: Impl, index: number, attempt: number): Promise<Measurement> {
  const raw = `watch-${index + 1}-${impl}-${attempt + 1}.txt`;
  const before = cpuSeconds(member.pid);
  const res = await runBenchmark(bench, member.clientUrl, [...r.args, `--put-total=${putTotal(r)}`], null, raw);
  const after = cpuSeconds(member.pid);
  const text = await Bun.file(`${RAW_DIR}/${raw}`).text();
  const { perSec, seconds } = eventsSummary(text);
  const cpuUsPerEvent = perSec !== null && before !== null && after !== null ? ((after - before) * 1e6) / eventsOf(r) : null;
  // runBenchmark's own Requests/sec is the watch-creation summary's; only its error counts here.
  const error = res.error ?? (perSec === null ? "no 'Watch events received summary' in the output" : undefined);
  return { eventsPerSec: perSec, cpuUsPerEvent, seconds, ...(error ? { error } : {}) };
}

async function runMedian(bench: string, member: Member, r: WatchRow, impl: Impl, index: number): Promise<Measurement> {
  const runs: Measurement[] = [];
  for (let k = 0; k < repeat; k++) runs.push(await runOne(bench, member, r, impl, index, k));
  const failed = runs.find((m) => m.eventsPerSec === null);
  if (failed) return failed;
  runs.sort((a, b) => a.eventsPerSec! - b.eventsPerSec!);
  return runs[Math.floor(runs.length / 2)]!;
}

// ---- main ----------------------------------------------------------------------------------

function table(results: Array<Partial<Record<Impl, Measurement>>>): string[] {
  const lines = [
    "| test | events | etcd events/s | tsetcd events/s | ratio | etcd CPU µs/event | tsetcd CPU µs/event |",
    "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
  ];
  ROWS.forEach((r, i) => {
    const e = results[i]?.etcd;
    const t = results[i]?.tsetcd;
    lines.push(
      `| ${r.name} | ${fmt(eventsOf(r))} | ${fmt(e?.eventsPerSec)} | ${fmt(t?.eventsPerSec)} | ${ratio(t?.eventsPerSec, e?.eventsPerSec)} | ${fmt(e?.cpuUsPerEvent, 2)} | ${fmt(t?.cpuUsPerEvent, 2)} |`,
    );
  });
  return lines;
}

async function main(): Promise<void> {
  for (const impl of impls) {
    if (!isExecutable(binaries[impl])) throw new Error(`${impl}: ${binaries[impl]} is missing (npm run build / apt-get install etcd-server)`);
  }
  const bench = await ensureBenchmark();
  const load = loadAverage();

  // Fresh single members with fresh data dirs, up for the whole run; rows alternate who goes first.
  const members: Partial<Record<Impl, Member>> = {};
  for (const impl of impls) members[impl] = await startMember({ binary: binaries[impl], name: `bench-watch-${impl}` });

  const results: Array<Partial<Record<Impl, Measurement>>> = [];
  try {
    for (const [i, r] of ROWS.entries()) {
      results[i] = {};
      for (const impl of i % 2 === 0 ? impls : impls.toReversed()) {
        const m = await runMedian(bench, members[impl]!, r, impl, i);
        results[i]![impl] = m;
        const detail = m.error ? `  (${m.error})` : "";
        console.log(`${r.name} [${impl}]: ${fmt(m.eventsPerSec)} events/s over ${fmt(m.seconds, 2)} s, ${fmt(m.cpuUsPerEvent, 2)} µs CPU/event${detail}`);
      }
    }
  } finally {
    await Promise.all(Object.values(members).map((m) => m?.stop()));
  }

  const notes = errorNotes(results, ROWS, impls);
  const doc = [
    "# Watch benchmark: tsetcd vs etcd",
    "",
    ...machineInfo(binaries),
    `- load average at start: ${load}`,
    `- scale: ${scale} (--put-total multiplied by it); each cell: median of ${repeat} run(s)`,
    "",
    ...table(results),
    "",
    "events/s = the benchmark's 'Watch events received summary' Requests/sec; ratio = tsetcd ÷ etcd (above 1: tsetcd is faster).",
    "CPU = server user+system time during the row ÷ events delivered.",
    ...(notes.length ? ["", "Errors:", ...notes] : []),
    "",
    "Commands (`benchmark --endpoints=127.0.0.1:PORT <args>`):",
    "",
    ...ROWS.map((r) => `- ${r.name}: \`${r.args.join(" ")} --put-total=${putTotal(r)}\``),
    "",
  ].join("\n");
  console.log(`\n${doc}`);
  if (outFile) {
    writeFileSync(outFile, doc);
    console.log(`written to ${outFile}`);
  }
  console.log(`raw benchmark output in ${RAW_DIR}/`);
}

await main();
