// Pieces shared by bench/run.ts (one member each) and bench/cluster.ts (3-member clusters):
// command-line options, the benchmark rows' arguments, running etcd's benchmark tool once and
// parsing what it prints, process CPU time, number formatting and the machine description.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { availableParallelism, homedir } from "node:os";
import { join, relative } from "node:path";
import { BENCHMARK_BIN, ETCD_BIN, REPO_ROOT, SUBJECT_BIN, isExecutable } from "../test/harness/tools.ts";

/** One benchmark invocation: global flags, then the sub-command with everything but --total. */
export interface Row {
  name: string;
  args: string[];
  total: number;
  clients: number;
}

export function row(name: string, conns: number, clients: number, total: number, command: string[]): Row {
  return { name, args: [`--conns=${conns}`, `--clients=${clients}`, ...command], total, clients };
}

export const PUT = ["put", "--key-size=8", "--sequential-keys", "--val-size=256"];
// --key-space-size spreads the txns over many keys; with its default of 1 every txn rewrites one key.
export const TXN_PUT = ["txn-put", "--txn-ops=1", "--key-size=8", "--val-size=256", "--key-space-size=100000"];
export const RANGE_L = ["range", "foo", "--consistency=l"];
export const RANGE_S = ["range", "foo", "--consistency=s"];
/** Each client grants one lease (TTL 100) and keeps it alive with one KeepAliveOnce per request. */
export const LEASE_KEEPALIVE = ["lease-keepalive"];

/** The --total a row runs with at a given scale (never fewer requests than clients). */
export function scaledTotal(r: Row, scale: number): number {
  return Math.max(r.clients, Math.round(r.total * scale));
}

/** Backstop per benchmark run; a healthy run of the largest row takes well under a minute. */
export const RUN_TIMEOUT_MS = 10 * 60_000;
const CLK_TCK = 100; // Linux USER_HZ: /proc/PID/stat counts CPU time in 1/100 s on every arch

/** Full benchmark output per run (git-ignored). */
export const RAW_DIR = join(REPO_ROOT, ".bench-out");

// ---- options -------------------------------------------------------------------------------

/** Value of `--name=value` on the command line. */
export function option(name: string): string | undefined {
  const prefix = `--${name}=`;
  return process.argv
    .slice(2)
    .find((a) => a.startsWith(prefix))
    ?.slice(prefix.length);
}

// ---- processes -----------------------------------------------------------------------------

/** User + system CPU time of a process (all threads), in seconds; null once it is gone. */
export function cpuSeconds(pid: number | undefined): number | null {
  if (pid === undefined) return null;
  try {
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
  } catch {
    return null;
  }
}

/** etcd's tools/benchmark, built with ../shared/tools/build-etcd-benchmark.sh when missing. */
export async function ensureBenchmark(): Promise<string> {
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

// ---- one benchmark run ---------------------------------------------------------------------

export interface BenchResult {
  /** The benchmark's Requests/sec; null when the run failed. */
  reqPerSec: number | null;
  /** Latencies in seconds, from the benchmark's summary (null when absent). */
  latency: { average: number | null; p50: number | null; p99: number | null; slowest: number | null };
  /** Why the run failed, or the start of its "Error distribution" when some requests failed. */
  error?: string;
}

function secs(stdout: string, re: RegExp): number | null {
  const m = re.exec(stdout);
  return m ? Number(m[1]) : null;
}

/**
 * Run `benchmark --endpoints=ENDPOINT ...args --total=TOTAL` once (killed after timeoutMs),
 * keep its output in RAW_DIR/rawName, and parse it. `total` null: no --total (`watch` has none).
 */
export async function runBenchmark(
  bench: string,
  endpoint: string,
  args: string[],
  total: number | null,
  rawName: string,
  timeoutMs = RUN_TIMEOUT_MS,
): Promise<BenchResult> {
  const argv = [`--endpoints=${endpoint.replace(/^https?:\/\//, "")}`, ...args, ...(total === null ? [] : [`--total=${total}`])];
  const proc = Bun.spawn([bench, ...argv], { stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    proc.kill("SIGKILL");
  }, timeoutMs);
  const [stdout, stderr] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
  await proc.exited;
  clearTimeout(timer);
  mkdirSync(RAW_DIR, { recursive: true });
  writeFileSync(join(RAW_DIR, rawName), `${bench} ${argv.join(" ")}\n\n${stdout}\n${stderr.slice(-10_000)}`);

  const latency = {
    average: secs(stdout, /Average:\s*([\d.]+) secs/),
    p50: secs(stdout, /\b50% in ([\d.]+) secs/),
    p99: secs(stdout, /\b99% in ([\d.]+) secs/),
    slowest: secs(stdout, /Slowest:\s*([\d.]+) secs/),
  };
  const rps = /Requests\/sec:\s*([\d.]+)/.exec(stdout);
  if (timedOut || proc.exitCode !== 0 || !rps) {
    const why = timedOut ? "timeout" : `exit ${proc.exitCode ?? proc.signalCode}`;
    return { reqPerSec: null, latency, error: `${why}: ${(stderr || stdout).trim().split("\n").slice(-3).join(" / ")}` };
  }
  // A run whose requests partly failed still prints Requests/sec; report it, not a number.
  const errors = /Error distribution:[\s\S]*/.exec(stdout);
  return {
    reqPerSec: Number(rps[1]),
    latency,
    ...(errors ? { error: errors[0].trim().split("\n").slice(0, 3).join(" / ") } : {}),
  };
}

// ---- output --------------------------------------------------------------------------------

export const fmt = (n: number | null | undefined, digits = 0) =>
  n === null || n === undefined || !Number.isFinite(n) ? "—" : n.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits });

/** "1.35x" = a ÷ b, or "—". */
export function ratio(a: number | null | undefined, b: number | null | undefined): string {
  return a && b ? `${(a / b).toFixed(2)}x` : "—";
}

export function firstLine(cmd: string[]): string {
  try {
    const r = Bun.spawnSync(cmd, { stdout: "pipe", stderr: "pipe", timeout: 5000 });
    return (r.stdout.toString() || r.stderr.toString()).split("\n")[0]?.trim() || "?";
  } catch {
    return "?";
  }
}

/** Markdown bullet lines: date, machine, bun, benchmark tool, both servers. */
export function machineInfo(binaries: { etcd: string; tsetcd: string }): string[] {
  const cpuinfo = existsSync("/proc/cpuinfo") ? readFileSync("/proc/cpuinfo", "utf8") : "";
  const model = /^model name\s*:\s*(.*)$/m.exec(cpuinfo)?.[1] ?? "?";
  return [
    `- date: ${new Date().toISOString()}`,
    `- machine: ${availableParallelism()} CPUs (nproc), ${model}`,
    `- bun ${Bun.version}; benchmark: etcd 3.4.23 tools/benchmark (${shownPath(BENCHMARK_BIN)})`,
    `- etcd: ${binaries.etcd} (${firstLine([binaries.etcd, "--version"])})`,
    `- tsetcd: ${shownPath(binaries.tsetcd)}${binaries.tsetcd === ETCD_BIN ? " (real etcd: a harness self-check)" : ""}`,
  ];
}

/** The load average at the start of a run: benchmarks on a busy machine say little. */
export function loadAverage(): string {
  try {
    return readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");
  } catch {
    return "?";
  }
}

// ---- results.md ----------------------------------------------------------------------------

/** bench/cluster.ts owns this section of results.md; bench/run.ts rewrites the rest and keeps it. */
export const CLUSTER_HEADING = "## 3-member cluster";

/** [start, end) of the section `heading` in `text`: to the next heading of the same level, or the end. */
function sectionBounds(text: string, heading: string): [number, number] | null {
  const at = text.startsWith(`${heading}\n`) ? 0 : text.indexOf(`\n${heading}\n`) + 1;
  if (at === 0 && !text.startsWith(`${heading}\n`)) return null;
  const level = heading.split(" ")[0]!;
  const next = text.indexOf(`\n${level} `, at + heading.length);
  return [at, next < 0 ? text.length : next + 1];
}

/** The section `heading` of `file` (from its heading line to the next heading of that level), if any. */
export function readSection(file: string, heading: string): string | null {
  if (!existsSync(file)) return null;
  const text = readFileSync(file, "utf8");
  const b = sectionBounds(text, heading);
  return b ? text.slice(b[0], b[1]) : null;
}

/** Replace the section `heading` of `file` by `body` (which starts with that heading), or append it. */
export function writeSection(file: string, heading: string, body: string): void {
  const old = existsSync(file) ? readFileSync(file, "utf8") : "";
  const b = sectionBounds(old, heading);
  const block = body.endsWith("\n") ? body : `${body}\n`;
  const text =
    b === null ? `${old.replace(/\n*$/, old ? "\n\n" : "")}${block}` : `${old.slice(0, b[0])}${block}${b[1] < old.length ? "\n" : ""}${old.slice(b[1])}`;
  writeFileSync(file, text);
}

/**
 * Unmeasured rows run against each server before the measured ones: Bun's JIT compiles the hot
 * paths during the first thousands of requests, which would otherwise be charged to the first
 * row alone.
 */
export const WARMUP: Row[] = [
  row("warm-up put, 1 client", 1, 1, 1_000, PUT),
  row("warm-up put, 100 clients", 10, 100, 10_000, PUT),
  row("warm-up range, 100 clients", 10, 100, 10_000, RANGE_L),
];

export type Impl = "etcd" | "tsetcd";

/** The options every comparison script takes: --only, --scale, --repeat, --tsetcd. */
export function commonOptions(): { scale: number; repeat: number; binaries: Record<Impl, string>; impls: Impl[] } {
  const only = option("only");
  if (only !== undefined && only !== "etcd" && only !== "tsetcd") throw new Error(`--only must be etcd or tsetcd, not ${only}`);
  const scale = Number(option("scale") ?? "1");
  if (!(scale > 0 && scale <= 10)) throw new Error(`--scale must be a number in (0, 10], not ${option("scale")}`);
  const repeat = Number(option("repeat") ?? "1");
  if (!(Number.isInteger(repeat) && repeat >= 1 && repeat <= 9)) throw new Error(`--repeat must be 1..9, not ${option("repeat")}`);
  const binaries: Record<Impl, string> = { etcd: ETCD_BIN, tsetcd: option("tsetcd") ?? SUBJECT_BIN };
  return { scale, repeat, binaries, impls: only ? [only] : ["etcd", "tsetcd"] };
}

/** "- row [impl]: error" lines for every cell of a results table that failed. */
export function errorNotes(results: Array<Partial<Record<Impl, { error?: string }>>>, rows: Array<{ name: string }>, impls: Impl[]): string[] {
  return results.flatMap((res, i) => impls.flatMap((impl) => (res[impl]?.error ? [`- ${rows[i]!.name} [${impl}]: ${res[impl]!.error}`] : [])));
}

/** A binary's path as results files show it: relative to the repository when inside it (no machine's paths in committed files). */
/** A path as results files show it: relative to the repository, or to the home directory, never this machine's. */
function shownPath(path: string): string {
  const rel = relative(REPO_ROOT, path);
  if (!rel.startsWith("..")) return rel;
  const home = relative(homedir(), path);
  return home.startsWith("..") ? path : join("~", home);
}
