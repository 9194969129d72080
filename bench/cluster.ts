#!/usr/bin/env bun
// etcd's own benchmark tool against a fresh 3-member real etcd cluster and a fresh 3-member
// tsetcd cluster, in the same run, then leader failover times for both.
//
//   bun bench/cluster.ts [--scale=0.1] [--failovers=3] [--warmup=0] [--only=etcd|tsetcd] [--tsetcd=PATH] [--out=FILE]
//
// Both clusters are started with the same flags (--initial-cluster etc., default heartbeat and
// election timeout; data dirs in one temp dir on the same disk) and stay up for the whole run.
// Every benchmark row runs against the current leader's client URL, the two systems taking
// turns row by row. CPU time of every member comes from /proc/PID/stat before and after each
// row. Failover: under a light write load (a put every 10 ms through each follower), the leader is
// killed with SIGKILL; the time is from the kill to the first successful put, issued after the
// kill, through a surviving member. The killed member is restarted between runs.
//
// Writes the "## 3-member cluster" section of bench/results.md (the rest of the file is
// bench/run.ts's). See bench/README.md.
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Cluster, type ClusterMember } from "../test/harness/cluster.ts";
import { etcdctl } from "../test/harness/etcdctl.ts";
import { enc, grpcClient } from "../test/harness/grpc-client.ts";
import { ETCD_BIN, ETCDCTL_BIN, REPO_ROOT, SUBJECT_BIN, isExecutable } from "../test/harness/tools.ts";
import {
  type BenchResult,
  CLUSTER_HEADING,
  PUT,
  RANGE_L,
  RAW_DIR,
  type Row,
  TXN_PUT,
  WARMUP,
  cpuSeconds,
  ensureBenchmark,
  fmt,
  loadAverage,
  machineInfo,
  option,
  ratio,
  row,
  runBenchmark,
  scaledTotal,
  writeSection,
} from "./lib.ts";

const ROWS: Row[] = [
  row("put, 1 client", 1, 1, 2_000, PUT),
  row("put, 1000 clients", 100, 1000, 50_000, PUT),
  row("range linearizable, 1 client", 1, 1, 10_000, RANGE_L),
  row("range linearizable, 1000 clients", 100, 1000, 50_000, RANGE_L),
  row("txn-put, 1 client", 1, 1, 2_000, TXN_PUT),
  row("txn-put, 1000 clients", 100, 1000, 50_000, TXN_PUT),
];

/** WARMUP (lib.ts) runs on both clusters before the measured rows unless --warmup=0. */
const warmup = option("warmup") !== "0";

/** A row that takes longer than this is a stall: killed and reported, with the members' logs. */
const ROW_TIMEOUT_MS = 120_000;
/** A failover that has not served a put after this long is reported as failed. */
const FAILOVER_LIMIT_MS = 15_000;
/** Failover probe: each survivor gets a put every PROBE_INTERVAL_MS (client timeout PROBE_TIMEOUT_MS). */
const PROBE_INTERVAL_MS = 10;
const PROBE_TIMEOUT_MS = 1000;
const PROBE_MAX_IN_FLIGHT = 200;

type Impl = "etcd" | "tsetcd";

interface Measurement extends BenchResult {
  /** CPU µs per request: the leader's, and the mean of the two followers'. */
  leaderCpu: number | null;
  followerCpu: number | null;
  leader: string;
}

interface Failover {
  /** Kill → first successful put (issued after the kill) through a survivor, ms; null: none within the limit. */
  putMs: number | null;
  /** Kill → a survivor's Status names a new leader, ms. */
  electedMs: number | null;
  oldLeader: string;
  newLeader: string | null;
  failedPuts: number;
  errors: string[];
  note?: string;
}

// ---- options -------------------------------------------------------------------------------

const scale = Number(option("scale") ?? "1");
if (!(scale > 0 && scale <= 10)) throw new Error(`--scale must be a number in (0, 10], not ${option("scale")}`);
const failovers = Number(option("failovers") ?? "3");
if (!(Number.isInteger(failovers) && failovers >= 0 && failovers <= 9)) throw new Error(`--failovers must be 0..9, not ${option("failovers")}`);
const only = option("only");
if (only !== undefined && only !== "etcd" && only !== "tsetcd") throw new Error(`--only must be etcd or tsetcd, not ${only}`);
const binaries: Record<Impl, string> = { etcd: ETCD_BIN, tsetcd: option("tsetcd") ?? SUBJECT_BIN };
const impls: Impl[] = only ? [only] : ["etcd", "tsetcd"];
const outFile = option("out") ?? join(REPO_ROOT, "bench", "results.md");

