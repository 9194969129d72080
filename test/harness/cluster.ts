// Multi-process clusters for the cluster tests: N members (3 or 5) of one binary, started
// from command-line flags or from config/et_m*.yml rewritten into a temp dir, optionally with
// a TCP proxy in front of every member's peer port (peer-proxy.ts) so tests can partition.
//
// Which binary: CLUSTER_BINARY=etcd (or a path) picks it; default bin/tsetcd (or
// $TSETCD_BINARY, see tools.ts). `CLUSTER_BINARY=etcd npx bun test test/cluster` validates
// the tests themselves against real etcd 3.4.
//
// Every member process is started through server.ts, so each is killed when the test process
// exits; the cluster's temp dir (data dirs, config files) is removed at exit too.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse as parseYaml, stringify as stringifyYaml } from "yaml";
import { etcdctl, type EtcdctlResult } from "./etcdctl.ts";
import { grpcClient, type EtcdClient } from "./grpc-client.ts";
import { PeerProxy, procResolver } from "./peer-proxy.ts";
import { freePorts } from "./ports.ts";
import { startMember, type Member as Proc } from "./server.ts";
import { ETCD_BIN, REPO_ROOT, SUBJECT_BIN } from "./tools.ts";

/** The binary under test: CLUSTER_BINARY=etcd → /usr/bin/etcd, another value → that path. */
export const CLUSTER_BIN = (() => {
  const v = process.env.CLUSTER_BINARY;
  if (!v) return SUBJECT_BIN;
  if (v === "etcd") return ETCD_BIN;
  if (v === "tsetcd") return join(REPO_ROOT, "bin", "tsetcd");
  return v;
})();
/** True when the cluster tests run against real etcd (some expectations differ, see tests). */
export const IS_REAL_ETCD = CLUSTER_BIN === ETCD_BIN || /(^|\/)etcd$/.test(CLUSTER_BIN);

export const TOKEN = "etcd-cluster";

export interface ClusterOptions {
  /** Members; default 3. */
  size?: number;
  binary?: string;
  /** "flags" (default): etcd's flags; "config": config/et_m1.yml.. rewritten (size 3 only). */
  from?: "flags" | "config";
  /** A TCP proxy in front of every member's peer port (needed for partition()). */
  proxies?: boolean;
  /** Extra flags for every member (flags mode only). */
  args?: string[];
  /** --initial-cluster-token; default "etcd-cluster" (as in config/et_m*.yml). */
  token?: string;
  /** Member names; default et_m1.. (the names of config/et_m*.yml). */
  names?: string[];
  /** Bound on each member's start; default 20 s. */
  readyTimeoutMs?: number;
  /** Fixed ports instead of fresh ones (to start two binaries on the same ports in turn). */
  ports?: MemberPorts[];
  /** Scheme of the peer URLs; "https" needs peer TLS flags in `args` (e.g. --peer-auto-tls). */
  peerScheme?: "http" | "https";
}

export interface MemberPorts {
  client: number;
  /** The member's own peer port. */
  peer: number;
  /** The advertised peer port when there is a proxy (then `peer` is behind it). */
  proxy?: number;
}

export interface MemberStatus {
  id: string;
  leader: string;
  term: bigint;
  revision: bigint;
  raftIndex: bigint;
  isLearner: boolean;
}

const STATUS_TIMEOUT_MS = 1000;

// ---- cleanup ------------------------------------------------------------------------------

const clusterDirs = new Set<string>();
const allMembers = new Set<ClusterMember>();
let cleanupInstalled = false;
function installCleanup(): void {
  if (cleanupInstalled) return;
  cleanupInstalled = true;
  process.on("exit", () => {
    for (const m of allMembers) {
      const pid = m.pid;
      if (pid !== undefined) {
        try {
          process.kill(pid, "SIGKILL");
        } catch {
          // gone
        }
      }
    }
    for (const d of clusterDirs) rmSync(d, { recursive: true, force: true });
  });
}

// ---- a member ------------------------------------------------------------------------------

