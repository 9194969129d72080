// The Raft loop (etcd's raft.go): steps, ticks and one Ready at a time, from
// the pure core (src/raft) to the disk and the network.
//
// Per Ready, once per event-loop turn with work:
//   1. soft state (leader, role) goes to the host first;
//   2. a leader sends its messages before its own fsync when nothing in them can
//      depend on what is not on disk yet (planSend); when they carry new entries
//      it yields one event-loop turn first, so followers write in parallel with
//      it (writes reach the sockets only when the loop turns);
//   3. ONE SQLite transaction: the received snapshot, the new entries, the hard
//      state, then the host's part (apply committed entries, maybe snapshot). It
//      is fsynced (synchronous=FULL) when it holds entries, a vote, a term or a
//      snapshot; a transaction that only applies needs no fsync (its entries are
//      durable already and are applied again after a crash);
//   4. Raft learns configuration changes, the other messages go out
//      (acknowledgements only after the fsync), the host answers its clients,
//      and Raft advances.
// A lone member commits on append, so a batch of writes costs one transaction
// and one fsync.
//
// A failed transaction is fatal (as a failed WAL write is for etcd): Raft
// already counted what the Ready holds as written, so the member stops rather
// than risk acknowledging what is not on disk.
import type { Database } from "bun:sqlite";
import { invariant } from "./invariant.js";
import type { RawNode } from "../raft/node.js";
import { type ConfState, type Message, type Ready, Role } from "../raft/types.js";
import type { Clock, Scheduler } from "../runtime/time.js";
import type { SqliteRaftStorage } from "../storage/raft-storage.js";
import type { ApplyBatch } from "./apply.js";

/** Readys handled per turn before yielding to the event loop. */
const READY_ROUNDS = 16;

export interface RaftLoopHost {
  /** Before a round of Readys: reads queued since the last round ask Raft for one read index. */
  roundStarting(): void;
  /** Work for another round besides Raft's own (queued reads). */
  hasWork(): boolean;
  /** Leader and role as of this Ready, before anything else of it is handled (`before`: the previous leader). */
  softState(lead: bigint, role: Role, before: bigint): void;
  /** First in the Ready's transaction: a received snapshot replaces the state. */
  install(rd: Ready): void;
  /** In the Ready's transaction, after its log writes: apply its committed entries, maybe snapshot. */
  apply(rd: Ready): ApplyBatch;
  /** Before the transaction: a received snapshot's data is made ready to install; returns its file. */
  attachSnapshot(rd: Ready): string | undefined;
  /** After the transaction, committed or not. */
  detachSnapshot(file: string): void;
  /** The transaction committed / rolled back: in-memory views publish or drop what it staged. */
  committed(rd: Ready, file: string | undefined): void;
  rolledBack(): void;
  /** After Raft learned the Ready's configuration changes, before its messages leave. */
  configured(batch: ApplyBatch): void;
  /** After the messages left: clients are answered, reads released. */
  settled(rd: Ready, batch: ApplyBatch): void;
  /** After Raft advanced. */
  advanced(rd: Ready): void;
  fatal(what: string, err: unknown): void;
  stopped(): boolean;
}

export interface Network {
  send(msgs: readonly Message[]): void;
  /** Hands queued messages to the connections now rather than at the end of the turn. */
  flush(): void;
}

/** How one Ready's messages leave. */
export interface SendPlan {
  /** Before the transaction: nothing in them depends on what this Ready writes. */
  early: boolean;
  /** Early messages carry new entries: let them reach the sockets before the fsync. */
  yieldBeforePersist: boolean;
}

/**
 * A leader may send before its own fsync (followers then write in parallel), but only while no
 * message can carry what is not on disk: a new vote or term must be durable before any message
 * that depends on it, a lone voter commits its own unpersisted entries, and a learner must not
 * apply an entry before the leader has it on disk.
 */
