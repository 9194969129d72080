#!/usr/bin/env bun
// etcd's own benchmark tool against a fresh real etcd and a fresh tsetcd, in the same run.
//
//   bun bench/run.ts [--only=etcd|tsetcd] [--scale=0.1] [--repeat=3] [--tsetcd=PATH] [--out=FILE]
//
// The machine is shared and noisy, so absolute numbers mean little: the point is the ratio,
// measured row by row with the two servers taking turns. Server CPU time per request comes
// from /proc/PID/stat (user + system, all threads), read just before and after each row.
// See bench/README.md.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import { etcdctl } from "../test/harness/etcdctl.ts";
import { type Member, startMember } from "../test/harness/server.ts";
import { BENCHMARK_BIN, ETCD_BIN, ETCDCTL_BIN, REPO_ROOT, SUBJECT_BIN, isExecutable } from "../test/harness/tools.ts";

/** One benchmark invocation: global flags, then the sub-command with everything but --total. */
interface Row {
  name: string;
  args: string[];
  total: number;
  clients: number;
}

function row(name: string, conns: number, clients: number, total: number, command: string[]): Row {
  return { name, args: [`--conns=${conns}`, `--clients=${clients}`, ...command], total, clients };
}

const PUT = ["put", "--key-size=8", "--sequential-keys", "--val-size=256"];
// --key-space-size spreads the txns over many keys; with its default of 1 every txn rewrites one key.
const TXN_PUT = ["txn-put", "--txn-ops=1", "--key-size=8", "--val-size=256", "--key-space-size=100000"];

const ROWS: Row[] = [
  row("put, 1 client", 1, 1, 2_000, PUT),
  row("put, 1000 clients", 100, 1000, 100_000, PUT),
  row("range linearizable, 1 client", 1, 1, 10_000, ["range", "foo", "--consistency=l"]),
  row("range linearizable, 1000 clients", 100, 1000, 100_000, ["range", "foo", "--consistency=l"]),
  row("range serializable, 1 client", 1, 1, 10_000, ["range", "foo", "--consistency=s"]),
  row("range serializable, 1000 clients", 100, 1000, 100_000, ["range", "foo", "--consistency=s"]),
  row("txn-put, 1 client", 1, 1, 2_000, TXN_PUT),
  row("txn-put, 1000 clients", 100, 1000, 100_000, TXN_PUT),
];

/** Backstop per benchmark run; a healthy run of the largest row takes well under a minute. */
const RUN_TIMEOUT_MS = 10 * 60_000;
const CLK_TCK = 100; // Linux USER_HZ: /proc/PID/stat counts CPU time in 1/100 s on every arch

type Impl = "etcd" | "tsetcd";

interface Measurement {
  reqPerSec: number | null;
  cpuUsPerReq: number | null;
  error?: string;
}

// ---- options -------------------------------------------------------------------------------

function option(name: string): string | undefined {
  const prefix = `--${name}=`;
  return process.argv.slice(2).find((a) => a.startsWith(prefix))?.slice(prefix.length);
}

const only = option("only");
if (only !== undefined && only !== "etcd" && only !== "tsetcd") throw new Error(`--only must be etcd or tsetcd, not ${only}`);
const scale = Number(option("scale") ?? "1");
if (!(scale > 0 && scale <= 10)) throw new Error(`--scale must be a number in (0, 10], not ${option("scale")}`);
const repeat = Number(option("repeat") ?? "1");
if (!(Number.isInteger(repeat) && repeat >= 1 && repeat <= 9)) throw new Error(`--repeat must be 1..9, not ${option("repeat")}`);
const binaries: Record<Impl, string> = { etcd: ETCD_BIN, tsetcd: option("tsetcd") ?? SUBJECT_BIN };
const impls: Impl[] = only ? [only] : ["etcd", "tsetcd"];
const outFile = option("out") ?? join(REPO_ROOT, "bench", "results.md");
const rawDir = join(REPO_ROOT, ".bench-out"); // full benchmark output per run (git-ignored)

// ---- helpers -------------------------------------------------------------------------------

function cpuTicks(pid: number): number {
  // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return Number(fields[11]) + Number(fields[12]);
}

