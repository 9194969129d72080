// Run etcd 3.4's own end-to-end suite (tests/e2e, built by shared/tools/build-etcd-e2e.sh)
// against any etcd-compatible executable.
//
// The suite spawns BIN_DIR/etcd and BIN_DIR/etcdctl itself, so we hand it a fresh directory
// with two symlinks: `etcd` to the server under test and `etcdctl` to the real client.
import { mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { E2E_BIN, ETCD_SRC_DIR, ETCDCTL_BIN } from "./tools.ts";

/** Some tests read fixtures by relative path, so the suite must run from here. */
export const E2E_CWD = join(ETCD_SRC_DIR, "tests", "e2e");
/** Output kept for failure messages: the tail, since the whole suite prints many MB. */
const MAX_TAIL_CHARS = 1024 * 1024;

export interface E2EOptions {
  /** Executable to run as `etcd`. */
  etcd: string;
  /** -test.run regex; default: every test. */
  run?: string;
  /** Go's own -test.timeout, in seconds; we kill the run 60 s after it as a backstop. */
  goTimeoutSec: number;
  /** Called with every output line (progress for long runs). */
  onLine?: (line: string) => void;
}

export interface E2EResult {
  code: number | null;
  timedOut: boolean;
  passed: string[];
  failed: string[];
  skipped: string[];
  /** Last MiB of output. */
  tail: string;
}

/** `^(A|B|C)$` for exact test names. */
export function exactRunRegex(names: readonly string[]): string {
  return `^(${names.join("|")})$`;
}

/** Kill what the suite left running from our bin dir (e.g. after a Go test timeout panic). */
function killStragglers(binDir: string): void {
  // The suite starts each server in a new session (via a pty), so killing the test binary's
  // process group does not reach them; their argv[0] is our private bin dir, which nothing
  // else uses, so matching it kills only servers this run started.
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const argv0 = readFileSync(`/proc/${entry}/cmdline`, "utf8").split("\0")[0] ?? "";
      if (argv0.startsWith(`${binDir}/`)) process.kill(Number(entry), "SIGKILL");
    } catch {
      // gone meanwhile, or not ours to read
    }
  }
}

/** The suite's fixed ports (20000 up; a 3-member TLS cluster with proxies stays below 20030). */
const SUITE_PORTS = Array.from({ length: 30 }, (_, i) => 20000 + i);

function portTaken(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    const timer = setTimeout(() => {
      srv.close();
      resolve(true);
    }, 2000);
    srv.once("error", () => {
      clearTimeout(timer);
      resolve(true);
    });
    srv.listen({ host: "127.0.0.1", port, exclusive: true }, () =>
      srv.close(() => {
        clearTimeout(timer);
        resolve(false);
      }),
    );
  });
}

/**
 * Refuse to start while something holds the suite's ports: most likely another e2e run, and two
 * runs at once fail each other's tests with "address already in use" that look like our bugs.
 */
export async function assertSuitePortsFree(): Promise<void> {
  const taken: number[] = [];
  for (const port of SUITE_PORTS) if (await portTaken(port)) taken.push(port);
  if (taken.length > 0) {
    throw new Error(
      `127.0.0.1 ports ${taken.join(", ")} are in use (see: ss -ltnp | grep ':200'); etcd's e2e suite binds ` +
        "fixed ports from 20000, so only one run can go at a time on a machine",
    );
  }
}

export async function runE2E(opts: E2EOptions): Promise<E2EResult> {
  await assertSuitePortsFree();
  const binDir = mkdtempSync(join(tmpdir(), "tsetcd-e2e-bin-"));
  symlinkSync(opts.etcd, join(binDir, "etcd"));
  symlinkSync(ETCDCTL_BIN, join(binDir, "etcdctl"));
  const args = [E2E_BIN, "-bin-dir", binDir, "-cert-dir", "../../integration/fixtures", "-test.v"];
  if (opts.run) args.push("-test.run", opts.run);
  args.push("-test.timeout", `${opts.goTimeoutSec}s`);

  const proc = Bun.spawn(args, { cwd: E2E_CWD, stdin: "ignore", stdout: "pipe", stderr: "pipe", detached: true });
  const cleanup = () => {
    try {
      process.kill(-proc.pid, "SIGKILL");
    } catch {
      // already gone
    }
    killStragglers(binDir);
    rmSync(binDir, { recursive: true, force: true });
  };
  // The suite runs in its own session (so its whole group can be killed), which also means a
  // Ctrl-C no longer reaches it: forward the end of this process to it.
  const onSignal = (signal: NodeJS.Signals) => {
    cleanup();
    process.exit(128 + (signal === "SIGINT" ? 2 : signal === "SIGHUP" ? 1 : 15));
  };
  process.on("exit", cleanup);
  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) process.on(sig, onSignal);

  const result: E2EResult = { code: null, timedOut: false, passed: [], failed: [], skipped: [], tail: "" };
  const onLine = (line: string) => {
    // Only top-level results ("--- PASS: TestX (1.2s)"); subtests are indented.
    const m = /^--- (PASS|FAIL|SKIP): (\S+)/.exec(line);
    if (m) ({ PASS: result.passed, FAIL: result.failed, SKIP: result.skipped })[m[1] as "PASS"].push(m[2]!);
    result.tail += `${line}\n`;
    if (result.tail.length > 2 * MAX_TAIL_CHARS) result.tail = result.tail.slice(-MAX_TAIL_CHARS);
    opts.onLine?.(line);
  };
  const timer = setTimeout(
    () => {
      result.timedOut = true;
      cleanup();
    },
    (opts.goTimeoutSec + 60) * 1000,
  );
  await Promise.all([readLines(proc.stdout, onLine), readLines(proc.stderr, onLine)]);
  await proc.exited;
  clearTimeout(timer);
  cleanup();
  process.off("exit", cleanup);
  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) process.off(sig, onSignal);
  result.code = proc.exitCode;
  result.tail = result.tail.slice(-MAX_TAIL_CHARS);
  return result;
}

async function readLines(stream: ReadableStream<Uint8Array>, onLine: (line: string) => void): Promise<void> {
  const decoder = new TextDecoder();
  let partial = "";
  const reader = stream.getReader();
  for (let r = await reader.read(); !r.done; r = await reader.read()) {
    const lines = (partial + decoder.decode(r.value, { stream: true })).split("\n");
    partial = lines.pop() ?? "";
    for (const line of lines) onLine(line);
  }
  partial += decoder.decode();
  if (partial) onLine(partial);
}
