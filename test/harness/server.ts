// Start one etcd-compatible member (our bin/tsetcd or the real /usr/bin/etcd) for a test.
//
// Both are driven through etcd's own flags, so the same call starts either and tests can
// compare them. A member gets fresh loopback ports and a fresh data dir, and startMember only
// resolves once the process printed "ready to serve client requests"; every process started
// here is killed when the test process exits, whatever way it exits.
import { afterAll, beforeAll } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePorts } from "./ports.ts";
import { ETCD_BIN, SUBJECT_BIN } from "./tools.ts";

export const READY_LINE = "ready to serve client requests";
const READY_TIMEOUT_MS = 20_000;
const STOP_TIMEOUT_MS = 10_000;
/** Logs kept per member: the tail, so a chatty server cannot exhaust the test's memory. */
const MAX_LOG_CHARS = 4 * 1024 * 1024;
/** Fresh ports are picked again when a port was taken between picking and binding. */
const MAX_START_ATTEMPTS = 3;

export interface StartOptions {
  /** Executable to run; default: the absolute path of bin/tsetcd (or $TSETCD_BINARY if set). */
  binary?: string;
  /** Extra flags. A flag given here replaces the harness's own value for it. */
  args?: string[];
  /** Added to the environment (inherited ETCD_* / ETCDCTL_* variables are dropped first). */
  env?: Record<string, string | undefined>;
  /** Use this data dir (e.g. to restart on an old one); it is then never removed. */
  dataDir?: string;
  /** Keep the temp data dir this harness created after stop() / exit. */
  keepDataDir?: boolean;
  /** --name; default "m-<client port>". */
  name?: string;
  /** Scheme of the client URLs (https needs TLS flags in `args`); default http. */
  clientScheme?: "http" | "https";
  /** Bound on the wait for the ready line; default 20 s. */
  readyTimeoutMs?: number;
  /**
   * Fixed URLs instead of fresh ports (a cluster member, or a restart on the same ports). A
   * fixed-port start is not retried on "address already in use": the ports are the caller's.
   */
  clientUrl?: string;
  peerUrl?: string;
  /**
   * Pass `args` exactly as given: the harness adds none of its own flags (for --config-file,
   * where etcd 3.4 ignores every other flag). clientUrl/peerUrl should then be given, so the
   * returned Member knows where the process listens.
   */
  exactArgs?: boolean;
}

export interface Member {
  name: string;
  /** http://127.0.0.1:PORT */
  clientUrl: string;
  peerUrl: string;
  dataDir: string;
  pid: number;
  /** Everything the process printed so far (stdout and stderr interleaved, tail-bounded). */
  logs(): string;
  /** Resolves with the exit code (null if ended by a signal) once the process is gone. */
  exited: Promise<number | null>;
  /** SIGTERM, wait (bounded, then SIGKILL), remove the data dir if we created it; exit code. */
  stop(timeoutMs?: number): Promise<number | null>;
  /** Crash it: SIGKILL and wait. The data dir is kept so a test can restart on it. */
  kill9(): Promise<void>;
  sigstop(): void;
  sigcont(): void;
}

interface Tracked {
  proc: ReturnType<typeof Bun.spawn>;
  ownedDir: string | null;
  keepDataDir: boolean;
}

// ---- cleanup at exit -----------------------------------------------------------------------

const live = new Set<Tracked>();
/** Temp data dirs still to delete; a kill9()ed member keeps its dir until stop() or exit. */
const dirsToRemove = new Set<string>();
let cleanupInstalled = false;

function removeOwnedDir(t: Tracked): void {
  if (!t.ownedDir || t.keepDataDir) return;
  rmSync(t.ownedDir, { recursive: true, force: true });
  dirsToRemove.delete(t.ownedDir);
}

function killAllNow(): void {
  for (const t of live) {
    try {
      process.kill(t.proc.pid, "SIGKILL"); // also ends a SIGSTOPped process
    } catch {
      // already gone
    }
  }
  live.clear();
  for (const dir of dirsToRemove) rmSync(dir, { recursive: true, force: true });
  dirsToRemove.clear();
}

