// Linearizable reads through Raft's ReadIndex, batched as etcd batches them:
// every read that arrives while the member is busy shares the next ReadIndex
// request. A read may be served once the member has applied up to the index
// the leader confirmed (it was the leader, by a quorum's heartbeat answers,
// when it read its commit index), so it sees every write acknowledged before
// the read began.
//
// A ReadIndex request can be lost (dropped while there is no leader, a message
// lost with a leader change): a batch without an answer is asked again with a
// new context after RETRY_MS, until its reads time out.
import type { ReadState } from "../raft/types.js";
import type { Clock } from "../runtime/time.js";

/** etcd's readIndexRetryTime. */
const RETRY_MS = 500;

interface Read {
  resolve(): void;
  reject(err: unknown): void;
  deadline: number;
}

interface Batch {
  reads: Read[];
  askedAt: number;
}

export interface ReadIndexHost {
  /** Ask Raft for a read index under `context`; false when it was dropped at once (no leader). */
  requestReadIndex(context: Uint8Array): boolean;
  appliedIndex(): number;
}

export class ReadIndexReads {
  /** Reads that arrived since the last request. */
  private queued: Read[] = [];
  /** Requests sent and not answered, by context. */
  private readonly asked = new Map<bigint, Batch>();
  /** Answered: waiting for the apply loop to reach `index` (ascending by arrival; indexes never go back on one leader). */
  private answered: Array<{ index: number; reads: Read[] }> = [];
  /**
   * Request contexts, starting at a random point: a leader's answer to a request of this
   * member's previous run (still queued somewhere) must not match a new read.
   */
  private seq: bigint;

  constructor(
    private readonly host: ReadIndexHost,
    private readonly timeoutMs: number,
    private readonly maxWaiting: number,
    private readonly clock: Clock,
    random: () => number,
  ) {
    this.seq = BigInt(Math.floor(random() * 2 ** 52)) << 12n;
  }

  /** Reads not yet settled (kept as a count: wait() runs per read, on the read path). */
  private unsettled = 0;

  get waiting(): number {
    return this.unsettled;
  }

  /** Whether there is work for the member's loop (call flush()). */
  get pending(): boolean {
    return this.queued.length > 0;
  }

  /** Resolves once this member applied an index that makes a read now linearizable; rejects with tooMany() when full. */
  wait(tooMany: () => unknown): Promise<void> {
    if (this.waiting >= this.maxWaiting) return Promise.reject(tooMany());
    this.unsettled++;
    return new Promise((resolve, reject) => {
      let settled = false;
      const settle = () => {
        if (settled) return false;
        settled = true;
        this.unsettled--;
        return true;
      };
      this.queued.push({
        resolve: () => settle() && resolve(),
        reject: (err) => settle() && reject(err),
        deadline: this.clock.now() + this.timeoutMs,
      });
    });
  }

  /** Sends one ReadIndex request for every queued read. */
  flush(now = this.clock.now()): void {
    if (this.queued.length === 0) return;
    const reads = this.queued;
    this.queued = [];
    this.ask(reads, now);
  }

  private ask(reads: Read[], now: number): void {
    const ctx = ++this.seq;
    const bytes = new Uint8Array(8);
    new DataView(bytes.buffer).setBigUint64(0, ctx);
    // Registered before asking: a single-voter leader answers inside requestReadIndex's Ready.
    this.asked.set(ctx, { reads, askedAt: now });
    // Dropped (no leader yet) is retried like a lost request: by tick(), or leaderChanged().
    this.host.requestReadIndex(bytes);
  }

  /** A (new) leader is known: ask again at once for every unanswered batch. */
  leaderChanged(now = this.clock.now()): void {
    const reads: Read[] = [];
    for (const b of this.asked.values()) reads.push(...b.reads);
    this.asked.clear();
    if (reads.length > 0) this.ask(reads, now);
  }

  /** A ReadState from the Ready: its batch may be served once applied reaches its index. */
  onReadState(rs: ReadState): void {
    if (rs.context.byteLength !== 8) return;
    const ctx = new DataView(rs.context.buffer, rs.context.byteOffset, 8).getBigUint64(0);
    const batch = this.asked.get(ctx);
    if (batch === undefined) return; // answered twice, or retried under another context
    this.asked.delete(ctx);
    this.answered.push({ index: rs.index, reads: batch.reads });
    this.onApplied(this.host.appliedIndex());
  }

  /** The member applied up to `applied`: serve what may now be served. */
  onApplied(applied: number): void {
    if (this.answered.length === 0) return;
    const still: Array<{ index: number; reads: Read[] }> = [];
    for (const a of this.answered) {
      if (a.index <= applied) for (const r of a.reads) r.resolve();
      else still.push(a);
    }
    this.answered = still;
  }

  /** Timer: re-ask lost requests, fail reads past their deadline. */
  tick(timeoutError: () => unknown, now = this.clock.now()): void {
    const expired = (r: Read) => {
      if (r.deadline > now) return false;
      r.reject(timeoutError());
      return true;
    };
    this.queued = this.queued.filter((r) => !expired(r));
    for (const a of this.answered) a.reads = a.reads.filter((r) => !expired(r));
    this.answered = this.answered.filter((a) => a.reads.length > 0);
    const retry: Read[] = [];
    for (const [ctx, b] of this.asked) {
      const live = b.reads.filter((r) => !expired(r));
      if (live.length === 0) this.asked.delete(ctx);
      else if (now - b.askedAt >= RETRY_MS) {
        this.asked.delete(ctx);
        retry.push(...live);
      } else b.reads = live;
    }
    if (retry.length > 0) this.ask(retry, now);
  }

  rejectAll(err: unknown): void {
    for (const r of this.queued) r.reject(err);
    for (const b of this.asked.values()) for (const r of b.reads) r.reject(err);
    for (const a of this.answered) for (const r of a.reads) r.reject(err);
    this.queued = [];
    this.asked.clear();
    this.answered = [];
  }
}
