// Whole members under simulation: real Member objects (apply, MVCC on SQLite,
// lessor, watch hub, waiters) on the simulated clock and network, each in a
// data dir of its own. A crash kills the member's process (its timers and
// deliveries stop, its database closes with what it committed); a restart
// opens a new member on the same data dir, as a restarted etcd does.
import { mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import type { Event } from "../../gen/mvccpb/kv_pb.js";
import { log } from "../../log.js";
import type { NodeId } from "../../raft/types.js";
import { memberId as deriveMemberId } from "../ids.js";
import { Member } from "../member.js";
import type { MemberConfig } from "../member-config.js";
import type { MemberInfo } from "../member-info.js";
import type { SimNetwork } from "./network.js";
import type { Owner, SimTime } from "./time.js";

const TOKEN = "sim";

/** One member slot: a name and data dir that outlive its incarnations. */
export interface Slot {
  name: string;
  url: string;
  id: NodeId;
  config: MemberConfig;
  /** The running incarnation, if any. */
  member?: Member;
  owner?: Owner;
  /** Applied its removal (or was told so): never started again. */
  removed: boolean;
  /** How many times it was started. */
  starts: number;
}

/** Per-member timing and limits a seed chooses. */
export interface MemberTuning {
  heartbeatMs: number;
  electionMs: number;
  snapshotCount: number;
  catchUpEntries: number;
  preVote: boolean;
  leaseCheckpointMs: number;
}

export interface ClusterEvents {
  /** A member published the events of revision `rev` (inside its apply; once committed). */
  published(slot: Slot, rev: number, events: Event[]): void;
  /** A member stopped on its own for a reason other than its removal: a bug. */
  failed(slot: Slot, reason: string, err: unknown): void;
  /** Something worth a line in the run's trace. */
  note?(what: string): void;
  /** Called on every incarnation before it starts (tests plant bugs with it). */
  mutate?(member: Member, slot: Slot): void;
}

export class SimCluster {
  readonly slots: Slot[] = [];
  private seeds = 0;

  constructor(
    private readonly time: SimTime,
    private readonly net: SimNetwork,
    private readonly root: string,
    private readonly tuning: MemberTuning,
    private readonly seed: number,
    private readonly events: ClusterEvents,
  ) {}

  /** Slots for a new cluster of `n` members (not started). */
  bootstrap(n: number): void {
    const names = Array.from({ length: n }, (_, i) => `m${i + 1}`);
    const initialCluster = names.map((name) => `${name}=${urlOf(name)}`).join(",");
    for (const name of names) this.addSlot(name, initialCluster, "new");
  }

  /** A slot for a member that joins the running cluster as `id` (after a member add). */
  joinSlot(name: string, id: NodeId, clusterId: bigint, members: MemberInfo[]): Slot {
    const slot = this.addSlot(name, `${name}=${urlOf(name)}`, "existing");
    slot.id = id;
    this.net.register(id, slot.url);
    slot.config.joinCluster = async () => ({ clusterId, localId: id, members });
    return slot;
  }

  nextName(): string {
    return `m${this.slots.length + 1}`;
  }

  urlOf(name: string): string {
    return urlOf(name);
  }

  private addSlot(name: string, initialCluster: string, state: "new" | "existing"): Slot {
    const url = urlOf(name);
    const dataDir = join(this.root, name);
    mkdirSync(dataDir, { recursive: true });
    const t = this.tuning;
    const config: MemberConfig = {
      name,
      dataDir,
      initialAdvertisePeerUrls: [url],
      initialCluster,
      initialClusterToken: TOKEN,
      initialClusterState: state,
      listenPeerUrls: [url],
      advertiseClientUrls: [`http://${name}:2379`],
      heartbeatIntervalMs: t.heartbeatMs,
      electionTimeoutMs: t.electionMs,
      snapshotCount: t.snapshotCount,
      snapshotCatchUpEntries: t.catchUpEntries,
      preVote: t.preVote,
      strictReconfigCheck: false,
      maxRequestBytes: 1.5 * 1024 * 1024,
      quotaBackendBytes: Number.POSITIVE_INFINITY,
      leaseCheckpointIntervalMs: t.leaseCheckpointMs,
    };
    const id = deriveMemberId([url], TOKEN);
    const slot: Slot = { name, url, id, config, removed: false, starts: 0 };
    this.net.register(id, url);
    this.slots.push(slot);
    return slot;
  }

  /** The slots with a running member. */
  live(): Slot[] {
    return this.slots.filter((s) => s.member !== undefined && !s.member.isStopped);
  }

  /** Starts a new incarnation on the slot's data dir. */
  async start(slot: Slot): Promise<void> {
    if (slot.member !== undefined || slot.removed) return;
    const owner = this.time.newOwner();
    slot.owner = owner;
    slot.starts++;
    const member = await Member.open(slot.config, {
      runtime: this.time.runtimeFor(owner, (this.seed * 1000 + ++this.seeds) >>> 0),
      network: this.net.factory(owner, join(slot.config.dataDir, "member", "snap")),
      fsync: false,
      processMetrics: false,
    });
    slot.member = member;
    // Learn the id a new member got from bootstrap (joiners are told theirs).
    slot.id = member.memberId;
    this.tap(slot, member);
    this.events.mutate?.(member, slot);
    member.onFatal = (reason, err) => {
      if (reason.includes("permanently removed")) {
        this.events.note?.(`${slot.name} stopped: removed`);
        slot.removed = true;
        this.crash(slot);
        return;
      }
      this.events.failed(slot, reason, err);
      this.crash(slot);
    };
    member.start().catch((err) => {
      if (!member.isStopped) this.events.failed(slot, "start failed", err);
    });
  }

  /** Kills the slot's process: its timers and deliveries stop, its database closes as committed. */
  crash(slot: Slot): void {
    const m = slot.member;
    if (m === undefined) return;
    this.time.kill(slot.owner!);
    this.net.detach(slot.id);
    slot.member = undefined;
    slot.owner = undefined;
    m.abandon();
  }

  /** Ends every member and deletes the data dirs. */
  close(): void {
    for (const s of this.slots) this.crash(s);
    rmSync(this.root, { recursive: true, force: true });
  }

  /** Records each revision the member's store publishes, once its transaction committed. */
  private tap(slot: Slot, member: Member): void {
    const hub = member.watchHub;
    const publish = hub.publish.bind(hub);
    const committed = hub.committed.bind(hub);
    const rolledBack = hub.rolledBack.bind(hub);
    let staged: Array<[number, Event[]]> = [];
    hub.publish = (rev, evs) => {
      staged.push([rev, evs]);
      publish(rev, evs);
    };
    hub.committed = () => {
      const done = staged;
      staged = [];
      for (const [rev, evs] of done) this.events.published(slot, rev, evs);
      committed();
    };
    hub.rolledBack = () => {
      staged = [];
      rolledBack();
    };
  }
}

function urlOf(name: string): string {
  return `http://${name}.sim:2380`;
}

/** The simulator's members log only what goes wrong (a run has thousands of elections). */
export function quietLogs(): void {
  log.configure(process.env.SIM_LOG === "1" ? "info" : "error");
}
