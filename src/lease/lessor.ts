// The lessor: every lease's granted TTL, last checkpointed remaining TTL and
// attached keys (etcd's lease package), and, on the leader only, when each
// lease expires.
//
// Two kinds of operations, kept apart:
//   - apply operations (grant, revoke, checkpoint, attach, detach) run inside
//     the member's apply transaction, in log order, on every member. They are
//     deterministic: they read no clock except to set the leader's expiries,
//     which are not replicated state.
//   - leader operations (promote, demote, renew, expired, dueCheckpoints,
//     remainingMs) read the injected monotonic clock. Only the leader expires
//     leases, and it does so by proposing a revoke through the log, so every
//     member deletes the same keys at the same revision.
//
// Remaining TTLs survive a leader change through checkpoints: the leader
// records, every checkpoint interval, each long lease's remaining TTL in the
// log, and a new leader counts from that instead of from the full TTL. A
// renewal must reset a recorded remaining TTL (through the log) before it is
// acknowledged, or a new leader could expire a just-renewed lease early; the
// caller does that (needsReset), as etcd's Renew does.
import { type Assert, assertWith } from "../assert.js";
import { Errors } from "../errors.js";
import { IndexedHeap } from "./indexed-heap.js";
import { bytesToKeyString as keyString } from "../mvcc/key-range.js";

/** etcd's MaxLeaseTTL (seconds). */
export const MAX_LEASE_TTL = 9_000_000_000;
/** etcd: an expired lease whose revoke did not go through is tried again after this long. */
const REVOKE_RETRY_MS = 3000;

/** Throws when a lessor invariant does not hold: a bug, never a client error. */
const invariant: Assert = assertWith("lessor invariant violated");

export interface LeaseRecord {
  id: bigint;
  /** Granted TTL, seconds (raised to the minimum at grant). */
  ttl: number;
  /** Last checkpointed remaining TTL, seconds; 0: none (count from the full TTL). */
  remainingTtl: number;
}

/** Where the lessor keeps its leases (a SQLite table in the member's database; memory in tests). */
export interface LeaseBackend {
  all(): LeaseRecord[];
  /** Every live key that names a lease: how attachments are rebuilt on open. */
  attachedKeys(): Array<{ key: Uint8Array; lease: bigint }>;
  put(r: LeaseRecord): void;
  delete(id: bigint): void;
}

export interface LessorConfig {
  /** Smallest TTL granted, seconds (etcd: 1.5 election timeouts, rounded up). */
  minTtl: number;
  /** How often the leader checkpoints a long lease's remaining TTL (0: never). */
  checkpointIntervalMs: number;
  /** Monotonic milliseconds. */
  now: () => number;
}

export class Lease {
  /** Attached keys, by their bytes as a latin1 string (byte order = string order). */
  readonly keys = new Map<string, Uint8Array>();
  /** Leader only: when the lease expires (monotonic ms); Infinity on other members. */
  expiry = Infinity;

  constructor(
    readonly id: bigint,
    public ttl: number,
    public remainingTtl: number,
  ) {}

  /** What a new leader counts from, seconds. */
  get startTtl(): number {
    return this.remainingTtl > 0 ? this.remainingTtl : this.ttl;
  }
}

/** What renew() found. */
export type RenewResult = { ttl: number } | "notFound" | "expired" | "notPrimary";

export class Lessor {
  private readonly leases = new Map<bigint, Lease>();
  /**
   * Leader only: when to look at each lease next. Its own expiry, or (once reported expired,
   * while its revoke goes through the log) when to report it again. The lease's expiry itself
   * is Lease.expiry: a lease whose revoke is on the way stays expired for renewals.
   */
  private readonly expiries = new IndexedHeap();
  /** Leader only: when each long lease's next checkpoint is due. */
  private readonly checkpoints = new IndexedHeap();
  private primary = false;

  constructor(
    private readonly backend: LeaseBackend,
    private readonly config: LessorConfig,
  ) {
    this.reload();
  }