export function planSend(rd: Ready, raft: { role: Role; committed: number }, persisted: { lastIndex: number; term: number; vote: bigint }): SendPlan {
  const voteOrTerm = rd.hardState !== undefined && (rd.hardState.term !== persisted.term || rd.hardState.vote !== persisted.vote);
  const early = raft.role === Role.Leader && !voteOrTerm && rd.snapshot === undefined && raft.committed <= persisted.lastIndex;
  return { early, yieldBeforePersist: early && rd.messages.length > 0 && rd.entries.length > 0 };
}

export class RaftLoop {
  /** The leader as of the last Ready (0n: none). */
  private leader = 0n;
  private scheduled = false;
  private inReady = false;
  private persistedTerm: number;
  private persistedVote: bigint;
  private synchronous: "FULL" | "NORMAL" | "OFF" = "FULL";

  constructor(
    readonly raw: RawNode,
    private readonly storage: SqliteRaftStorage,
    private readonly db: Database,
    private readonly host: RaftLoopHost,
    private readonly net: Network,
    private readonly scheduler: Scheduler,
    private readonly clock: Clock,
    private readonly opts: {
      /** Every commit that holds log writes is fsynced; false only in simulation, where a crash keeps what the OS has. */
      fsync: boolean;
      fsynced(seconds: number): void;
    },
  ) {
    const hard = storage.initialState().hardState;
    this.persistedTerm = hard.term;
    this.persistedVote = hard.vote;
    if (!opts.fsync) this.setSynchronous("OFF");
  }

  get lead(): bigint {
    return this.leader;
  }

  get term(): number {
    return this.raw.raft.term;
  }

  get committed(): number {
    return this.raw.raft.log.committed;
  }

  isLeader(): boolean {
    return this.raw.raft.role === Role.Leader;
  }

  step(m: Message): void {
    if (this.host.stopped()) return;
    this.raw.step(m);
    this.schedule();
  }

  /** A message whose Ready must be handled before returning (a received snapshot, while its file is certainly ours). */
  stepNow(m: Message): void {
    this.raw.step(m);
    this.run();
  }

  tick(): void {
    if (this.host.stopped()) return;
    this.raw.tick();
    this.schedule();
  }

  /** Handle Readys once this event-loop turn is over. */
  schedule(): void {
    if (this.scheduled || this.host.stopped()) return;
    this.scheduled = true;
    this.scheduler.defer(() => this.run());
  }

  /** Handles the Readys there are now (at most READY_ROUNDS, or until one yields). */
  run(): void {
    this.scheduled = false;
    if (this.host.stopped() || this.inReady) return;
    this.inReady = true;
    let yielded = false;
    try {
      this.host.roundStarting();
      for (let i = 0; i < READY_ROUNDS && !this.host.stopped(); i++) {
        const rd = this.raw.ready();
        if (rd === undefined) break;
        const plan = this.guard(() => this.begin(rd));
        if (plan === undefined) break;
        if (plan.yieldBeforePersist) {
          // inReady stays set until the yielded Ready is finished.
          yielded = true;
          this.scheduler.defer(() => this.finishYielded(rd, plan));
          return;
        }
        this.guard(() => this.finish(rd, plan));
      }
    } finally {
      if (!yielded) this.inReady = false;
    }
    this.afterRound();
  }

  /** The rest of a Ready whose messages went out first. */
  private finishYielded(rd: Ready, plan: SendPlan): void {
    try {
      // Stopping meanwhile abandons the Ready: nothing of it was acknowledged.
      if (!this.host.stopped()) this.guard(() => this.finish(rd, plan));
    } finally {
      this.inReady = false;
    }
    this.afterRound();
    if (!this.host.stopped() && this.raw.hasReady()) this.run();
  }

  private afterRound(): void {
    if (this.host.stopped()) return;
    // Out now, not at the end of the turn: acknowledgements and appends are on the commit path.
    this.net.flush();
    if (this.raw.hasReady() || this.host.hasWork()) this.schedule();
  }

