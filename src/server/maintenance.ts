// Maintenance and status (etcd's maintenance server over EtcdServer): status,
// health, hashes, alarms, leader transfer and defragmentation. The API's
// Maintenance service and the HTTP health routes see only MaintenanceApi.
import type { Database } from "bun:sqlite";
import { create } from "@bufbuild/protobuf";
import {
  AlarmRequest_AlarmAction,
  type AlarmRequest,
  type AlarmResponse,
  AlarmResponseSchema,
  AlarmType,
  type HashKVResponse,
  HashKVResponseSchema,
  type StatusResponse,
  StatusResponseSchema,
} from "../gen/etcdserverpb/rpc_pb.js";
import { Errors } from "../errors.js";
import { log } from "../log.js";
import type { Clock, Scheduler } from "../runtime/time.js";
import { SERVER_VERSION } from "../version.js";
import type { Propose } from "./requests.js";
import type { MemberState } from "./state.js";
import type { HeaderSource } from "./v3-server.js";

export interface MaintenanceApi {
  status(): StatusResponse;
  /** Why /health is false ("" when healthy): etcd 3.5's reasons. */
  healthProblem(): string;
  /** The store's hash up to `revision` (0 = current). */
  hashKV(revision: number): HashKVResponse;
  /** GET lists the alarms here; ACTIVATE / DEACTIVATE go through the log. */
  alarm(req: AlarmRequest): Promise<AlarmResponse>;
  /** Only the leader can hand over, to a voting member. */
  moveLeader(target: bigint): Promise<void>;
  defragment(): void;
}

export interface MaintenanceHost {
  readonly memberId: bigint;
  stopped(): boolean;
  isLeader(): boolean;
  leader(): bigint;
  term(): number;
  committed(): number;
  appliedIndex(): number;
  isLearner(): boolean;
  /** Asks Raft to hand leadership to `target`; false when it refuses at once. */
  transferLeader(target: bigint): boolean;
  /** Whether `id` is a voting member (a learner cannot lead). */
  isVoter(id: bigint): boolean;
  /** The database was rewritten: the quota check reads its new size. */
  resized(): void;
}

export class Maintenance implements MaintenanceApi {
  private readonly pageSize: number;

  constructor(
    private readonly db: Database,
    private readonly state: MemberState,
    private readonly host: MaintenanceHost,
    private readonly headers: HeaderSource,
    private readonly propose: Propose,
    private readonly clock: Clock,
    private readonly scheduler: Scheduler,
    private readonly opts: { requestTimeoutMs: number; heartbeatIntervalMs: number },
  ) {
    this.pageSize = (db.query("PRAGMA page_size").get() as { page_size: number }).page_size;
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
      header: this.headers.header(),
      version: SERVER_VERSION,
      dbSize: BigInt(total),
      dbSizeInUse: BigInt(this.dbSizeInUse(total)),
      leader: this.host.leader(),
      raftIndex: BigInt(this.host.committed()),
      raftTerm: BigInt(this.host.term()),
      raftAppliedIndex: BigInt(this.host.appliedIndex()),
      isLearner: this.host.isLearner(),
      errors: this.state.alarms.list().map((a) => `memberID:${a.memberID} alarm:${AlarmType[a.alarm]} `),
    });
  }

  healthProblem(): string {
    const alarms = this.state.alarms.list();
    if (alarms.length > 0) return `ALARM ${alarms.map((a) => AlarmType[a.alarm]).join(",")}`;
    if (this.host.leader() === 0n) return "RAFT NO LEADER";
    return "";
  }

  hashKV(revision: number): HashKVResponse {
    const h = this.state.store.hashKV(revision);
    return create(HashKVResponseSchema, {
      header: this.headers.header(h.revision),
      hash: h.hash,
      compactRevision: BigInt(h.compactRevision),
    });
  }

  // etcd answers Alarm without a response header (its maintenance server never fills one).
  async alarm(req: AlarmRequest): Promise<AlarmResponse> {
    if (req.action === AlarmRequest_AlarmAction.GET) {
      const alarms = this.state.alarms.list().filter((a) => req.alarm === AlarmType.NONE || a.alarm === req.alarm);
      return create(AlarmResponseSchema, { alarms });
    }
    const resp = await this.propose({ case: "alarm", value: req });
    resp.header = undefined;
    return resp;
  }

  async moveLeader(target: bigint): Promise<void> {
    if (!this.host.isLeader()) throw Errors.notLeader();
    if (!this.host.isVoter(target)) throw Errors.badLeaderTransferee();
    if (target === this.host.memberId) return;
    if (!this.host.transferLeader(target)) throw Errors.badLeaderTransferee();
    const deadline = this.clock.now() + this.opts.requestTimeoutMs;
    while (this.host.leader() !== target) {
      if (this.clock.now() > deadline || this.host.stopped()) throw Errors.timeoutLeaderTransfer();
      await this.scheduler.sleep(this.opts.heartbeatIntervalMs);
    }
    log.info("leadership transferred", { from: this.host.memberId.toString(16), to: target.toString(16) });
  }

  /**
   * Rewrites the database file without free pages (SQLite's VACUUM), then truncates the WAL.
   * Blocks the member meanwhile, as etcd's defragmentation blocks its backend.
   */
  defragment(): void {
    if (this.host.stopped()) throw Errors.stopped();
    const before = this.dbSize();
    this.db.run("VACUUM");
    this.db.run("PRAGMA wal_checkpoint(TRUNCATE)");
    this.host.resized();
    log.info("finished defragmenting the database", { "size-before": before, "size-after": this.dbSize() });
  }
}
