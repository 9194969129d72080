#!/usr/bin/env bun
// Run ALL of etcd 3.4's e2e suite (243 tests, ~15 min) against bin/tsetcd and record which pass.
// Not part of `npm test`: it is the progress meter for "every test that passes against real
// etcd passes against ours" (COMPAT.md).
//
//   bun scripts/e2e-all.ts [--etcd=PATH] [--out=FILE] [--run=REGEX] [--isolated]
//
// --isolated runs each test in its own suite process (60 s each at most) and kills what it
// left behind before the next: a failing test of etcd's suite can leave a server holding the
// suite's fixed ports, which fails every later test for a reason that is not its own.
//
// --etcd defaults to bin/tsetcd ($TSETCD_BINARY if set); --etcd=/usr/bin/etcd gives the baseline
// (240 of 243 pass on the reference machine). --out defaults to bench/e2e-results.txt.
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { E2E_CWD, assertSuitePortsFree, runE2E } from "../test/harness/e2e.ts";
import { E2E_BIN, ETCDCTL_BIN, REPO_ROOT, SUBJECT_BIN, isExecutable } from "../test/harness/tools.ts";

const GO_TIMEOUT_SEC = 3600;

function option(name: string): string | undefined {
  const prefix = `--${name}=`;
  return process.argv
    .slice(2)
    .find((a) => a.startsWith(prefix))
    ?.slice(prefix.length);
}

async function listTests(run: string): Promise<string[]> {
  const proc = Bun.spawn([E2E_BIN, "-test.list", run], { cwd: E2E_CWD, stdout: "pipe", stderr: "inherit" });
  const timer = setTimeout(() => proc.kill("SIGKILL"), 30_000);
  const text = await new Response(proc.stdout).text();
  await proc.exited;
  clearTimeout(timer);
  return text.split("\n").filter((l) => /^Test\w+$/.test(l));
}

/** A killed server frees its ports a moment later: wait (bounded) instead of failing the next test. */
async function waitForSuitePorts(): Promise<void> {
  for (let i = 0; ; i++) {
    try {
      return await assertSuitePortsFree();
    } catch (err) {
      if (i >= 30) throw err;
      await Bun.sleep(500);
    }
  }
}

async function main(): Promise<number> {
  const etcd = option("etcd") ?? SUBJECT_BIN;
  const out = option("out") ?? join(REPO_ROOT, "bench", "e2e-results.txt");
  const run = option("run") ?? ".*";
  for (const tool of [etcd, ETCDCTL_BIN, E2E_BIN]) {
    if (!isExecutable(tool)) {
      console.error(`missing: ${tool} (npm run build / apt-get install etcd-client / shared/tools/build-etcd-e2e.sh)`);
      return 2;
    }
  }

  const all = await listTests(run);
  console.log(`running ${all.length} e2e tests against ${etcd} (about 15 minutes for all)`);
  const started = Date.now();
  const progress = (line: string) => {
    if (/^--- (PASS|FAIL|SKIP): /.test(line)) console.log(line);
  };
  let r: Awaited<ReturnType<typeof runE2E>>;
  if (process.argv.includes("--isolated")) {
    r = { code: 0, timedOut: false, passed: [], failed: [], skipped: [], tail: "" };
    for (const name of all) {
      await waitForSuitePorts();
      const one = await runE2E({ etcd, run: `^${name}$`, goTimeoutSec: 60, onLine: progress });
      r.passed.push(...one.passed);
      r.failed.push(...one.failed);
      r.skipped.push(...one.skipped);
      if (one.timedOut) r.failed.push(name);
    }
  } else {
    // Progress: one line per finished test, not the suite's megabytes of server logs.
    r = await runE2E({ etcd, run, goTimeoutSec: GO_TIMEOUT_SEC, onLine: progress });
  }
  const reported = new Set([...r.passed, ...r.failed, ...r.skipped]);
  // A Go timeout panic or a crash ends the run early: the rest never reported anything.
  const notRun = all.filter((t) => !reported.has(t));
  const minutes = ((Date.now() - started) / 60_000).toFixed(1);
  const summary = `${r.passed.length} passed, ${r.failed.length + notRun.length} failed, ${r.skipped.length} skipped`;

  const report = [
    `# etcd 3.4.23 e2e suite against ${relative(REPO_ROOT, etcd).startsWith("..") ? etcd : relative(REPO_ROOT, etcd)}`,
    `# ${new Date().toISOString()}, ${minutes} min, exit ${r.code}${r.timedOut ? " (killed: timeout)" : ""}`,
    `# ${summary}${notRun.length ? ` (${notRun.length} of the failed never ran)` : ""}`,
    "",
    "## passed",
    ...r.passed.toSorted(),
    "",
    "## failed",
    ...r.failed.toSorted(),
    ...notRun.map((t) => `${t} (did not run)`),
    "",
    "## skipped",
    ...r.skipped.toSorted(),
    "",
  ].join("\n");
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, report);
  console.log(`${summary}; names in ${out}`);
  return 0;
}

process.exit(await main());