async function ensureBenchmark(): Promise<string> {
  if (isExecutable(BENCHMARK_BIN)) return BENCHMARK_BIN;
  const script = join(REPO_ROOT, "..", "shared", "tools", "build-etcd-benchmark.sh");
  console.log(`building etcd's benchmark tool with ${script} (about a minute)`);
  const proc = Bun.spawn(["bash", script, BENCHMARK_BIN], { stdout: "inherit", stderr: "inherit" });
  const timer = setTimeout(() => proc.kill("SIGKILL"), 15 * 60_000);
  await proc.exited;
  clearTimeout(timer);
  if (!isExecutable(BENCHMARK_BIN)) throw new Error(`could not build ${BENCHMARK_BIN}`);
  return BENCHMARK_BIN;
}

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
  const total = Math.max(r.clients, Math.round(r.total * scale));
  const endpoint = member.clientUrl.replace(/^http:\/\//, "");
  const args = [`--endpoints=${endpoint}`, ...r.args, `--total=${total}`];
  const before = cpuTicks(member.pid);
  const proc = Bun.spawn([bench, ...args], { stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    proc.kill("SIGKILL");
  }, RUN_TIMEOUT_MS);
  const [stdout, stderr] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
  await proc.exited;
  clearTimeout(timer);
  const cpuSec = (cpuTicks(member.pid) - before) / CLK_TCK;
  mkdirSync(rawDir, { recursive: true });
  writeFileSync(join(rawDir, `${index + 1}-${impl}-${attempt + 1}.txt`), `${bench} ${args.join(" ")}\n\n${stdout}\n${stderr.slice(-10_000)}`);

  const rps = /Requests\/sec:\s*([\d.]+)/.exec(stdout);
  if (timedOut || proc.exitCode !== 0 || !rps) {
    const why = timedOut ? "timeout" : `exit ${proc.exitCode ?? proc.signalCode}`;
    return { reqPerSec: null, cpuUsPerReq: null, error: `${why}: ${(stderr || stdout).trim().split("\n").slice(-3).join(" / ")}` };
  }
  // A run whose requests partly failed still prints Requests/sec; report it, not a number.
  const errors = /Error distribution:[\s\S]*/.exec(stdout);
  return {
    reqPerSec: Number(rps[1]),
    cpuUsPerReq: (cpuSec * 1e6) / total,
    ...(errors ? { error: errors[0].trim().split("\n").slice(0, 3).join(" / ") } : {}),
  };
}

function firstLine(cmd: string[]): string {
  try {
    const r = Bun.spawnSync(cmd, { stdout: "pipe", stderr: "pipe", timeout: 5000 });
    return (r.stdout.toString() || r.stderr.toString()).split("\n")[0]?.trim() || "?";
  } catch {
    return "?";
  }
}

function machineInfo(): string[] {
  const cpuinfo = existsSync("/proc/cpuinfo") ? readFileSync("/proc/cpuinfo", "utf8") : "";
  const model = /^model name\s*:\s*(.*)$/m.exec(cpuinfo)?.[1] ?? "?";
  const lines = [
    `- date: ${new Date().toISOString()}`,
    `- machine: ${availableParallelism()} CPUs (nproc), ${model}`,
    `- bun ${Bun.version}; benchmark: etcd 3.4.23 tools/benchmark (${BENCHMARK_BIN})`,
    `- etcd: ${binaries.etcd} (${firstLine([binaries.etcd, "--version"])})`,
    `- tsetcd: ${binaries.tsetcd}${binaries.tsetcd === ETCD_BIN ? " (real etcd: a harness self-check)" : ""}`,
    `- scale: ${scale} (totals multiplied by it); each cell: median req/s of ${repeat} run(s)`,
  ];
  return lines;
}

// ---- table ---------------------------------------------------------------------------------

const fmt = (n: number | null | undefined, digits = 0) =>
  n === null || n === undefined ? "—" : n.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits });

function table(results: Array<Partial<Record<Impl, Measurement>>>): string[] {
  const lines = [
    "| test | etcd req/s | tsetcd req/s | ratio | etcd CPU µs/req | tsetcd CPU µs/req |",
    "| --- | ---: | ---: | ---: | ---: | ---: |",
  ];
  ROWS.forEach((r, i) => {
    const e = results[i]?.etcd;
    const t = results[i]?.tsetcd;
    const ratio = e?.reqPerSec && t?.reqPerSec ? `${(t.reqPerSec / e.reqPerSec).toFixed(2)}x` : "—";
    lines.push(`| ${r.name} | ${fmt(e?.reqPerSec)} | ${fmt(t?.reqPerSec)} | ${ratio} | ${fmt(e?.cpuUsPerReq, 1)} | ${fmt(t?.cpuUsPerReq, 1)} |`);
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

  const notes = results.flatMap((res, i) =>
    impls.flatMap((impl) => (res[impl]?.error ? [`- ${ROWS[i]!.name} [${impl}]: ${res[impl]!.error}`] : [])),
  );
  const doc = [
    "# Benchmark: tsetcd vs etcd",
    "",
    ...machineInfo(),
    "",
    ...table(results),
    "",
    "ratio = tsetcd req/s ÷ etcd req/s (above 1: tsetcd is faster). CPU = server user+system time per request.",
    ...(notes.length ? ["", "Errors:", ...notes] : []),
    "",
    "Commands (`benchmark --endpoints=127.0.0.1:PORT <args> --total=N`):",
    "",
    ...ROWS.map((r) => `- ${r.name}: \`${r.args.join(" ")} --total=${Math.max(r.clients, Math.round(r.total * scale))}\``),
    "",
  ].join("\n");
  writeFileSync(outFile, doc);
  console.log(`\n${doc}`);
  console.log(`written to ${outFile}; raw benchmark output in ${rawDir}/`);
}

await main();
