// Simulated time for whole members: one event queue ordered by (time, order
// of scheduling), one clock that jumps to the next event, and a Runtime per
// member incarnation whose timers die with it (a crashed process runs nothing
// more). Everything a member does in the simulator starts from an event taken
// from this queue, so one seed fixes the whole run.
import type { Cancel, Runtime, Scheduler } from "../../runtime/time.js";
import { mulberry32 } from "../../testing/prng.js";

/** The wall clock a simulated run starts at (member request ids and member ids made at run time use it). */
export const SIM_EPOCH_MS = 1_750_000_000_000;

/** Who an event belongs to: a member incarnation, or the simulation itself (workload, faults). */
export type Owner = number;
export const SIMULATION: Owner = 0;

interface Event {
  at: number;
  seq: number;
  owner: Owner;
  run: () => void | Promise<void>;
  cancelled: boolean;
}

/** A binary min-heap of events by (at, seq). */
class EventHeap {
  private readonly items: Event[] = [];

  get size(): number {
    return this.items.length;
  }

  push(e: Event): void {
    const a = this.items;
    a.push(e);
    let i = a.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(a[i], a[parent])) break;
      [a[i], a[parent]] = [a[parent], a[i]];
      i = parent;
    }
  }

  pop(): Event | undefined {
    const a = this.items;
    if (a.length === 0) return undefined;
    const top = a[0];
    const last = a.pop()!;
    if (a.length > 0) {
      a[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < a.length && before(a[l], a[m])) m = l;
        if (r < a.length && before(a[r], a[m])) m = r;
        if (m === i) break;
        [a[i], a[m]] = [a[m], a[i]];
        i = m;
      }
    }
    return top;
  }
}

function before(a: Event, b: Event): boolean {
  return a.at < b.at || (a.at === b.at && a.seq < b.seq);
}

export class SimTime {
  private current = 0;
  private seq = 0;
  private readonly queue = new EventHeap();
  private readonly alive = new Set<Owner>([SIMULATION]);
  private nextOwner = 1;

  get now(): number {
    return this.current;
  }

  get pending(): number {
    return this.queue.size;
  }

  /** A new owner (a member incarnation), alive until kill(). */
  newOwner(): Owner {
    const o = this.nextOwner++;
    this.alive.add(o);
    return o;
  }

  /** The owner's process is gone: none of its events run any more. */
  kill(owner: Owner): void {
    this.alive.delete(owner);
  }

  isAlive(owner: Owner): boolean {
    return this.alive.has(owner);
  }

  at(at: number, owner: Owner, run: () => void | Promise<void>): Cancel {
    const e: Event = { at: Math.max(at, this.current), seq: this.seq++, owner, run, cancelled: false };
    this.queue.push(e);
    return () => {
      e.cancelled = true;
    };
  }

  after(ms: number, owner: Owner, run: () => void | Promise<void>): Cancel {
    return this.at(this.current + ms, owner, run);
  }

  /** Takes the next live event, moving the clock to its time; undefined when none is left before `until`. */
  next(until: number): (() => void | Promise<void>) | undefined {
    for (;;) {
      const e = this.queue.pop();
      if (e === undefined) return undefined;
      if (e.cancelled || !this.alive.has(e.owner)) continue;
      if (e.at > until) {
        this.queue.push(e);
        this.current = until;
        return undefined;
      }
      this.current = e.at;
      return e.run;
    }
  }

  /** The Runtime of one member incarnation: its clock is the simulation's, its timers die with it. */
  runtimeFor(owner: Owner, seed: number): Runtime {
    const scheduler: Scheduler = {
      defer: (fn) => void this.at(this.current, owner, fn),
      after: (ms, fn) => this.after(ms, owner, fn),
      every: (ms, fn) => {
        let cancel: Cancel = () => {};
        let stopped = false;
        const tick = () => {
          if (stopped) return;
          cancel = this.after(ms, owner, tick);
          fn();
        };
        cancel = this.after(ms, owner, tick);
        return () => {
          stopped = true;
          cancel();
        };
      },
      sleep: (ms) => new Promise<void>((resolve) => void this.after(ms, owner, resolve)),
    };
    return {
      clock: { now: () => this.current, wall: () => SIM_EPOCH_MS + this.current },
      scheduler,
      random: mulberry32(seed),
    };
  }
}