  /** Any failure while handling a Ready is fatal: the core already counts it as done. */
  private guard<T>(fn: () => T): T | undefined {
    try {
      return fn();
    } catch (err) {
      this.host.fatal("failed to handle a Raft batch", err);
      return undefined;
    }
  }

  /** Soft state, then a leader's messages when they may leave before its fsync. */
  private begin(rd: Ready): SendPlan {
    if (rd.softState) {
      const before = this.leader;
      this.leader = rd.softState.lead;
      this.host.softState(rd.softState.lead, rd.softState.role, before);
    }
    const plan = planSend(
      rd,
      { role: this.raw.raft.role, committed: this.raw.raft.log.committed },
      { lastIndex: this.storage.lastIndex(), term: this.persistedTerm, vote: this.persistedVote },
    );
    if (plan.early && rd.messages.length > 0) {
      this.net.send(rd.messages);
      this.net.flush();
    }
    return plan;
  }

  /** One transaction, then Raft's configuration, the messages, the answers, advance. */
  private finish(rd: Ready, plan: SendPlan): void {
    const batch = this.persist(rd);
    // The Raft core learns its new configuration once the transaction is over
    // (it reads storage, which refuses reads while writes are staged).
    for (const c of batch.confChanges) {
      const conf = this.raw.applyConfChange(c.cc);
      invariant(sameConf(conf, c.conf), `configuration after entry ${c.index} differs between member and Raft`);
    }
    this.host.configured(batch);
    if (!plan.early && rd.messages.length > 0) this.net.send(rd.messages);
    this.host.settled(rd, batch);
    this.raw.advance();
    this.host.advanced(rd);
  }

  /** The Ready's transaction; returns what its committed entries produced. */
  private persist(rd: Ready): ApplyBatch {
    const hard = rd.hardState;
    // Heartbeats and most acknowledgements bring only messages: no transaction for those.
    if (rd.snapshot === undefined && rd.entries.length === 0 && hard === undefined && rd.committedEntries.length === 0) {
      return { answers: [], confChanges: [] };
    }
    const durable =
      rd.entries.length > 0 || rd.snapshot !== undefined || (hard !== undefined && (hard.term !== this.persistedTerm || hard.vote !== this.persistedVote));
    if (this.opts.fsync) this.setSynchronous(durable ? "FULL" : "NORMAL");
    const file = this.host.attachSnapshot(rd);
    const started = this.clock.now();
    let batch: ApplyBatch;
    try {
      batch = this.db.transaction(() => {
        if (rd.snapshot) this.host.install(rd);
        if (rd.entries.length > 0) this.storage.append(rd.entries);
        if (hard) this.storage.setHardState(hard);
        return this.host.apply(rd);
      })();
      this.storage.committed();
    } catch (err) {
      this.storage.rollbackCache();
      this.host.rolledBack();
      throw err;
    } finally {
      if (file !== undefined) this.host.detachSnapshot(file);
    }
    if (durable && this.opts.fsync) this.opts.fsynced((this.clock.now() - started) / 1000);
    if (hard) {
      invariant(hard.commit <= this.storage.lastIndex(), `commit index ${hard.commit} persisted beyond the last persisted entry ${this.storage.lastIndex()}`);
      this.persistedTerm = hard.term;
      this.persistedVote = hard.vote;
    }
    this.host.committed(rd, file);
    return batch;
  }

  private setSynchronous(mode: "FULL" | "NORMAL" | "OFF"): void {
    if (mode === this.synchronous) return;
    this.db.exec(`PRAGMA synchronous = ${mode}`);
    this.synchronous = mode;
  }
}

function sameConf(a: ConfState, b: ConfState): boolean {
  const key = (c: ConfState) => `${[...c.voters].sort().join(",")}|${[...c.learners].sort().join(",")}`;
  return key(a) === key(b);
}
