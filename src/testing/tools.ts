// Where the external programs the tests drive live, and what to do when one is missing.
//
// On a developer machine a missing tool skips the tests that need it (with a message saying
// how to get it); under CI (CI=true) it is an error, so a broken CI image can never turn into
// a green run of skipped tests.
import { accessSync, constants, existsSync } from "node:fs";
import { homedir } from "node:os";
import { join, resolve } from "node:path";

/** Root of the repository (this file is src/testing/tools.ts). */
export const REPO_ROOT = resolve(import.meta.dir, "..", "..");

/** Our server: the executable produced by `npm run build`. */
export const TSETCD_BIN = join(REPO_ROOT, "bin", "tsetcd");
/**
 * The server the comparison tests put beside real etcd: bin/tsetcd, unless TSETCD_BINARY names
 * another (TSETCD_BINARY=/usr/bin/etcd checks the harness itself: etcd must match etcd).
 */
export const SUBJECT_BIN = process.env.TSETCD_BINARY || TSETCD_BIN;
export const ETCD_BIN = "/usr/bin/etcd";
export const ETCDCTL_BIN = "/usr/bin/etcdctl";
export const CHROMIUM_BIN = "/usr/bin/chromium";

/** Same default output directory as shared/tools/build-etcd-*.sh. */
export const ETCD_TOOLS_DIR = join(process.env.XDG_CACHE_HOME ?? join(homedir(), ".cache"), "etcd-tools");
export const E2E_BIN = join(ETCD_TOOLS_DIR, "etcd-e2e.test");
/** build-etcd-benchmark.sh names it etcd-benchmark; accept a plain `benchmark` too. */
export const BENCHMARK_BIN =
  [join(ETCD_TOOLS_DIR, "etcd-benchmark"), join(ETCD_TOOLS_DIR, "benchmark")].find((p) => existsSync(p)) ?? join(ETCD_TOOLS_DIR, "etcd-benchmark");
/** etcd's Go sources (golang-etcd-server-dev); the e2e suite must run from its tests/e2e. */
export const ETCD_SRC_DIR = "/usr/share/gocode/src/go.etcd.io/etcd";

const HOW_TO_GET: Record<string, string> = {
  [ETCD_BIN]: "apt-get install etcd-server",
  [ETCDCTL_BIN]: "apt-get install etcd-client",
  [CHROMIUM_BIN]: "apt-get install chromium",
  [TSETCD_BIN]: "npm run build",
  [E2E_BIN]: "bash ../shared/tools/build-etcd-e2e.sh",
  [BENCHMARK_BIN]: "bash ../shared/tools/build-etcd-benchmark.sh",
};

export function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

export function isCI(): boolean {
  return process.env.CI === "true";
}

/**
 * True when `path` is an executable. When it is not: under CI throw (the run must fail);
 * otherwise print why and return false so the caller can skip, e.g.
 * `describe.skipIf(!requireTool(ETCD_BIN))(...)`.
 */
export function requireTool(path: string): boolean {
  if (isExecutable(path)) return true;
  const hint = HOW_TO_GET[path] ? ` (get it with: ${HOW_TO_GET[path]})` : "";
  const message = `required tool missing or not executable: ${path}${hint}`;
  if (isCI()) throw new Error(`${message}; CI=true, so this is a failure, not a skip`);
  console.warn(`SKIP: ${message}`);
  return false;
}

/** requireTool for several paths; names every missing one, not just the first. */
export function requireTools(paths: string[]): boolean {
  const missing = paths.filter((p) => !isExecutable(p));
  if (missing.length === 0) return true;
  if (isCI()) {
    const errors: string[] = [];
    for (const p of missing) {
      try {
        requireTool(p);
      } catch (err) {
        errors.push((err as Error).message);
      }
    }
    throw new Error(errors.join("\n"));
  }
  for (const p of missing) requireTool(p);
  return false;
}