export class ClusterMember {
  /** Advertised peer URL (the proxy's when there is one): what the cluster knows. */
  readonly peerUrl: string;
  /** Where the process itself listens for peers. */
  readonly listenPeerUrl: string;
  readonly clientUrl: string;
  proc: Proc | null = null;
  proxy: PeerProxy | null = null;
  /** Hex member id, learned from the first status answer (or member list). */
  id: string | undefined;
  paused = false;
  private pastLogs = "";
  private startOpts: Parameters<typeof startMember>[0] | null = null;
  private clientCache: EtcdClient | null = null;

  constructor(
    readonly cluster: Cluster,
    readonly name: string,
    readonly ports: MemberPorts,
    readonly dataDir: string,
    peerScheme: "http" | "https" = "http",
  ) {
    this.clientUrl = `http://127.0.0.1:${ports.client}`;
    this.listenPeerUrl = `${peerScheme}://127.0.0.1:${ports.peer}`;
    this.peerUrl = `${peerScheme}://127.0.0.1:${ports.proxy ?? ports.peer}`;
    allMembers.add(this);
  }

  get pid(): number | undefined {
    return this.proc?.pid;
  }
  get running(): boolean {
    return this.proc !== null;
  }

  /** gRPC client for this member (a fresh connection after every restart). */
  get client(): EtcdClient {
    this.clientCache ??= grpcClient(this.clientUrl);
    return this.clientCache;
  }

  /** First start with these options; restart() repeats them. */
  async start(opts: NonNullable<Parameters<typeof startMember>[0]>): Promise<void> {
    this.startOpts = opts;
    await this.spawn();
  }

  private async spawn(): Promise<void> {
    if (this.proc) throw new Error(`${this.name} is already running`);
    this.paused = false;
    this.clientCache = null;
    this.proc = await startMember(this.startOpts!).catch((err) => {
      this.pastLogs += `\n${(err as Error).message}`;
      throw err;
    });
    const p = this.proc;
    void p.exited.then(() => {
      if (this.proc === p) {
        this.pastLogs += p.logs();
        this.proc = null;
      }
    });
  }

  /** Start again on the same data dir, ports and flags (initial-* flags are then ignored). */
  async restart(): Promise<void> {
    if (!this.startOpts) throw new Error(`${this.name} was never started`);
    await this.spawn();
  }

  private retire(): void {
    if (this.proc) this.pastLogs += this.proc.logs();
    this.proc = null;
    this.clientCache = null;
  }

  async kill9(): Promise<void> {
    const p = this.proc;
    if (!p) return;
    await p.kill9();
    if (this.proc === p) this.retire();
  }

  /** SIGTERM (bounded, then SIGKILL); the data dir is kept. */
  async stop(): Promise<void> {
    const p = this.proc;
    if (!p) return;
    await p.stop();
    if (this.proc === p) this.retire();
  }

  sigstop(): void {
    this.proc?.sigstop();
    this.paused = true;
  }
  sigcont(): void {
    this.proc?.sigcont();
    this.paused = false;
  }

  /** Everything every incarnation of this member printed. */
  logs(): string {
    return this.pastLogs + (this.proc?.logs() ?? "");
  }

  async status(timeoutMs = STATUS_TIMEOUT_MS): Promise<MemberStatus> {
    const r = await this.client.maintenance.status({}, { timeoutMs });
    const id = r.header!.memberId.toString(16);
    this.id ??= id;
    return {
      id,
      leader: r.leader.toString(16),
      term: r.raftTerm,
      revision: r.header!.revision,
      raftIndex: r.raftIndex,
      isLearner: r.isLearner,
    };
  }

  /** etcdctl against this member only. */
  ctl(args: string[], timeoutMs = 15_000): Promise<EtcdctlResult> {
    return etcdctl(this.clientUrl, args, { timeoutMs });
  }
}

// ---- the cluster ---------------------------------------------------------------------------

export class Cluster {
  readonly members: ClusterMember[] = [];
  readonly binary: string;
  readonly token: string;
  readonly root: string;
  readonly proxies: boolean;
  readonly peerScheme: "http" | "https";
  /** Flags every member got (flags mode). */
  readonly commonArgs: string[];

  private constructor(opts: ClusterOptions) {
    this.binary = opts.binary ?? CLUSTER_BIN;
    this.token = opts.token ?? TOKEN;
    this.proxies = opts.proxies ?? false;
    this.peerScheme = opts.peerScheme ?? "http";
    this.commonArgs = opts.args ?? [];
    installCleanup();
    this.root = mkdtempSync(join(tmpdir(), "tsetcd-cluster-"));
    clusterDirs.add(this.root);
  }