function installCleanup(): void {
  if (cleanupInstalled) return;
  cleanupInstalled = true;
  process.on("exit", killAllNow);
  // An interrupted test run (Ctrl-C, CI timeout) must not leave servers holding ports.
  for (const [signal, code] of [
    ["SIGINT", 130],
    ["SIGTERM", 143],
    ["SIGHUP", 129],
  ] as const) {
    process.once(signal, () => {
      killAllNow();
      process.exit(code);
    });
  }
}

// ---- flags ---------------------------------------------------------------------------------

/** Value of `--flag=v` / `--flag v` / `-flag v` in args, if present. */
function flagValue(args: string[], flag: string): string | undefined {
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!.replace(/^--?/, "--");
    if (a === `--${flag}`) return args[i + 1];
    if (a.startsWith(`--${flag}=`)) return a.slice(flag.length + 3);
  }
  return undefined;
}

function memberArgs(name: string, dataDir: string, clientUrl: string, peerUrl: string, extra: string[]): string[] {
  const ours: Record<string, string> = {
    name,
    "data-dir": dataDir,
    "listen-client-urls": clientUrl,
    "advertise-client-urls": clientUrl,
    "listen-peer-urls": peerUrl,
    "initial-advertise-peer-urls": peerUrl,
    "initial-cluster": `${name}=${peerUrl}`,
  };
  const args: string[] = [];
  for (const [flag, value] of Object.entries(ours)) {
    if (flagValue(extra, flag) === undefined) args.push(`--${flag}=${value}`);
  }
  return [...args, ...extra];
}

function cleanEnv(extra: StartOptions["env"]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    // A developer's ETCD_* variables would silently reconfigure the server under test.
    if (v !== undefined && !k.startsWith("ETCD_") && !k.startsWith("ETCDCTL_")) env[k] = v;
  }
  for (const [k, v] of Object.entries(extra ?? {})) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  return env;
}

// ---- output capture ------------------------------------------------------------------------

class LogSink {
  private text = "";
  private waiters: Array<() => void> = [];
  sawReady = false;

  append(chunk: string): void {
    // Search the joint of old and new text so a ready line split across chunks is found.
    const joint = this.text.slice(-READY_LINE.length) + chunk;
    if (!this.sawReady && joint.includes(READY_LINE)) this.sawReady = true;
    this.text += chunk;
    if (this.text.length > MAX_LOG_CHARS) this.text = this.text.slice(-MAX_LOG_CHARS);
    for (const w of this.waiters.splice(0)) w();
  }

  get(): string {
    return this.text;
  }

  /** Resolves on the next append (callers re-check their condition). */
  changed(): Promise<void> {
    return new Promise((r) => this.waiters.push(r));
  }
}

async function pump(stream: ReadableStream<Uint8Array>, sink: LogSink): Promise<void> {
  const decoder = new TextDecoder();
  const reader = stream.getReader();
  for (let r = await reader.read(); !r.done; r = await reader.read()) {
    sink.append(decoder.decode(r.value, { stream: true }));
  }
  const rest = decoder.decode();
  if (rest) sink.append(rest);
}

// ---- start ---------------------------------------------------------------------------------

class StartError extends Error {
  constructor(
    message: string,
    readonly portClash: boolean,
  ) {
    super(message);
  }
}