// ---- logs ----------------------------------------------------------------------------------

/** What went wrong, per system: relevant member log lines around failures and stalls. */
const incidents: string[] = [];
const RELEVANT = /error|warn|panic|fatal|exception|elect|leader|lost|timeout|timed out|dropped|refused|unreachable|stall/i;

/** Each member's log length now, to cut out what it prints from here on. */
function logMarks(c: Cluster): Map<ClusterMember, number> {
  return new Map(c.members.map((m) => [m, m.logs().length]));
}

function recordIncident(impl: Impl, c: Cluster, since: Map<ClusterMember, number>, what: string): void {
  const parts = [`- **${impl}: ${what}**`];
  for (const m of c.members) {
    const lines = m
      .logs()
      .slice(Math.min(since.get(m) ?? 0, m.logs().length))
      .split("\n")
      .filter((l) => RELEVANT.test(l));
    const shown = lines.slice(-12).map((l) => (l.length > 400 ? `${l.slice(0, 400)}…` : l));
    parts.push(`  - ${m.name} (${m.running ? `pid ${m.pid}` : "not running"}): ${lines.length} relevant log line(s)${shown.length ? ", last:" : ""}`);
    if (shown.length) parts.push("    ```", ...shown.map((l) => `    ${l}`), "    ```");
  }
  incidents.push(parts.join("\n"));
  console.log(parts.join("\n"));
}

// ---- benchmark rows ------------------------------------------------------------------------

const shortError = (e: unknown) =>
  String((e as Error)?.message ?? e)
    .split("\n")[0]!
    .slice(0, 160);

async function leaderOf(c: Cluster): Promise<ClusterMember> {
  return (await c.waitLeader({ timeoutMs: 20_000 })).leader;
}

async function runRow(bench: string, c: Cluster, r: Row, impl: Impl, index: number): Promise<Measurement> {
  const total = scaledTotal(r, scale);
  const leader = await leaderOf(c);
  const marks = logMarks(c);
  const before = c.members.map((m) => cpuSeconds(m.pid));
  const res = await runBenchmark(bench, leader.clientUrl, r.args, total, `cluster-${index + 1}-${impl}.txt`, ROW_TIMEOUT_MS);
  const after = c.members.map((m) => cpuSeconds(m.pid));
  const perReq = (i: number) => {
    const [b, a] = [before[i], after[i]];
    return b == null || a == null ? null : ((a - b) * 1e6) / total;
  };
  const li = c.members.indexOf(leader);
  const followers = c.members
    .map((_, i) => i)
    .filter((i) => i !== li)
    .map(perReq);
  const followerCpu = followers.every((x) => x !== null) ? followers.reduce((s, x) => s! + x!, 0)! / followers.length : null;
  const m: Measurement = {
    ...res,
    leaderCpu: res.reqPerSec === null ? null : perReq(li),
    followerCpu: res.reqPerSec === null ? null : followerCpu,
    leader: leader.name,
  };

  let leaderAfter: string;
  try {
    leaderAfter = (await leaderOf(c)).name;
  } catch (err) {
    leaderAfter = `none (${shortError(err)})`;
  }
  const dead = c.members.filter((x) => !x.running).map((x) => x.name);
  const problems = [
    res.error,
    leaderAfter !== leader.name ? `leader changed during the row: ${leader.name} → ${leaderAfter}` : undefined,
    dead.length ? `member(s) exited: ${dead.join(", ")}` : undefined,
  ].filter((p): p is string => p !== undefined);
  if (problems.length) {
    m.error = problems.join("; ");
    recordIncident(impl, c, marks, `${r.name}: ${m.error}`);
  }
  return m;
}

// ---- failover ------------------------------------------------------------------------------