  /** Start an N-member cluster and wait until it has a leader. */
  static async start(opts: ClusterOptions = {}): Promise<Cluster> {
    const c = new Cluster(opts);
    try {
      await c.init(opts);
    } catch (err) {
      await c.destroy();
      throw err;
    }
    return c;
  }

  private async init(opts: ClusterOptions): Promise<void> {
    const size = opts.size ?? 3;
    const from = opts.from ?? "flags";
    if (from === "config" && size !== 3) throw new Error("config mode has exactly 3 members (config/et_m1..3.yml)");
    const names = opts.names ?? Array.from({ length: size }, (_, i) => `et_m${i + 1}`);
    for (let i = 0; i < size; i++) {
      const ports = opts.ports?.[i] ?? (await this.pickPorts());
      this.members.push(await this.newMember(names[i]!, ports));
    }
    const initialCluster = this.members.map((m) => `${m.name}=${m.peerUrl}`).join(",");
    await Promise.all(
      this.members.map((m, i) =>
        m.start(
          from === "config" ? this.configStart(m, i + 1, initialCluster, opts.readyTimeoutMs) : this.flagStart(m, initialCluster, "new", opts.readyTimeoutMs),
        ),
      ),
    );
    await this.waitLeader();
  }

  private async pickPorts(): Promise<MemberPorts> {
    const [client, peer, proxy] = await freePorts(this.proxies ? 3 : 2);
    return { client: client!, peer: peer!, proxy };
  }

  private async newMember(name: string, ports: MemberPorts): Promise<ClusterMember> {
    const dataDir = join(this.root, `${name}.etcd`);
    const m = new ClusterMember(this, name, ports, dataDir, this.peerScheme);
    if (this.proxies) {
      if (ports.proxy === undefined) throw new Error(`${name}: proxies need a proxy port`);
      const proxyPort = ports.proxy;
      m.proxy = new PeerProxy({
        listenPort: proxyPort,
        targetPort: ports.peer,
        identify: procResolver(
          () => proxyPort,
          () => this.members.map((x) => ({ name: x.name, pid: x.pid })),
        ),
      });
      await m.proxy.start();
    }
    return m;
  }

  /** What every way of starting a member passes to startMember. */
  private startBase(m: ClusterMember, readyTimeoutMs?: number) {
    return { binary: this.binary, name: m.name, dataDir: m.dataDir, clientUrl: m.clientUrl, peerUrl: m.listenPeerUrl, readyTimeoutMs };
  }

  /** The flags that start (and restart) a member. */
  flagStart(m: ClusterMember, initialCluster: string, state: "new" | "existing", readyTimeoutMs?: number) {
    return {
      ...this.startBase(m, readyTimeoutMs),
      args: [
        `--initial-advertise-peer-urls=${m.peerUrl}`,
        `--initial-cluster=${initialCluster}`,
        `--initial-cluster-state=${state}`,
        `--initial-cluster-token=${this.token}`,
        ...this.commonArgs,
      ],
    };
  }

  /** config/et_m<n>.yml with ports, data dir and initial cluster rewritten; --config-file. */
  private configStart(m: ClusterMember, n: number, initialCluster: string, readyTimeoutMs?: number) {
    const conf = parseYaml(readFileSync(join(REPO_ROOT, "config", `et_m${n}.yml`), "utf8")) as Record<string, unknown>;
    conf.name = m.name;
    conf["data-dir"] = m.dataDir;
    conf["listen-peer-urls"] = m.listenPeerUrl;
    conf["listen-client-urls"] = m.clientUrl;
    conf["initial-advertise-peer-urls"] = m.peerUrl;
    conf["advertise-client-urls"] = m.clientUrl;
    conf["initial-cluster"] = initialCluster;
    conf["initial-cluster-token"] = this.token;
    const dir = join(this.root, "config");
    mkdirSync(dir, { recursive: true });
    const file = join(dir, `et_m${n}.yml`);
    writeFileSync(file, stringifyYaml(conf));
    return {
      ...this.startBase(m, readyTimeoutMs),
      exactArgs: true,
      args: [`--config-file=${file}`],
    };
  }

