// One seeded run of 3 or 5 whole members (TigerBeetle's VOPR is the model):
// real members on a simulated clock and network, clients through the member's
// public request surface, and a nemesis that crashes and restarts members
// (also between any two events), cuts and heals links, moves leadership and
// changes the membership. Then calm: faults stop, every member comes back,
// clients finish, the cluster must converge, and the invariants in checks.ts
// are checked. The seed fixes every choice, so a failure replays exactly.
import { existsSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { mulberry32 } from "../../testing/prng.js";
import type { Member } from "../member.js";
import { Invariants } from "./checks.js";
import { type MemberTuning, quietLogs, SimCluster, type Slot } from "./cluster.js";
import { type NetworkFaults, SimNetwork } from "./network.js";
import { SIMULATION, SimTime } from "./time.js";
import { Workload } from "./workload.js";

export interface SimOptions {
  seed: number;
  /** 3 or 5 initial members (default: the seed chooses, mostly 3). */
  members?: number;
  /** Simulated ms of faults and load before the calm phase (default: the seed chooses, 1-3 s; a quarter of that if `quick`). */
  activeMs?: number;
  /** Shorter runs (a quarter of the active phase): what `npm test` runs for its 1,000 seeds. */
  quick?: boolean;
  /** Called on every member incarnation before it starts: the tests plant bugs with it. */
  mutate?: (member: Member, slot: Slot) => void;
}

export interface SimStats {
  events: number;
  crashes: number;
  restarts: number;
  partitions: number;
  transfers: number;
  memberAdds: number;
  memberRemoves: number;
  promotions: number;
  snapshotsSent: number;
  ops: number;
  answered: number;
  leases: number;
  renewals: number;
  watches: number;
  compactions: number;
  authChanges: number;
  hashChecks: number;
  uncheckedWatches: number;
  linearizability: "ok" | "unknown";
}

export interface SimResult {
  seed: number;
  members: number;
  failures: string[];
  stats: SimStats;
  /** What the nemesis did, in order: equal for equal seeds. */
  trace: string[];
}

/** A run's clock settings: etcd's ratio (election = 10 heartbeats), scaled down so a run holds many elections. */
const HEARTBEAT_MS = 10;
const ELECTION_MS = 100;
/** How often members at equal applied indexes compare hashKV. */
const HASH_CHECK_MS = 100;
/** How long a client waits for an answer before its outcome is unknown. */
const CLIENT_TIMEOUT_MS = 1500;
/** After faults stop: how long members have to come back and elect a leader, and how long the cluster has to converge. */
const SETTLE_MS = 10 * ELECTION_MS;
const CONVERGE_MS = 40 * ELECTION_MS;

export async function simulate(opts: SimOptions): Promise<SimResult> {
  quietLogs();
  return new Run(opts).run();
}

class Run {
  private readonly rand: () => number;
  private readonly time = new SimTime();
  private readonly net: SimNetwork;
  private readonly inv = new Invariants();
  private readonly cluster: SimCluster;
  private readonly workload: Workload;
  private readonly members: number;
  private readonly activeMs: number;
  private readonly crashBetweenEvents: number;
  private readonly nemesisEveryMs: number;
  private calm = false;
  private names = 0;
  private readonly trace: string[] = [];
  private readonly stats = { events: 0, crashes: 0, restarts: 0, partitions: 0, transfers: 0, memberAdds: 0, memberRemoves: 0, promotions: 0 };

  constructor(private readonly opts: SimOptions) {
    const seed = opts.seed;
    this.rand = mulberry32(seed);
    const r = this.rand;
    this.members = opts.members ?? (r() < 0.75 ? 3 : 5);
    const activeMs = 1000 + Math.floor(r() * 2000);
    this.activeMs = opts.activeMs ?? (opts.quick ? Math.floor(activeMs / 4) : activeMs);
    // How hostile the world is varies by seed, from calm to stormy.
    const faults: NetworkFaults = { minDelayMs: 1, maxDelayMs: 2 + Math.floor(r() * 12), dropRate: r() * 0.05, duplicateRate: r() * 0.02 };
    this.crashBetweenEvents = r() * 0.0015;
    this.nemesisEveryMs = 20 + Math.floor(r() * 150);
    const tuning: MemberTuning = {
      heartbeatMs: HEARTBEAT_MS,
      electionMs: ELECTION_MS,
      snapshotCount: 4 + Math.floor(r() * 40),
      catchUpEntries: Math.floor(r() * 6),
      preVote: r() < 0.5,
      leaseCheckpointMs: r() < 0.5 ? 200 + Math.floor(r() * 400) : 0,
    };
    this.net = new SimNetwork(this.time, mulberry32(seed ^ 0x9e3779b9), faults);
    const shm = "/dev/shm";
    const root = mkdtempSync(join(existsSync(shm) ? shm : tmpdir(), `tsetcd-sim-${seed}-`));
    this.cluster = new SimCluster(this.time, this.net, root, tuning, seed, {
      published: (slot, rev, events) => this.inv.published(slot, rev, events, this.time.now),
      failed: (slot, reason, err) => this.inv.fail(`${slot.name} stopped: ${reason}: ${(err as Error)?.stack ?? err}`),
      mutate: opts.mutate,
      note: (what) => this.note(what),
    });
    this.workload = new Workload(this.time, this.cluster, mulberry32(seed ^ 0x5bd1e995), { clients: 3, thinkMs: 20, timeoutMs: CLIENT_TIMEOUT_MS });
  }

  async run(): Promise<SimResult> {
    try {
      this.cluster.bootstrap(this.members);
      this.names = this.members;
      for (const s of this.cluster.slots) await this.cluster.start(s);
      this.workload.start();
      this.scheduleNemesis();
      this.scheduleHashChecks();
      await this.runUntil(this.activeMs);
      await this.calmDown();
      return this.result(await this.finalChecks());
    } catch (err) {
      this.inv.fail(`simulator: ${(err as Error)?.stack ?? err}`);
      return this.result("ok");
    } finally {
      this.cluster.close();
    }
  }

  private result(linearizability: "ok" | "unknown"): SimResult {
    const w = this.workload.stats;
    return {
      seed: this.opts.seed,
      members: this.members,
      failures: this.inv.failures,
      trace: this.trace,
      stats: {
        ...this.stats,
        snapshotsSent: this.net.stats.snapshots,
        ops: w.ops,
        answered: w.answered,
        leases: w.leases,
        renewals: w.renewals,
        watches: w.watches,
        compactions: w.compactions,
        authChanges: w.authChanges,
        hashChecks: this.inv.hashChecks,
        uncheckedWatches: this.uncheckedWatches,
        linearizability,
      },
    };
  }

  private uncheckedWatches = 0;

  // ---- the event loop ----

  /** Runs events until simulated time `until`, or until `done` holds. */
  private async runUntil(until: number, done?: () => boolean): Promise<void> {
    for (;;) {
      if (done?.() || this.inv.failures.length > 0) return;
      const event = this.time.next(until);
      if (event === undefined) return;
      this.stats.events++;
      const r = event();
      if (r instanceof Promise) await r;
      // Every promise continuation the event caused runs before the next event.
      await new Promise<void>((resolve) => setImmediate(resolve));
      this.watchLeader();
      if (!this.calm && this.rand() < this.crashBetweenEvents) this.crashOne("between events");
    }
  }

  /** Notes when leadership last changed: a new leader refreshes every lease (etcd's promotion), so expiry counts from then. */
  private watchLeader(): void {
    const leader = this.cluster.live().find((s) => s.member!.isLeader())?.id ?? 0n;
    if (leader === this.leader) return;
    this.leader = leader;
    this.leaderChangedAt = this.time.now;
  }

  private leader = 0n;
  private leaderChangedAt = 0;

  /** Waits (in simulated time) for a promise driven by the simulation, up to `ms`. */
  private async await<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
    let settled = false;
    let value: T | undefined;
    p.then(
      (v) => {
        settled = true;
        value = v;
      },
      () => {
        settled = true;
      },
    );
    await this.runUntil(this.time.now + ms, () => settled);
    return value;
  }

  // ---- the nemesis ----

  private scheduleNemesis(): void {
    const act = () => {
      if (this.calm) return;
      this.nemesis();
      this.time.after(this.nemesisEveryMs, SIMULATION, act);
    };
    this.time.after(this.nemesisEveryMs, SIMULATION, act);
  }

  private scheduleHashChecks(): void {
    const check = () => {
      this.inv.checkHashes(this.cluster.live());
      this.time.after(HASH_CHECK_MS, SIMULATION, check);
    };
    this.time.after(HASH_CHECK_MS, SIMULATION, check);
  }

  private nemesis(): void {
    const r = this.rand();
    if (r < 0.12) this.crashOne("nemesis");
    else if (r < 0.35) void this.restartOne();
    else if (r < 0.43) this.partition();
    else if (r < 0.55) this.heal();
    else if (r < 0.63) void this.transferLeader();
    else if (r < 0.67) void this.addMember(true);
    else if (r < 0.7) void this.addMember(false);
    else if (r < 0.74) void this.promote();
    else if (r < 0.78) void this.removeMember();
  }

  private note(what: string): void {
    this.trace.push(`${this.time.now} ${what}`);
  }

  private pick<T>(xs: T[]): T | undefined {
    return xs.length === 0 ? undefined : xs[Math.floor(this.rand() * xs.length)];
  }

  private crashOne(why: string): void {
    const s = this.pick(this.cluster.live());
    if (s === undefined) return;
    this.note(`crash ${s.name} (${why})`);
    this.stats.crashes++;
    this.cluster.crash(s);
  }

  private async restartOne(): Promise<void> {
    const s = this.pick(this.cluster.slots.filter((x) => x.member === undefined && !x.removed));
    if (s === undefined) return;
    this.note(`restart ${s.name}`);
    this.stats.restarts++;
    await this.cluster.start(s);
  }

  private partition(): void {
    const ids = this.cluster.slots.map((s) => s.id);
    const a = this.pick(this.cluster.slots);
    if (a === undefined) return;
    this.stats.partitions++;
    const kind = this.rand();
    if (kind < 0.5) {
      this.note(`isolate ${a.name}`);
      this.net.isolate(a.id, ids);
    } else if (kind < 0.75) {
      const b = this.pick(this.cluster.slots.filter((s) => s !== a));
      if (b === undefined) return;
      this.note(`cut ${a.name} -> ${b.name}`);
      this.net.cutLink(a.id, b.id, false);
    } else {
      const side = this.cluster.slots.filter(() => this.rand() < 0.5);
      this.note(`split ${side.map((s) => s.name).join(",")} | rest`);
      for (const x of side) for (const y of this.cluster.slots) if (!side.includes(y)) this.net.cutLink(x.id, y.id, true);
    }
  }

  private heal(): void {
    if (!this.net.partitioned) return;
    this.note("heal");
    this.net.healAll();
  }

  private async transferLeader(): Promise<void> {
    const leader = this.cluster.live().find((s) => s.member!.isLeader());
    const target = this.pick(this.cluster.slots.filter((s) => s !== leader && s.member !== undefined && !s.member.isLearner()));
    if (leader === undefined || target === undefined) return;
    this.note(`move leader ${leader.name} -> ${target.name}`);
    this.stats.transfers++;
    await leader.member!.maintenance.moveLeader(target.id).catch(() => {});
  }

  /** Adds a member through a live one and starts it once the add is applied (a failed add may still apply: calm adopts it). */
  private async addMember(learner: boolean): Promise<void> {
    const via = this.pick(this.cluster.live());
    if (via === undefined || this.cluster.slots.length >= 7) return;
    const name = `m${++this.names}`;
    this.note(`add ${name}${learner ? " as learner" : ""} via ${via.name}`);
    this.stats.memberAdds++;
    const m = via.member!;
    const res = await m.clusterOps.memberAdd([this.cluster.urlOf(name)], learner).catch(() => undefined);
    if (res === undefined || this.calm) return;
    const slot = this.cluster.joinSlot(name, res.member.id, m.clusterId, res.members);
    await this.cluster.start(slot);
  }

  private async promote(): Promise<void> {
    const via = this.pick(this.cluster.live());
    const learner = via?.member!.members().find((m) => m.isLearner);
    if (via === undefined || learner === undefined) return;
    this.note(`promote ${learner.name || learner.id.toString(16)} via ${via.name}`);
    this.stats.promotions++;
    await via.member!.clusterOps.memberPromote(learner.id).catch(() => {});
  }

  private async removeMember(): Promise<void> {
    const via = this.pick(this.cluster.live());
    if (via === undefined) return;
    const members = via.member!.members();
    if (members.filter((m) => !m.isLearner).length <= 2) return;
    const target = this.pick(members);
    if (target === undefined) return;
    this.note(`remove ${target.name || target.id.toString(16)} via ${via.name}`);
    this.stats.memberRemoves++;
    await via.member!.clusterOps.memberRemove(target.id).catch(() => {});
  }

  // ---- calm and the end ----

  /** Faults stop: links heal, every member that belongs to the cluster runs (again). */
  private async calmDown(): Promise<void> {
    this.calm = true;
    this.note(`calm after ${this.stats.events} events`);
    this.workload.stopAt = this.time.now;
    this.net.healAll();
    await this.settle(SETTLE_MS);
  }

  /**
   * Runs until the cluster converged, reconciling the slots with the membership between rounds
   * (a membership change retried after calm can add a member late). Returns whether it converged.
   */
  private async settle(roundMs: number): Promise<boolean> {
    for (let round = 0; round < 4; round++) {
      await this.reconcileMembers();
      await this.runUntil(this.time.now + roundMs, () => this.converged());
      if (this.converged() || this.inv.failures.length > 0) return this.converged();
    }
    return false;
  }

  /**
   * Starts every slot that is down and not removed. Adds whose answer was lost are adopted from
   * the leader's membership, or else the most advanced member's (without them there may be no
   * quorum); only a leader's membership marks a down slot removed (a stale view lacks later
   * adds); a live member it lacks is left to stop by itself.
   */
  private async reconcileMembers(): Promise<void> {
    // Only a member that knows a membership (a joiner may know none yet) has a view to go by.
    const live = this.cluster.live().filter((s) => s.member!.members().length > 0);
    const leader = live.find((s) => s.member!.isLeader());
    const view = leader ?? [...live].sort((a, b) => b.member!.appliedIndex - a.member!.appliedIndex)[0];
    if (view !== undefined) {
      const members = view.member!.members();
      for (const info of members) {
        if (this.cluster.slots.some((s) => s.id === info.id)) continue;
        const name = info.peerURLs.map((u) => /^http:\/\/(m\d+)\.sim/.exec(u)?.[1]).find((n) => n !== undefined);
        if (name === undefined) continue;
        this.note(`adopt ${name}`);
        this.cluster.joinSlot(name, info.id, view.member!.clusterId, members);
      }
      for (const s of this.cluster.slots) {
        // A live one stops by itself once that is safe (a removed leader first hands over).
        if (leader === undefined || members.some((m) => m.id === s.id) || s.removed || s.member !== undefined) continue;
        this.note(`${s.name} is not in ${leader.name}'s membership: removed`);
        s.removed = true;
      }
    }
    for (const s of this.cluster.slots) if (s.member === undefined && !s.removed) await this.cluster.start(s);
  }

  /** Every member of the leader's membership runs and has applied all the leader committed (a removed one may linger, not counted). */
  private converged(): boolean {
    const live = this.cluster.live();
    if (live.length === 0 || this.cluster.slots.some((s) => !s.removed && s.member === undefined)) return false;
    const leader = live.find((s) => s.member!.isLeader());
    if (leader === undefined) return false;
    const members = new Set(leader.member!.members().map((m) => m.id));
    const target = leader.member!.committedIndex;
    return live.every((s) => !members.has(s.id) || (s.member!.appliedIndex === target && s.member!.committedIndex === target));
  }

  /** The live members the cluster counts (a removed member may still run until it is safe to stop). */
  private counted(): Slot[] {
    const leader = this.cluster.live().find((s) => s.member!.isLeader());
    const ids = new Set(leader?.member!.members().map((m) => m.id) ?? []);
    return this.cluster.live().filter((s) => ids.has(s.id));
  }

  private async finalChecks(): Promise<"ok" | "unknown"> {
    if (!(await this.converge("of calm"))) return "ok";
    const reader = this.cluster.live().find((s) => s.member!.isLeader())!;
    await this.await(this.workload.finalReads(reader.member!), CLIENT_TIMEOUT_MS * 2);
    if (!(await this.converge("after the final reads"))) return "ok";
    const live = this.counted();
    this.inv.checkHashes(live);
    this.workload.drainWatches();
    const finalRev = Math.max(...live.map((s) => s.member!.state.store.rev));
    this.uncheckedWatches = this.inv.checkWatches(this.workload, finalRev, new Set(live.map((s) => s.name)));
    this.inv.checkLeases(this.workload, live, this.time.now, this.leaderChangedAt, ELECTION_MS);
    return this.inv.checkHistory(this.workload, this.opts.seed);
  }

  /** Settles the cluster; a failure when it does not converge, naming each slot's state. */
  private async converge(when: string): Promise<boolean> {
    if ((await this.settle(CONVERGE_MS / 4)) || this.inv.failures.length > 0) return this.inv.failures.length === 0;
    const state = this.cluster.slots.map(
      (s) =>
        `${s.name}${s.removed ? " removed" : s.member ? ` applied ${s.member.appliedIndex} committed ${s.member.committedIndex}${s.member.isLeader() ? " leader" : ""}` : " down"}`,
    );
    this.inv.fail(`the cluster did not converge within ${CONVERGE_MS} ms ${when}: ${state.join("; ")}`);
    return false;
  }
}