  /** Rebuilds everything from the backend (on open, and after a snapshot replaced the tables). Leaves the lessor demoted. */
  reload(): void {
    this.leases.clear();
    this.demote();
    for (const r of this.backend.all()) this.leases.set(r.id, new Lease(r.id, r.ttl, r.remainingTtl));
    for (const { key, lease } of this.backend.attachedKeys()) {
      const l = this.leases.get(lease);
      // etcd's recovery likewise skips keys whose lease is gone.
      if (l !== undefined) l.keys.set(keyString(key), key);
    }
  }

  get size(): number {
    return this.leases.size;
  }

  get isPrimary(): boolean {
    return this.primary;
  }

  lookup(id: bigint): Lease | undefined {
    return this.leases.get(id);
  }

  /** Lease ids in ascending order. */
  ids(): bigint[] {
    return [...this.leases.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  }

  // ---- apply operations (in log order, inside the apply transaction) ----

  exists(id: bigint): boolean {
    return this.leases.has(id);
  }

  grant(id: bigint, ttl: number): Lease {
    if (id === 0n) throw Errors.leaseNotFound();
    if (ttl > MAX_LEASE_TTL) throw Errors.leaseTtlTooLarge();
    if (this.leases.has(id)) throw Errors.leaseExists();
    const l = new Lease(id, Math.max(ttl, this.config.minTtl), 0);
    this.leases.set(id, l);
    this.backend.put(record(l));
    if (this.primary) {
      l.expiry = this.config.now() + l.ttl * 1000;
      this.expiries.set(id, l.expiry);
      this.scheduleCheckpoint(l);
    }
    return l;
  }

  /**
   * Removes the lease; `deleteKeys` gets its keys in byte order (the same on every member) and
   * must delete them as one revision before the lease row goes, in the same transaction.
   */
  revoke(id: bigint, deleteKeys: (keys: Uint8Array[]) => void): void {
    const l = this.leases.get(id);
    if (l === undefined) throw Errors.leaseNotFound();
    const names = [...l.keys.keys()].sort();
    deleteKeys(names.map((n) => l.keys.get(n)!));
    invariant(l.keys.size === 0, `lease ${id} still holds ${l.keys.size} keys after its revoke deleted them`);
    this.leases.delete(id);
    this.backend.delete(id);
    this.expiries.delete(id);
    this.checkpoints.delete(id);
  }

  /** Records a remaining TTL (0: the full TTL again). Unknown leases are skipped: they were revoked meanwhile. */
  checkpoint(id: bigint, remainingTtl: number): void {
    const l = this.leases.get(id);
    if (l === undefined) return;
    l.remainingTtl = Math.max(0, remainingTtl);
    this.backend.put(record(l));
    if (this.primary) this.scheduleCheckpoint(l);
  }

  attach(id: bigint, key: Uint8Array): void {
    const l = this.leases.get(id);
    invariant(l !== undefined, `attach to lease ${id}, which does not exist`);
    // A copy: the key may be a view into a whole received message (up to 1 MiB) it would pin.
    l.keys.set(keyString(key), key.slice());
  }

  detach(id: bigint, key: Uint8Array): void {
    // A key may name a lease revoked before a restart of an older version; nothing to detach then.
    this.leases.get(id)?.keys.delete(keyString(key));
  }

  // ---- leader operations (clock) ----

  /**
   * This member leads and has applied everything before its term: every lease expires
   * `extendMs` plus its (checkpointed) remaining TTL from now. Like etcd, when many leases
   * would expire within the same second, later ones are pushed back so that at most 3/4 of
   * the revoke rate expires per second.
   */
  promote(extendMs: number, revokeRatePerSecond = 1000): void {
    this.primary = true;
    const now = this.config.now();
    this.expiries.clear();
    this.checkpoints.clear();
    const sorted = [...this.leases.values()].sort((a, b) => a.startTtl - b.startTtl || (a.id < b.id ? -1 : 1));
    const target = Math.floor((3 * revokeRatePerSecond) / 4);
    const spread = sorted.length >= revokeRatePerSecond;
    let windowStart = -Infinity;
    let windowEnd = -Infinity;
    let inWindow = 0;
    for (const l of sorted) {
      const remaining = l.startTtl * 1000;
      let delay = 0;
      if (spread) {
        if (remaining > windowEnd) {
          windowStart = remaining;
          windowEnd = remaining + 1000;
          inWindow = 1;
        } else if (++inWindow > target) {
          // The n-th lease of a crowded window waits n/target seconds past the window's start.
          delay = Math.max(0, (1000 * inWindow) / target - (remaining - windowStart));
          windowEnd = windowStart + delay;
        }
      }
      l.expiry = now + extendMs + remaining + delay;
      this.expiries.set(l.id, l.expiry);
      this.scheduleCheckpoint(l);
    }
  }

  /** No longer the leader: nothing expires here. */
  demote(): void {
    this.primary = false;
    for (const l of this.leases.values()) l.expiry = Infinity;
    this.expiries.clear();
    this.checkpoints.clear();
  }

  /** A remaining TTL is on record: a renewal must reset it through the log first. */
  needsReset(id: bigint): boolean {
    const l = this.leases.get(id);
    return l !== undefined && l.remainingTtl > 0 && this.config.checkpointIntervalMs > 0;
  }

  /** Keeps a lease alive for its full TTL from now (the caller reset any checkpoint first). */
  renew(id: bigint): RenewResult {
    if (!this.primary) return "notPrimary";
    const l = this.leases.get(id);
    if (l === undefined) return "notFound";
    const now = this.config.now();
    // Expired: its revoke is (or is about to be) on the way; etcd answers once that is applied.
    if (l.expiry <= now) return "expired";
    invariant(!this.needsReset(id), `renewing lease ${id} while a checkpointed remaining TTL is on record`);
    l.expiry = now + l.ttl * 1000;
    this.expiries.set(id, l.expiry);
    return { ttl: l.ttl };
  }

  /** Leader: milliseconds until the lease expires (Infinity elsewhere); undefined when there is no such lease. */
  remainingMs(id: bigint): number | undefined {
    const l = this.leases.get(id);
    if (l === undefined) return undefined;
    return l.expiry === Infinity ? Infinity : l.expiry - this.config.now();
  }

  /**
   * Leader: up to `limit` leases past their expiry, to be revoked through the log. Each is
   * put back REVOKE_RETRY_MS later, so a revoke lost in a leader change is proposed again.
   */
  expired(limit: number): bigint[] {
    if (!this.primary) return [];
    const now = this.config.now();
    const out: bigint[] = [];
    for (;;) {
      const top = this.expiries.peek();
      if (top === undefined || top.time > now || out.length >= limit) break;
      const l = this.leases.get(top.id);
      invariant(l !== undefined, `expiry scheduled for lease ${top.id}, which does not exist`);
      if (l.expiry > now) {
        this.expiries.set(top.id, l.expiry); // renewed since it was scheduled
        continue;
      }
      out.push(top.id);
      this.expiries.set(top.id, now + REVOKE_RETRY_MS);
    }
    return out;
  }

  /** Leader: up to `limit` checkpoints due now, as [id, remaining TTL in seconds]. */
  dueCheckpoints(limit: number): Array<[bigint, number]> {
    if (!this.primary) return [];
    const now = this.config.now();
    const out: Array<[bigint, number]> = [];
    for (;;) {
      const top = this.checkpoints.peek();
      if (top === undefined || top.time > now || out.length >= limit) break;
      this.checkpoints.delete(top.id);
      const at = this.leases.get(top.id)?.expiry ?? 0;
      if (at <= now) continue; // expired: its revoke is what counts
      out.push([top.id, Math.ceil((at - now) / 1000)]);
    }
    return out;
  }

  /** etcd's scheduleCheckpointIfNeeded: only leases that outlive the interval are worth recording. */
  private scheduleCheckpoint(l: Lease): void {
    const every = this.config.checkpointIntervalMs;
    if (every <= 0 || l.startTtl * 1000 <= every) return;
    this.checkpoints.set(l.id, this.config.now() + every);
  }
}

function record(l: Lease): LeaseRecord {
  return { id: l.id, ttl: l.ttl, remainingTtl: l.remainingTtl };
}