  get running(): ClusterMember[] {
    return this.members.filter((m) => m.running);
  }
  /** Client URLs of all members (for etcdctl --endpoints). */
  endpoints(members: ClusterMember[] = this.members): string[] {
    return members.map((m) => m.clientUrl);
  }
  member(name: string): ClusterMember {
    const m = this.members.find((x) => x.name === name);
    if (!m) throw new Error(`no member ${name}`);
    return m;
  }

  /** etcdctl with --endpoints = every member (or the given ones). */
  ctl(args: string[], opts: { members?: ClusterMember[]; timeoutMs?: number } = {}): Promise<EtcdctlResult> {
    return etcdctl(this.endpoints(opts.members), args, { timeoutMs: opts.timeoutMs });
  }

  /** Status of each of `members` that answers within the timeout (others: an Error). */
  async statuses(members: ClusterMember[] = this.members): Promise<Array<MemberStatus | Error>> {
    return Promise.all(
      members.map((m) => (m.running && !m.paused ? m.status().catch((e: unknown) => e as Error) : Promise.resolve(new Error(`${m.name} not running`)))),
    );
  }

  /**
   * Wait until the members in `among` (default all running, unpaused) that answer agree on
   * one leader that is itself among them and says so, with at least a majority of the
   * whole cluster answering. Resolves with the leader and term; throws after timeoutMs.
   */
  async waitLeader(opts: { among?: ClusterMember[]; timeoutMs?: number; notId?: string } = {}): Promise<{ leader: ClusterMember; term: bigint }> {
    const deadline = Date.now() + (opts.timeoutMs ?? 20_000);
    let last = "";
    for (;;) {
      const among = (opts.among ?? this.members).filter((m) => m.running && !m.paused);
      const sts = await this.statuses(among);
      const ok = sts.filter((s): s is MemberStatus => !(s instanceof Error));
      const voters = ok.filter((s) => !s.isLearner);
      const leaders = new Set(ok.map((s) => s.leader));
      const quorum = Math.floor(this.members.length / 2) + 1;
      if (voters.length >= Math.min(quorum, among.length) && leaders.size === 1) {
        const id = ok[0]!.leader;
        const idx = ok.findIndex((s) => s.id === id);
        if (id !== "0" && idx >= 0 && id !== opts.notId) {
          const terms = new Set(ok.map((s) => s.term));
          if (terms.size === 1) return { leader: among[sts.indexOf(ok[idx]!)]!, term: ok[idx]!.term };
        }
      }
      last = sts.map((s, i) => `${among[i]!.name}: ${s instanceof Error ? s.message : `leader ${s.leader} term ${s.term}`}`).join("; ");
      if (Date.now() > deadline) throw new Error(`no agreed leader after ${opts.timeoutMs ?? 20_000} ms (${last})`);
      await Bun.sleep(50);
    }
  }

  /** The current leader (waits for one). */
  async leader(timeoutMs?: number): Promise<ClusterMember> {
    return (await this.waitLeader({ timeoutMs })).leader;
  }

  async followers(): Promise<ClusterMember[]> {
    const l = await this.leader();
    return this.members.filter((m) => m !== l && m.running);
  }

  /** Member ids (hex) by name, from `etcdctl member list -w json`. */
  async memberIds(): Promise<Map<string, string>> {
    const r = await this.ctl(["member", "list", "-w", "json"], { members: this.running });
    if (r.code !== 0) throw new Error(`member list failed: ${r.stderr}`);
    const out = new Map<string, string>();
    // Ids are uint64; JSON.parse would round them, so take them from the text.
    const ids = [...r.stdout.matchAll(/"ID":(\d+),"name":"([^"]*)"/g)];
    for (const [, id, name] of ids) out.set(name!, BigInt(id!).toString(16));
    for (const m of this.members) if (out.has(m.name)) m.id = out.get(m.name);
    return out;
  }

  // ---- network --------------------------------------------------------------------------

  /**
   * Cut the network between groups: a member only reaches members of its own group
   * (members in no group are cut from everyone). Needs `proxies: true`.
   */
  partition(...groups: ClusterMember[][]): void {
    if (!this.proxies) throw new Error("partition() needs a cluster started with proxies: true");
    this.heal();
    for (const m of this.members) {
      const mine = groups.find((g) => g.includes(m));
      const others = this.members.filter((x) => !mine?.includes(x)).map((x) => x.name);
      if (!mine) m.proxy!.blackhole();
      else m.proxy!.blackholeFrom(others);
    }
  }

