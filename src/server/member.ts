// One tsetcd member: owns the database, the write log and the state machine.
// The path of a write (DESIGN.md): propose → append to the log → commit →
// apply in log order → answer. A single member is its own quorum, so every
// proposal of one event-loop turn is appended, applied and committed in ONE
// SQLite transaction whose commit is one fsync (synchronous=FULL): the write
// is durable before any client hears of it, and the applied index is stored
// with the effects it describes, so a crash replays nothing twice.
// The Raft issue replaces `flush` with Ready handling; the seam is `propose`.
import { Database } from "bun:sqlite";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { create, toBinary, fromBinary } from "@bufbuild/protobuf";
import { InternalRequestSchema, type InternalRequest } from "../gen/tsetcdpb/internal_pb.js";
import {
  AlarmRequestSchema,
  AlarmRequest_AlarmAction,
  AlarmType,
  HashKVResponseSchema,
  ResponseHeaderSchema,
  StatusResponseSchema,
  type HashKVResponse,
  type RangeRequest,
  type RangeResponse,
  type ResponseHeader,
  type StatusResponse,
  type TxnRequest,
  type TxnResponse,
} from "../gen/etcdserverpb/rpc_pb.js";
import { EtcdError, Errors } from "../errors.js";
import { log } from "../log.js";
import { openDatabase } from "../storage/db.js";
import { EntryType, LogStore } from "../storage/log-store.js";
import { MetaStore } from "../storage/meta-store.js";
import { MvccStore } from "../mvcc/store.js";
import { SqliteBackend } from "../mvcc/sqlite-backend.js";
import { CLUSTER_VERSION, SERVER_VERSION } from "../version.js";
import { Alarms } from "./alarms.js";
import { Metrics } from "./metrics.js";
import { applyRequest, type StateMachine } from "./apply.js";
import { clusterId, memberId, parseInitialCluster } from "./ids.js";

export interface MemberConfig {
  name: string;
  dataDir: string;
  initialAdvertisePeerUrls: string[];
  initialCluster: string;
  initialClusterToken: string;
  /** --max-request-bytes: the largest encoded request accepted into the log. */
  maxRequestBytes: number;
  /** The effective backend quota in bytes (Infinity: none). */
  quotaBackendBytes: number;
}

type Request = InternalRequest["request"];

interface Proposal {
  request: Request;
  data: Uint8Array;
  resolve: (value: any) => void;
  reject: (err: unknown) => void;
}

/** Proposals waiting for the next flush; past this, clients get "too many requests". */
const MAX_PENDING = 20_000;
/** Applied entries kept in the log for followers to catch up (the Raft issue's window). */
const LOG_RETAIN = 10_000;

export class Member {
  readonly memberId: bigint;
  readonly clusterId: bigint;
  readonly term: number;
  readonly store: MvccStore;
  readonly alarms: Alarms;
  readonly metrics: Metrics;
  private readonly sm: StateMachine;
  private readonly meta: MetaStore;
  private readonly log: LogStore;
  private readonly applyBatch: (batch: Proposal[]) => unknown[];
  private lastIndex: number;
  private appliedIndex: number;
  private firstIndex: number;
  private pending: Proposal[] = [];
  private flushScheduled = false;
  private stopped = false;
  private nextId = 1n;
  private readonly quota: number;
  /** SQLite's page size: fixed once the database exists (we never change it). */
  private readonly pageSize: number;
  /** Database size as of the last commit: the quota check must not query SQLite per request. */
  private sizeAfterLastFlush = 0;

  private constructor(
    private readonly db: Database,
    readonly config: MemberConfig,
  ) {
    this.meta = new MetaStore(db);
    this.pageSize = (db.query("PRAGMA page_size").get() as { page_size: number }).page_size;
    this.log = new LogStore(db);
    this.store = new MvccStore(new SqliteBackend(db));
    this.alarms = new Alarms(this.meta);
    this.sm = { store: this.store, alarms: this.alarms };
    this.quota = config.quotaBackendBytes;

    const ids = this.loadOrCreateIdentity();
    this.memberId = ids.member;
    this.clusterId = ids.cluster;
    this.metrics = new Metrics({
      memberId: this.memberId,
      dbSize: () => this.dbSize(),
      dbSizeInUse: () => this.dbSizeInUse(),
      pendingProposals: () => this.pending.length,
    });
    // Every start is a new election for a single member, as in etcd.
    this.term = (this.meta.getNumber("term") ?? 1) + 1;
    this.meta.setNumber("term", this.term);

    const bounds = this.log.range();
    this.firstIndex = bounds.first;
    this.lastIndex = bounds.last;
    this.appliedIndex = this.meta.getNumber("applied_index") ?? 0;
    this.applyBatch = db.transaction((batch: Proposal[]) => this.appendAndApply(batch));
    this.replay();
    this.appendStartEntries(bounds.last === 0);
    this.metrics.indexes(this.lastIndex, this.appliedIndex);
    this.sizeAfterLastFlush = this.dbSize();
  }

