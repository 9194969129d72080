// Time and chance as the member sees them. The member and everything it drives
// take these as parameters instead of calling setImmediate, setTimeout,
// Date.now or Math.random, so a simulator can run whole members on one seeded
// clock and replay any run exactly (src/server/sim/). systemRuntime is the
// real thing.

/** Undoes a scheduled callback; calling it after the callback ran does nothing. */
export type Cancel = () => void;

export interface Clock {
  /** Monotonic milliseconds: deadlines, intervals, lease expiry. */
  now(): number;
  /** Milliseconds since the Unix epoch: what must differ across restarts (request ids) or is compared with a peer's wall time. */
  wall(): number;
}

export interface Scheduler {
  /** Runs `fn` once the current event-loop turn is over (I/O callbacks of this turn first). */
  defer(fn: () => void): void;
  /** Runs `fn` once, after `ms`. */
  after(ms: number, fn: () => void): Cancel;
  /** Runs `fn` every `ms` until cancelled. */
  every(ms: number, fn: () => void): Cancel;
  /** Resolves after `ms`. */
  sleep(ms: number): Promise<void>;
}

export interface Runtime {
  readonly clock: Clock;
  readonly scheduler: Scheduler;
  /** Uniform in [0, 1): election timeouts, backoff jitter, request-context seeds. */
  random(): number;
}

export const systemClock: Clock = {
  now: () => performance.now(),
  wall: () => Date.now(),
};

export const systemScheduler: Scheduler = {
  defer: (fn) => void setImmediate(fn),
  after: (ms, fn) => {
    const t = setTimeout(fn, ms);
    return () => clearTimeout(t);
  },
  every: (ms, fn) => {
    const t = setInterval(fn, ms);
    return () => clearInterval(t);
  },
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
};

export const systemRuntime: Runtime = { clock: systemClock, scheduler: systemScheduler, random: Math.random };
