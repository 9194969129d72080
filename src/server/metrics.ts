// The member's Prometheus metrics under etcd's names (prom-client), served at
// /metrics. Values a scrape can compute (sizes, revisions) are read at
// collect time; events (commits, fsyncs) are counted as they happen.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import { API_VERSION, SERVER_VERSION } from "../version.js";

export interface MetricsSource {
  memberId: bigint;
  dbSize(): number;
  dbSizeInUse(): number;
  pendingProposals(): number;
  hasLeader(): boolean;
  isLeader(): boolean;
  /** Watchers of the watch hub (every transport). */
  watchers(): number;
}

export class Metrics {
  readonly registry = new Registry();
  private readonly committed: Gauge;
  private readonly appliedGauge: Gauge;
  private readonly failed: Counter;
  private readonly commitSeconds: Histogram;
  private readonly fsyncSeconds: Histogram;
  private readonly leaderChanges: Counter;

  /** `processMetrics`: Node's process_* and nodejs_* metrics too (one set per process; the simulator runs many members in one). */
  constructor(source: MetricsSource, processMetrics = true) {
    const r = [this.registry];
    if (processMetrics) collectDefaultMetrics({ register: this.registry });
    new Gauge({
      name: "etcd_server_has_leader",
      help: "Whether or not a leader exists. 1 is existence, 0 is not.",
      registers: r,
      collect() {
        this.set(source.hasLeader() ? 1 : 0);
      },
    });
    new Gauge({
      name: "etcd_server_is_leader",
      help: "Whether or not this member is a leader. 1 if is, 0 otherwise.",
      registers: r,
      collect() {
        this.set(source.isLeader() ? 1 : 0);
      },
    });
    this.leaderChanges = new Counter({ name: "etcd_server_leader_changes_seen_total", help: "The number of leader changes seen.", registers: r });
    new Gauge({
      name: "etcd_server_version",
      help: "Which version is running. 1 for 'server_version' label with current version.",
      labelNames: ["server_version"],
      registers: r,
    }).set({ server_version: SERVER_VERSION }, 1);
    new Gauge({
      name: "etcd_cluster_version",
      help: "Which version is running. 1 for 'cluster_version' label with current cluster version",
      labelNames: ["cluster_version"],
      registers: r,
    }).set({ cluster_version: API_VERSION }, 1);
    new Gauge({
      name: "etcd_server_id",
      help: "Server or member ID in hexadecimal format. 1 for 'server_id' label with current ID.",
      labelNames: ["server_id"],
      registers: r,
    }).set({ server_id: source.memberId.toString(16) }, 1);
    this.committed = new Gauge({ name: "etcd_server_proposals_committed_total", help: "The total number of consensus proposals committed.", registers: r });
    this.appliedGauge = new Gauge({ name: "etcd_server_proposals_applied_total", help: "The total number of consensus proposals applied.", registers: r });
    new Gauge({
      name: "etcd_server_proposals_pending",
      help: "The current number of pending proposals to commit.",
      registers: r,
      collect() {
        this.set(source.pendingProposals());
      },
    });
    this.failed = new Counter({ name: "etcd_server_proposals_failed_total", help: "The total number of failed proposals seen.", registers: r });
    new Gauge({
      name: "etcd_mvcc_db_total_size_in_bytes",
      help: "Total size of the underlying database physically allocated in bytes.",
      registers: r,
      collect() {
        this.set(source.dbSize());
      },
    });
    new Gauge({
      name: "etcd_mvcc_db_total_size_in_use_in_bytes",
      help: "Total size of the underlying database logically in use in bytes.",
      registers: r,
      collect() {
        this.set(source.dbSizeInUse());
      },
    });
    new Gauge({
      name: "etcd_debugging_mvcc_watcher_total",
      help: "Total number of watchers.",
      registers: r,
      collect() {
        this.set(source.watchers());
      },
    });
    // etcd's buckets: 1 ms doubling 14 times.
    const buckets = Array.from({ length: 14 }, (_, i) => 0.001 * 2 ** i);
    // One SQLite commit is both the log fsync and the backend commit of a batch.
    this.fsyncSeconds = new Histogram({
      name: "etcd_disk_wal_fsync_duration_seconds",
      help: "The latency distributions of fsync called by WAL.",
      buckets,
      registers: r,
    });
    this.commitSeconds = new Histogram({
      name: "etcd_disk_backend_commit_duration_seconds",
      help: "The latency distributions of commit called by backend.",
      buckets,
      registers: r,
    });
  }

  /** A Ready was applied: `failures` entries were refused by apply; the committed and applied raft indexes now. */
  applied(failures: number, committed: number, applied: number): void {
    if (failures > 0) this.failed.inc(failures);
    this.committed.set(committed);
    this.appliedGauge.set(applied);
  }

  /** A transaction that was fsynced (log entries, vote or term) took `seconds`; it is also the backend's commit. */
  fsynced(seconds: number): void {
    this.fsyncSeconds.observe(seconds);
    this.commitSeconds.observe(seconds);
  }

  leaderChanged(): void {
    this.leaderChanges.inc();
  }

  async text(): Promise<{ body: string; contentType: string }> {
    return { body: await this.registry.metrics(), contentType: this.registry.contentType };
  }
}