async function startOnce(opts: StartOptions): Promise<Member> {
  const binary = opts.binary ?? SUBJECT_BIN;
  const fresh = opts.clientUrl && opts.peerUrl ? [] : await freePorts(2);
  const clientUrl = opts.clientUrl ?? `${opts.clientScheme ?? "http"}://127.0.0.1:${fresh[0]}`;
  const peerUrl = opts.peerUrl ?? `http://127.0.0.1:${fresh[1]}`;
  const name = opts.name ?? `m-${new URL(clientUrl).port}`;
  const extra = opts.args ?? [];
  const ownedDir = opts.dataDir ? null : mkdtempSync(join(tmpdir(), "tsetcd-test-"));
  // The fresh (empty, mode 0700) temp dir itself, so a caller that keeps and later deletes
  // member.dataDir leaves nothing behind.
  const dataDir = flagValue(extra, "data-dir") ?? opts.dataDir ?? ownedDir!;
  const advertised = opts.exactArgs ? undefined : (flagValue(extra, "advertise-client-urls") ?? flagValue(extra, "listen-client-urls"));

  installCleanup();
  const argv = opts.exactArgs ? extra : memberArgs(name, dataDir, clientUrl, peerUrl, extra);
  const proc = Bun.spawn([binary, ...argv], {
    env: cleanEnv(opts.env),
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  const tracked: Tracked = { proc, ownedDir, keepDataDir: opts.keepDataDir ?? false };
  live.add(tracked);
  if (ownedDir && !tracked.keepDataDir) dirsToRemove.add(ownedDir);

  const sink = new LogSink();
  const pumps = Promise.all([pump(proc.stdout as ReadableStream<Uint8Array>, sink), pump(proc.stderr as ReadableStream<Uint8Array>, sink)]);
  let gone = false;
  const exited = proc.exited.then(() => {
    gone = true;
    live.delete(tracked);
    return proc.exitCode;
  });

  const timeoutMs = opts.readyTimeoutMs ?? READY_TIMEOUT_MS;
  let timedOut = false;
  let wake = () => {};
  // A cleared timer rather than a sleep: a pending sleep would keep a script alive for 20 s.
  const timer = setTimeout(() => {
    timedOut = true;
    wake();
  }, timeoutMs);
  const timeout = new Promise<void>((r) => (wake = r));
  while (!sink.sawReady && !gone && !timedOut) {
    await Promise.race([sink.changed(), exited, timeout]);
  }
  clearTimeout(timer);
  if (!sink.sawReady) {
    const why = gone ? `exited with ${proc.exitCode ?? proc.signalCode}` : `not ready after ${timeoutMs} ms`;
    if (!gone) proc.kill("SIGKILL");
    await exited;
    // The pipes may still hold the process's last words (often the reason it exited).
    await Promise.race([pumps, Bun.sleep(1000)]);
    removeOwnedDir(tracked);
    const logs = sink.get();
    throw new StartError(
      `${binary} ${why} (client ${clientUrl}, peer ${peerUrl}, data dir ${dataDir}); its output:\n${logs}`,
      gone && /address already in use/i.test(logs) && !(opts.clientUrl || opts.peerUrl),
    );
  }

  const member: Member = {
    name,
    clientUrl: advertised?.split(",")[0] ?? clientUrl,
    peerUrl,
    dataDir,
    pid: proc.pid,
    logs: () => sink.get(),
    exited,
    async stop(stopTimeoutMs = STOP_TIMEOUT_MS) {
      if (!gone) {
        proc.kill("SIGCONT"); // a stopped process cannot act on SIGTERM
        proc.kill("SIGTERM");
        const timer = setTimeout(() => proc.kill("SIGKILL"), stopTimeoutMs);
        await exited;
        clearTimeout(timer);
      }
      removeOwnedDir(tracked);
      return proc.exitCode;
    },
    async kill9() {
      if (!gone) proc.kill("SIGKILL");
      await exited;
    },
    sigstop: () => proc.kill("SIGSTOP"),
    sigcont: () => proc.kill("SIGCONT"),
  };
  return member;
}

/** Start a member of a one-member cluster and wait until it serves clients. */
export async function startMember(opts: StartOptions = {}): Promise<Member> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(opts);
    } catch (err) {
      if (err instanceof StartError && err.portClash && attempt < MAX_START_ATTEMPTS) continue;
      throw err;
    }
  }
}

/** startMember with the real etcd, for side-by-side comparisons. */
export function startRealEtcd(opts: Omit<StartOptions, "binary"> = {}): Promise<Member> {
  return startMember({ ...opts, binary: ETCD_BIN });
}

/** A fresh tsetcd and a fresh real etcd side by side, filled in before the tests of the calling describe block. */
export interface SideBySide {
  ours: Member;
  etcd: Member;
}

/**
 * For the side-by-side compat tests: starts both (with the same member name, so outputs that
 * show it compare too) before the calling describe block's tests and stops both after them.
 */
export function sideBySide(name: string): SideBySide {
  const pair = {} as SideBySide;
  beforeAll(async () => {
    [pair.ours, pair.etcd] = await Promise.all([startMember({ name }), startRealEtcd({ name })]);
  }, 30_000);
  afterAll(async () => {
    await Promise.all([pair.ours?.stop(), pair.etcd?.stop()]);
  });
  return pair;
}