  /** Cut one member from all others (partition([m], rest)). */
  isolate(m: ClusterMember): void {
    this.partition(
      [m],
      this.members.filter((x) => x !== m),
    );
  }

  heal(): void {
    for (const m of this.members) m.proxy?.heal();
  }

  // ---- membership -------------------------------------------------------------------------

  /**
   * `etcdctl member add NAME --peer-urls=... [--learner]` through the running members, and a
   * ClusterMember for it (not started: call startAdded). Returns etcdctl's output too.
   */
  async addMember(name: string, opts: { learner?: boolean } = {}): Promise<{ member: ClusterMember; ctl: EtcdctlResult; initialCluster: string }> {
    const m = await this.newMember(name, await this.pickPorts());
    const args = ["member", "add", name, `--peer-urls=${m.peerUrl}`];
    if (opts.learner) args.push("--learner");
    const ctl = await this.reconfig(args, this.running);
    if (ctl.code !== 0) throw new Error(`member add failed (${ctl.code}): ${ctl.stderr}${ctl.stdout}`);
    const ic = /^ETCD_INITIAL_CLUSTER="([^"]*)"$/m.exec(ctl.stdout);
    if (!ic) throw new Error(`member add printed no ETCD_INITIAL_CLUSTER:\n${ctl.stdout}`);
    this.members.push(m);
    return { member: m, ctl, initialCluster: ic[1]! };
  }

  /**
   * A `member add/remove/promote` etcdctl command, retried while etcd answers "etcdserver:
   * unhealthy cluster": with --strict-reconfig-check (on by default) etcd refuses a member
   * change until the leader has been connected to enough members for 5 s (HealthInterval),
   * e.g. just after the cluster started or a member joined.
   */
  async reconfig(args: string[], via: ClusterMember[] = this.running, timeoutMs = 15_000): Promise<EtcdctlResult> {
    let ctl = await this.ctl(args, { members: via });
    for (const deadline = Date.now() + timeoutMs; ctl.code !== 0 && /unhealthy cluster/.test(ctl.stderr) && Date.now() < deadline;) {
      await Bun.sleep(250);
      ctl = await this.ctl(args, { members: via });
    }
    return ctl;
  }

  /** Start a member added by addMember with --initial-cluster-state=existing. */
  async startAdded(m: ClusterMember, initialCluster: string, readyTimeoutMs?: number): Promise<void> {
    await m.start(this.flagStart(m, initialCluster, "existing", readyTimeoutMs));
  }

  /** Forget a member the cluster removed (stops its process). */
  async forget(m: ClusterMember): Promise<void> {
    await m.stop();
    await m.proxy?.close();
    const i = this.members.indexOf(m);
    if (i >= 0) this.members.splice(i, 1);
  }

  /** Restart all stopped members at once (a member may need a quorum to become ready). */
  async restartStopped(): Promise<void> {
    await Promise.all(this.members.filter((m) => !m.running).map((m) => m.restart()));
  }

  /** Stop everything and remove the cluster's files. */
  async destroy(): Promise<void> {
    await Promise.all(
      this.members.map(async (m) => {
        m.sigcont();
        await m.kill9();
        await m.proxy?.close();
        allMembers.delete(m);
      }),
    );
    rmSync(this.root, { recursive: true, force: true });
    clusterDirs.delete(this.root);
  }
}

// ---- etcdctl output ----------------------------------------------------------------------

/** Rows of an etcdctl `-w table` (header row first), cells trimmed. */
export function parseTable(text: string): string[][] {
  return text
    .split("\n")
    .filter((l) => l.startsWith("|") && l.endsWith("|"))
    .map((l) =>
      l
        .slice(1, -1)
        .split("|")
        .map((c) => c.trim()),
    );
}

/** Rows of a table as objects keyed by the header. */
export function tableRecords(text: string): Array<Record<string, string>> {
  const [header, ...rows] = parseTable(text);
  if (!header) return [];
  return rows.map((r) => Object.fromEntries(header.map((h, i) => [h, r[i] ?? ""])));
}
