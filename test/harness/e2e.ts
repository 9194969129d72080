// Run etcd 3.4's own end-to-end suite (tests/e2e, built by shared/tools/build-etcd-e2e.sh)
// against any etcd-compatible executable.
//
// The suite spawns BIN_DIR/etcd and BIN_DIR/etcdctl itself, so we hand it a fresh directory
// with two symlinks: `etcd` to the server under test and `etcdctl` to the real client.
import { mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync } from "node:fs";
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

export async function runE2E(opts: E2EOptions): Promise<E2EResult> {
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
  };
  process.on("exit", cleanup); // an aborted test run must not leave the suite's servers behind

  const result: E2EResult = { code: null, timedOut: false, passed: [], failed: [], skipped: [], tail: "" };
  const onLine = (line: string) => {
    // Only top-level results ("--- PASS: TestX (1.2s)"); subtests are indented.
    const m = /^--- (PASS|FAIL|SKIP): (\S+)/.exec(line);
    if (m) ({ PASS: result.passed, FAIL: result.failed, SKIP: result.skipped })[m[1] as "PASS"].push(m[2]!);
    result.tail += `${line}\n`;
    if (result.tail.length > 2 * MAX_TAIL_CHARS) result.tail = result.tail.slice(-MAX_TAIL_CHARS);
    opts.onLine?.(line);
  };
  const timer = setTimeout(() => {
    result.timedOut = true;
    cleanup();
  }, (opts.goTimeoutSec + 60) * 1000);
  await Promise.all([readLines(proc.stdout, onLine), readLines(proc.stderr, onLine)]);
  await proc.exited;
  clearTimeout(timer);
  cleanup();
  process.off("exit", cleanup);
  rmSync(binDir, { recursive: true, force: true });
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