  static open(config: MemberConfig): Member {
    const dir = join(config.dataDir, "member");
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    return new Member(openDatabase(join(dir, "tsetcd.db")), config);
  }

  private loadOrCreateIdentity(): { member: bigint; cluster: bigint } {
    const storedMember = this.meta.getBigInt("member_id");
    const storedCluster = this.meta.getBigInt("cluster_id");
    if (storedMember !== undefined && storedCluster !== undefined) {
      return { member: storedMember, cluster: storedCluster };
    }
    // First boot: ids from --initial-cluster and --initial-cluster-token, as etcd.
    const members = parseInitialCluster(this.config.initialCluster);
    const ownUrls = members.get(this.config.name);
    if (!ownUrls) {
      throw new Error(`couldn't find local name "${this.config.name}" in the initial cluster configuration`);
    }
    const ids = [...members.values()].map((urls) => memberId(urls, this.config.initialClusterToken));
    const member = memberId(ownUrls, this.config.initialClusterToken);
    const cluster = clusterId(ids);
    this.db.transaction(() => {
      this.meta.setBigInt("member_id", member);
      this.meta.setBigInt("cluster_id", cluster);
    })();
    return { member, cluster };
  }

  /** Applies entries that were logged but not applied (after a crash between the two, in the Raft future). */
  private replay(): void {
    if (this.appliedIndex >= this.lastIndex) return;
    const entries = this.log.entries(this.appliedIndex + 1, this.lastIndex + 1);
    this.db.transaction(() => {
      for (const e of entries) {
        if (e.type !== EntryType.Normal || e.data.length === 0) continue;
        try {
          applyRequest(this.sm, fromBinary(InternalRequestSchema, e.data).request);
        } catch (err) {
          if (!(err instanceof EtcdError)) throw err;
        }
      }
      this.appliedIndex = this.lastIndex;
      this.meta.setNumber("applied_index", this.appliedIndex);
    })();
    log.info("replayed write log", { entries: entries.length, "applied-index": this.appliedIndex });
  }