async function failover(c: Cluster, impl: Impl, run: number): Promise<Failover> {
  const old = await leaderOf(c);
  const oldId = (await old.status()).id;
  const survivors = c.members.filter((m) => m !== old && m.running);
  const clients = survivors.map((m) => grpcClient(m.clientUrl));
  const key = enc(`failover-${impl}`);
  // Each survivor must serve a put before the kill (connections open, forwarding works).
  for (const cl of clients) await cl.kv.put({ key, value: enc("warm-up") }, { timeoutMs: 5000 });

  let t0 = 0; // performance.now() of the kill
  let firstOk: number | null = null;
  let newLeader: string | null = null;
  let electedAt: number | null = null;
  let failedPuts = 0;
  const errors = new Map<string, number>();
  let stop = false;

  // Puts are launched every PROBE_INTERVAL_MS whether or not earlier ones came back, so a put
  // hanging on the dead leader does not delay the next attempt: resolution ≈ the interval.
  const probe = async (cl: (typeof clients)[number], i: number) => {
    const inFlight = new Set<Promise<void>>();
    for (let n = 0; !stop; n++) {
      if (inFlight.size < PROBE_MAX_IN_FLIGHT) {
        const start = performance.now();
        const p: Promise<void> = cl.kv
          .put({ key, value: enc(`${run}-${i}-${n}`) }, { timeoutMs: PROBE_TIMEOUT_MS })
          .then(
            () => {
              if (t0 && start >= t0 && firstOk === null) firstOk = performance.now();
            },
            (err: unknown) => {
              if (t0 && start >= t0) {
                failedPuts++;
                const e = shortError(err);
                errors.set(e, (errors.get(e) ?? 0) + 1);
              }
            },
          )
          .finally(() => inFlight.delete(p));
        inFlight.add(p);
      }
      await Bun.sleep(PROBE_INTERVAL_MS);
    }
    await Promise.all(inFlight);
  };
  const watchElection = async () => {
    while (!stop && electedAt === null) {
      const sts = await Promise.all(survivors.map((m) => m.status(200).catch(() => null)));
      for (const s of sts) {
        if (s && s.leader !== "0" && s.leader !== oldId && electedAt === null) {
          electedAt = performance.now();
          newLeader = survivors.find((m) => m.id === s.leader)?.name ?? s.leader;
        }
      }
      await Bun.sleep(20);
    }
  };

  const marks = logMarks(c);
  const loops = clients.map((cl, i) => probe(cl, i));
  await Bun.sleep(500); // the light load runs before the kill
  t0 = performance.now();
  const killed = old.kill9();
  const watcher = watchElection();
  while (firstOk === null && performance.now() - t0 < FAILOVER_LIMIT_MS) await Bun.sleep(5);
  // Give the election watcher a moment if puts came back first (it polls every 20 ms).
  for (let k = 0; k < 50 && electedAt === null && performance.now() - t0 < FAILOVER_LIMIT_MS; k++) await Bun.sleep(10);
  stop = true;
  await Promise.all([...loops, watcher, killed]);

  const result: Failover = {
    putMs: firstOk === null ? null : (firstOk as number) - t0,
    electedMs: electedAt === null ? null : (electedAt as number) - t0,
    oldLeader: old.name,
    newLeader,
    failedPuts,
    errors: [...errors].map(([e, n]) => `${n}x ${e}`),
  };
  if (result.putMs === null) {
    result.note = `no successful put within ${FAILOVER_LIMIT_MS} ms`;
    recordIncident(impl, c, marks, `failover run ${run + 1}: ${result.note} (killed ${old.name}; client errors: ${result.errors.join(", ") || "none"})`);
  }

  // Back to three members before the next run (the restarted member catches up first).
  try {
    await old.restart();
    await c.waitLeader({ timeoutMs: 20_000 });
    const revs = async () => (await c.statuses()).map((s) => (s instanceof Error ? -1n : s.revision));
    for (const deadline = Date.now() + 10_000; Date.now() < deadline; await Bun.sleep(100)) {
      const r = await revs();
      if (r.every((x) => x >= 0n && x === r[0])) break;
    }
    await Bun.sleep(1000);
  } catch (err) {
    result.note = `${result.note ? `${result.note}; ` : ""}restart of ${old.name} failed: ${shortError(err)}`;
    recordIncident(impl, c, marks, `failover run ${run + 1}: restart of ${old.name} failed: ${shortError(err)}`);
  }
  return result;
}

// ---- output --------------------------------------------------------------------------------

const ms = (s: number | null | undefined) => (s === null || s === undefined ? null : s * 1000);
const lat = (m: Measurement | undefined) => (m?.reqPerSec ? `${fmt(ms(m.latency.p50), 1)} / ${fmt(ms(m.latency.p99), 1)}` : "—");

