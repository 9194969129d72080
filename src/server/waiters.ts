// Clients waiting for their log entry (or their linearizable read) to be
// applied, keyed by the request id carried in the entry. Every member applies
// every entry, but only the member that proposed an entry has a waiter for it.
//
// Timeouts: every wait gets the same duration, so deadlines are in insertion
// order and one sweep from the front of the Map (which iterates in insertion
// order) finds every expired wait without a timer per request.
import type { Clock } from "../runtime/time.js";

/** Request ids as etcd's idutil makes them: the member's low 16 bits, then time and a counter, so ids from different members (and restarts) do not collide. */
export class RequestIds {
  private next: bigint;

  constructor(memberId: bigint, nowMs: number) {
    const prefix = (memberId & 0xffffn) << 48n;
    const time = (BigInt(nowMs) & 0xff_ffff_ffffn) << 8n;
    this.next = prefix | time;
  }

  /** Never 0 (0 means "nobody waits" in an entry). */
  take(): bigint {
    this.next = (this.next + 1n) & 0xffff_ffff_ffff_ffffn;
    if (this.next === 0n) this.next = 1n;
    return this.next;
  }
}

interface Wait {
  resolve(value: unknown): void;
  reject(err: unknown): void;
  deadline: number;
  /** What the member knew when the wait began, for choosing the timeout error. */
  startedLeader: bigint;
}

export class Waiters {
  private readonly waits = new Map<bigint, Wait>();

  constructor(
    private readonly timeoutMs: number,
    private readonly clock: Clock,
  ) {}

  get size(): number {
    return this.waits.size;
  }

  has(id: bigint): boolean {
    return this.waits.has(id);
  }

  /** The caller's outcome type is its own to state: resolve() hands over whatever apply produced for `id`. */
  wait<T>(id: bigint, leader: bigint): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.waits.set(id, { resolve: resolve as (v: unknown) => void, reject, deadline: this.clock.now() + this.timeoutMs, startedLeader: leader });
    });
  }

  /** Hands the outcome to the waiter of `id`, if any. */
  resolve(id: bigint, value: unknown): boolean {
    const w = this.waits.get(id);
    if (w === undefined) return false;
    this.waits.delete(id);
    w.resolve(value);
    return true;
  }

  reject(id: bigint, err: unknown): boolean {
    const w = this.waits.get(id);
    if (w === undefined) return false;
    this.waits.delete(id);
    w.reject(err);
    return true;
  }

  /** Rejects every wait past its deadline with the error `timeoutError` picks. */
  expire(now: number, timeoutError: (startedLeader: bigint) => unknown): void {
    for (const [id, w] of this.waits) {
      if (w.deadline > now) break;
      this.waits.delete(id);
      w.reject(timeoutError(w.startedLeader));
    }
  }

  rejectAll(err: unknown): void {
    const all = [...this.waits.values()];
    this.waits.clear();
    for (const w of all) w.reject(err);
  }
}