  /**
   * The entries etcd's log gets when a member starts, so raft indexes match
   * etcd's (etcdctl endpoint status shows them): on first boot the member's
   * own conf change at term 1; on every start the new leader's empty entry
   * and the published member attributes; on first boot the cluster version.
   */
  private appendStartEntries(fresh: boolean): void {
    const entries: [number, EntryType, Uint8Array][] = [];
    const json = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));
    if (fresh) entries.push([1, EntryType.ConfChange, json({ type: "add", id: this.memberId.toString(16) })]);
    entries.push([this.term, EntryType.Normal, new Uint8Array()]);
    entries.push([this.term, EntryType.Member, json({ publish: { id: this.memberId.toString(16), name: this.config.name } })]);
    if (fresh) entries.push([this.term, EntryType.Member, json({ clusterVersion: CLUSTER_VERSION })]);
    this.db.transaction(() => {
      for (const [term, type, data] of entries) this.log.append(++this.lastIndex, term, type, data);
      if (this.firstIndex === 0) this.firstIndex = 1;
      this.appliedIndex = this.lastIndex;
      this.meta.setNumber("applied_index", this.appliedIndex);
    })();
  }

  /** Proposes a write; resolves with its response once it is durable and applied. */
  propose(request: Request): Promise<any> {
    if (this.stopped) return Promise.reject(Errors.stopped());
    if (this.pending.length >= MAX_PENDING) return Promise.reject(Errors.tooManyRequests());
    const data = toBinary(InternalRequestSchema, create(InternalRequestSchema, { id: this.nextId++, request }));
    if (data.length > this.config.maxRequestBytes) return Promise.reject(Errors.requestTooLarge());
    if ((request.case === "put" || request.case === "txn") && this.sizeAfterLastFlush + data.length > this.quota) {
      // As etcd: the first write over the quota raises the NOSPACE alarm (through
      // the log, so it survives restarts) and every such write is refused.
      if (!this.alarms.has(AlarmType.NOSPACE)) {
        log.warn("database space exceeded", { "quota-size-bytes": this.quota, "current-size-bytes": this.sizeAfterLastFlush });
        void this.propose({
          case: "alarm",
          value: create(AlarmRequestSchema, { action: AlarmRequest_AlarmAction.ACTIVATE, memberID: this.memberId, alarm: AlarmType.NOSPACE }),
        }).catch(() => {});
      }
      return Promise.reject(Errors.noSpace());
    }
    return new Promise((resolve, reject) => {
      this.pending.push({ request, data, resolve, reject });
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  private flush(): void {
    this.flushScheduled = false;
    const batch = this.pending;
    if (batch.length === 0) return;
    this.pending = [];
    let results: unknown[];
    const started = performance.now();
    try {
      results = this.applyBatch(batch) as unknown[];
    } catch (err) {
      // Nothing of the batch was committed: no client was told otherwise.
      log.error("failed to commit write batch", { error: String(err) });
      for (const p of batch) p.reject(err);
      return;
    }
    let failures = 0;
    for (let i = 0; i < batch.length; i++) {
      const r = results[i];
      if (r instanceof EtcdError) {
        failures++;
        batch[i].reject(r);
      } else batch[i].resolve(this.withHeader(r as { header?: ResponseHeader }));
    }
    this.metrics.batchCommitted(failures, (performance.now() - started) / 1000);
    this.metrics.indexes(this.lastIndex, this.appliedIndex);
    if (this.lastIndex - this.firstIndex > 2 * LOG_RETAIN) this.trimLog();
    this.sizeAfterLastFlush = this.dbSize();
  }

  /** Runs inside one transaction: log append, apply, applied index. */
  private appendAndApply(batch: Proposal[]): unknown[] {
    const results = new Array<unknown>(batch.length);
    let index = this.lastIndex;
    for (const p of batch) this.log.append(++index, this.term, EntryType.Normal, p.data);
    for (let i = 0; i < batch.length; i++) {
      try {
        results[i] = applyRequest(this.sm, batch[i].request);
      } catch (err) {
        // A user error is a deterministic result of the entry, not a failure of the batch.
        if (!(err instanceof EtcdError)) throw err;
        results[i] = err;
      }
    }
    if (this.firstIndex === 0) this.firstIndex = this.lastIndex + 1;
    this.lastIndex = index;
    this.appliedIndex = index;
    this.meta.setNumber("applied_index", index);
    return results;
  }

  private trimLog(): void {
    const keepFrom = this.appliedIndex - LOG_RETAIN;
    this.log.compactBefore(keepFrom);
    this.firstIndex = keepFrom;
  }

  /** Linearizable and serializable reads are the same on a single member: apply is synchronous with commit. */
  range(req: RangeRequest): RangeResponse {
    return this.withHeader(this.store.range(req));
  }

  /** A transaction without writes is served like a read, without entering the log. */
  readTxn(req: TxnRequest): TxnResponse {
    return this.withHeader(this.store.txn(req));
  }

  header(revision = this.store.rev): ResponseHeader {
    return create(ResponseHeaderSchema, {
      clusterId: this.clusterId,
      memberId: this.memberId,
      revision: BigInt(revision),
      raftTerm: BigInt(this.term),
    });
  }

  private withHeader<T extends { header?: ResponseHeader }>(resp: T): T {
    const h = resp.header;
    if (h) {
      h.clusterId = this.clusterId;
      h.memberId = this.memberId;
      h.raftTerm = BigInt(this.term);
    } else {
      resp.header = this.header();
    }
    return resp;
  }

  dbSize(): number {
    const pages = this.db.query("PRAGMA page_count").get() as { page_count: number };
    return pages.page_count * this.pageSize;
  }

  /** The database size less its free pages; pass `total` when the caller just read dbSize(). */
  dbSizeInUse(total = this.dbSize()): number {
    const free = this.db.query("PRAGMA freelist_count").get() as { freelist_count: number };
    return total - free.freelist_count * this.pageSize;
  }

  status(): StatusResponse {
    const total = this.dbSize();
    return create(StatusResponseSchema, {
      header: this.header(),
      version: SERVER_VERSION,
      dbSize: BigInt(total),
      dbSizeInUse: BigInt(this.dbSizeInUse(total)),
      leader: this.memberId,
      raftIndex: BigInt(this.lastIndex),
      raftTerm: BigInt(this.term),
      raftAppliedIndex: BigInt(this.appliedIndex),
      isLearner: false,
      errors: this.alarms.list().map((a) => `memberID:${a.memberID} alarm:${AlarmType[a.alarm]} `),
    });
  }

  /** Why /health is false ("" when healthy): etcd 3.5's reasons. */
  healthProblem(): string {
    const alarms = this.alarms.list();
    return alarms.length === 0 ? "" : `ALARM ${alarms.map((a) => AlarmType[a.alarm]).join(",")}`;
  }

  /** Maintenance.HashKV: the store's hash up to `revision` (0 = current). */
  hashKV(revision: number): HashKVResponse {
    const h = this.store.hashKV(revision);
    return create(HashKVResponseSchema, {
      header: this.header(h.revision),
      hash: h.hash,
      compactRevision: BigInt(h.compactRevision),
    });
  }

  /**
   * Maintenance.Defragment: rewrites the database file without free pages
   * (SQLite's VACUUM), then truncates the WAL. Blocks the member meanwhile,
   * as etcd's defragmentation blocks its backend.
   */
  defragment(): void {
    if (this.stopped) throw Errors.stopped();
    this.flush();
    const before = this.dbSize();
    this.db.run("VACUUM");
    this.db.run("PRAGMA wal_checkpoint(TRUNCATE)");
    this.sizeAfterLastFlush = this.dbSize();
    log.info("finished defragmenting the database", { "size-before": before, "size-after": this.sizeAfterLastFlush });
  }

  /** Stops taking writes, commits what is queued, and closes the database. */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.flush();
    this.db.close();
  }
}