function median(xs: number[]): number | null {
  if (xs.length === 0) return null;
  const s = xs.toSorted((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

function failoverCell(runs: Failover[] | undefined, pick: (f: Failover) => number | null): string {
  if (!runs?.length) return "—";
  const vals = runs.map(pick);
  const ok = vals.filter((v): v is number => v !== null);
  const all = vals.map((v) => (v === null ? "fail" : fmt(v))).join(" / ");
  return `${ok.length === vals.length ? fmt(median(ok)) : `${fmt(median(ok))} (${vals.length - ok.length} failed)`} ms (${all})`;
}

function report(results: Array<Partial<Record<Impl, Measurement>>>, fo: Partial<Record<Impl, Failover[]>>, startLoad: string): string {
  const lines = [
    CLUSTER_HEADING,
    "",
    "`bun bench/cluster.ts`: a fresh 3-member real etcd cluster and a fresh 3-member tsetcd cluster, same",
    "flags (default heartbeat 100 ms / election 1000 ms), data dirs in one temp dir, both up for the",
    "whole run; every row runs against the current leader's client URL, the systems taking turns.",
    "",
    ...machineInfo(binaries),
    `- load average at start: ${startLoad} (at end: ${loadAverage()}); scale ${scale}; ${
      warmup ? `warm-up before the rows (unmeasured): ${WARMUP.map((w) => `\`${w.args.join(" ")} --total=${w.total}\``).join(", ")}` : "no warm-up"
    }`,
    "",
    "### Throughput and latency (benchmark against the leader)",
    "",
    "| test | etcd req/s | tsetcd req/s | ratio | etcd p50 / p99 ms | tsetcd p50 / p99 ms |",
    "| --- | ---: | ---: | ---: | ---: | ---: |",
    ...ROWS.map((r, i) => {
      const e = results[i]?.etcd;
      const t = results[i]?.tsetcd;
      return `| ${r.name} | ${fmt(e?.reqPerSec)} | ${fmt(t?.reqPerSec)} | ${ratio(t?.reqPerSec, e?.reqPerSec)} | ${lat(e)} | ${lat(t)} |`;
    }),
    "",
    "ratio = tsetcd req/s ÷ etcd req/s (above 1: tsetcd is faster). Latency: the benchmark's 50th / 99th percentile.",
    "",
    "### Server CPU per request (user + system µs, /proc/PID/stat)",
    "",
    "| test | etcd leader | tsetcd leader | etcd follower (mean of 2) | tsetcd follower (mean of 2) |",
    "| --- | ---: | ---: | ---: | ---: |",
    ...ROWS.map((r, i) => {
      const e = results[i]?.etcd;
      const t = results[i]?.tsetcd;
      return `| ${r.name} | ${fmt(e?.leaderCpu, 1)} | ${fmt(t?.leaderCpu, 1)} | ${fmt(e?.followerCpu, 1)} | ${fmt(t?.followerCpu, 1)} |`;
    }),
    "",
  ];
  if (failovers > 0) {
    lines.push(
      `### Leader failover (kill -9 of the leader; median of ${failovers}, each run in brackets)`,
      "",
      "| | etcd | tsetcd |",
      "| --- | ---: | ---: |",
      `| kill → first successful put through a survivor | ${failoverCell(fo.etcd, (f) => f.putMs)} | ${failoverCell(fo.tsetcd, (f) => f.putMs)} |`,
      `| kill → a survivor's Status names the new leader | ${failoverCell(fo.etcd, (f) => f.electedMs)} | ${failoverCell(fo.tsetcd, (f) => f.electedMs)} |`,
      "",
      `Probe (also the light load): a put through each surviving member every ${PROBE_INTERVAL_MS} ms, from 0.5 s before the kill, client`,
      `timeout ${PROBE_TIMEOUT_MS} ms; only puts issued after the kill count. The new leader is polled with Status every 20 ms.`,
      "The killed member is restarted (and caught up) between runs.",
      "",
    );
    for (const impl of impls) {
      for (const [k, f] of (fo[impl] ?? []).entries()) {
        const errs = f.errors.length ? `; failed puts after the kill: ${f.errors.join(", ")}` : "";
        lines.push(`- ${impl} run ${k + 1}: killed ${f.oldLeader}, new leader ${f.newLeader ?? "?"}${errs}${f.note ? `; ${f.note}` : ""}`);
      }
    }
    lines.push("");
  }
  const notes = results.flatMap((res, i) => impls.flatMap((impl) => (res[impl]?.error ? [`- ${ROWS[i]!.name} [${impl}]: ${res[impl]!.error}`] : [])));
  if (notes.length || incidents.length) lines.push("Errors and incidents:", "", ...notes, ...incidents, "");
  lines.push(
    "Commands (`benchmark --endpoints=LEADER <args> --total=N`):",
    "",
    ...ROWS.map((r) => `- ${r.name}: \`${r.args.join(" ")} --total=${scaledTotal(r, scale)}\``),
    "",
  );
  return lines.join("\n");
}

// ---- main ----------------------------------------------------------------------------------

async function main(): Promise<void> {
  for (const impl of impls) {
    if (!isExecutable(binaries[impl])) throw new Error(`${impl}: ${binaries[impl]} is missing (npm run build / apt-get install etcd-server)`);
  }
  if (!isExecutable(ETCDCTL_BIN)) throw new Error(`${ETCDCTL_BIN} is missing (apt-get install etcd-client)`);
  const bench = await ensureBenchmark();
  const startLoad = loadAverage();
  const started = Date.now();

  const clusters: Partial<Record<Impl, Cluster>> = {};
  const results: Array<Partial<Record<Impl, Measurement>>> = [];
  const fo: Partial<Record<Impl, Failover[]>> = {};
  try {
    for (const impl of impls) {
      const c = await Cluster.start({ binary: binaries[impl], size: 3, token: `bench-${impl}` });
      clusters[impl] = c;
      const leader = await leaderOf(c);
      console.log(`${impl}: 3 members up (${c.members.map((m) => `${m.name} pid ${m.pid}`).join(", ")}), leader ${leader.name}`);
      const put = await etcdctl(leader.clientUrl, ["put", "foo", "bar"]); // the key the range rows read
      if (put.code !== 0) throw new Error(`${impl}: put foo failed: ${put.stderr}`);
      for (const [k, w] of (warmup ? WARMUP : []).entries()) {
        const res = await runBenchmark(bench, leader.clientUrl, w.args, w.total, `cluster-0-warmup${k + 1}-${impl}.txt`, ROW_TIMEOUT_MS);
        console.log(`${w.name} [${impl}]: ${fmt(res.reqPerSec)} req/s${res.error ? ` (${res.error})` : ""}`);
      }
    }

    for (const [i, r] of ROWS.entries()) {
      results[i] = {};
      // Alternate who goes first: the second run of a row follows the first one's load.
      for (const impl of i % 2 === 0 ? impls : impls.toReversed()) {
        const m = await runRow(bench, clusters[impl]!, r, impl, i);
        results[i]![impl] = m;
        const detail = m.error ? `  (${m.error})` : "";
        console.log(
          `${r.name} [${impl}, leader ${m.leader}]: ${fmt(m.reqPerSec)} req/s, p50/p99 ${lat(m)} ms, CPU µs/req leader ${fmt(m.leaderCpu, 1)} follower ${fmt(m.followerCpu, 1)}${detail}`,
        );
      }
    }

    for (let k = 0; k < failovers; k++) {
      for (const impl of k % 2 === 0 ? impls : impls.toReversed()) {
        const f = await failover(clusters[impl]!, impl, k);
        (fo[impl] ??= []).push(f);
        console.log(
          `failover ${k + 1} [${impl}]: killed ${f.oldLeader}; first put after ${fmt(f.putMs)} ms, new leader ${f.newLeader ?? "?"} seen after ${fmt(f.electedMs)} ms; ${f.failedPuts} failed puts${f.note ? ` (${f.note})` : ""}`,
        );
      }
    }
  } finally {
    // Keep every member's full log for a post-mortem, then kill everything and remove the dirs.
    mkdirSync(RAW_DIR, { recursive: true });
    for (const [impl, c] of Object.entries(clusters)) {
      for (const m of c!.members) writeFileSync(join(RAW_DIR, `cluster-${impl}-${m.name}.log`), m.logs());
    }
    await Promise.all(Object.values(clusters).map((c) => c!.destroy()));
  }

  const doc = report(results, fo, startLoad);
  writeSection(outFile, CLUSTER_HEADING, doc);
  console.log(`\n${doc}`);
  console.log(
    `written to ${outFile} (section "${CLUSTER_HEADING}") in ${Math.round((Date.now() - started) / 1000)} s; raw output and member logs in ${RAW_DIR}/`,
  );
}

await main();
