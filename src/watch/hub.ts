// The watch hub: every watcher of the member, independent of any transport.
// It follows etcd's watchable store (mvcc/watchable_store.go):
//
// - "synced" watchers are up to date and get each committed revision's events
//   as they happen;
// - "unsynced" watchers catch up from the history in the backend: new
//   watchers with a start revision <= the current revision, watchers whose
//   queue was full when a revision was delivered (etcd's victims), and every
//   watcher after the store was replaced by a snapshot install. A sync pass
//   reads the history in bounded pages and moves a watcher to "synced" once
//   it has everything up to the current revision, so there is no gap and no
//   duplicate between replay and live delivery;
// - a watcher whose next revision has been compacted away gets one last
//   message with compactRevision set and is canceled.
//
// Each watcher has a bounded queue of messages; the publisher never waits for
// a consumer and memory never grows without bound: a full queue demotes the
// watcher to "unsynced" and it catches up from history once it has room.
//
// The events of one revision always travel in one message.
//
// Contract with the member (the apply loop is synchronous):
//   store.onEvents = (rev, evs) => hub.publish(rev, evs)   inside the apply transaction
//   hub.committed()                                          after the transaction commits
//   hub.rolledBack()                                         when it rolls back
//   hub.storeReplaced(storeSource(newStore))                 after a snapshot install

import { create } from "@bufbuild/protobuf";
import { RangeRequestSchema } from "../gen/etcdserverpb/rpc_pb.js";
import { type Event, Event_EventType, EventSchema, type KeyValue } from "../gen/mvccpb/kv_pb.js";
import { inRange, type RangeEnd } from "../mvcc/key-range.js";
import type { MvccStore } from "../mvcc/store.js";

/** What the hub needs of the store: its revisions and its history. */
export interface HistorySource {
  readonly rev: number;
  /** -1 if never compacted. */
  readonly compactRev: number;
  /** History rows with main revision >= fromRev, in revision order; limit 0 = all. Tombstones have createRevision 0. */
  readHistory(fromRev: number, limit: number): KeyValue[];
  /** The key's live value at `rev`, or null (absent, or `rev` compacted). */
  getAt(key: Uint8Array, rev: number): KeyValue | null;
}

/** A HistorySource over an MvccStore. */
export function storeSource(store: MvccStore): HistorySource {
  return {
    get rev() {
      return store.rev;
    },
    get compactRev() {
      return store.compactRev;
    },
    readHistory: (fromRev, limit) => store.readHistory(fromRev, limit),
    getAt(key, rev) {
      if (rev < 1 || rev < store.compactRev) return null;
      try {
        const r = store.range(create(RangeRequestSchema, { key, revision: BigInt(rev) }));
        return r.kvs[0] ?? null;
      } catch {
        return null;
      }
    },
  };
}

export interface WatchOptions {
  key: Uint8Array;
  /** Normalized: null = the single key, empty = every key >= key, else [key, end). */
  end: RangeEnd;
  /** 0 = from the next revision. */
  startRevision: number;
  noPut?: boolean;
  noDelete?: boolean;
  /** Called whenever the watcher's queue goes from empty to non-empty, or it is canceled by compaction. */
  onReady?: () => void;
}

/** One message for a watcher: the events of one or more whole revisions, a progress notice, or a compaction cancel. */
export interface WatchMessage {
  events: Event[];
  /** The header revision etcd uses: the event revision (live), the store revision (catch-up, progress), 0 (compaction). */
  revision: number;
  /** Non-zero: the watcher was canceled because its next revision was compacted. */
  compactRevision: number;
}

export interface HubOptions {
  /** Messages a watcher may have queued (etcd: 128 per stream). */
  queueLimit?: number;
  /** History rows read per page while catching up. */
  pageRows?: number;
  /** Most distinct revisions per catch-up message (etcd's watchBatchMaxRevs). */
  maxRevsPerMessage?: number;
  /** Most unsynced watchers handled per sync pass (etcd's maxWatchersPerSync). */
  maxWatchersPerSync?: number;
  /** Runs a sync pass soon, returning its cancel (default: a 0 ms timer; the member passes its scheduler). */
  schedule?: (fn: () => void) => () => void;
}

type State = "synced" | "unsynced" | "canceled";

export class Watcher {
  /** The next revision this watcher needs. */
  minRev: number;
  state: State = "unsynced";
  /** Canceled by compaction (its last message carries compactRevision). */
  compacted = false;
  private readonly queue: WatchMessage[] = [];

  constructor(
    private readonly hub: WatchHub,
    readonly key: Uint8Array,
    readonly end: RangeEnd,
    startRev: number,
    readonly noPut: boolean,
    readonly noDelete: boolean,
    readonly onReady: (() => void) | undefined,
  ) {
    this.minRev = startRev;
  }

  /** The next queued message, if any. */
  next(): WatchMessage | undefined {
    const m = this.queue.shift();
    if (m !== undefined && this.state === "unsynced") this.hub.scheduleSync();
    return m;
  }

  get queued(): number {
    return this.queue.length;
  }

  /** The next queued message, without taking it. */
  peek(): WatchMessage | undefined {
    return this.queue[0];
  }

  /** Stops the watcher: no more messages, queued ones are dropped. */
  cancel(): void {
    this.hub.remove(this);
    this.queue.length = 0;
  }

  /** Asks for a progress notice: queued only when synced and the queue has room, as etcd. */
  requestProgress(): void {
    if (this.state !== "synced") return;
    this.push({ events: [], revision: this.hub.currentRev, compactRevision: 0 });
  }

  matches(ev: Event): boolean {
    const kv = ev.kv!;
    if (!inRange(kv.key, this.key, this.end)) return false;
    if (this.noPut && ev.type === Event_EventType.PUT) return false;
    if (this.noDelete && ev.type === Event_EventType.DELETE) return false;
    return true;
  }

  get hasRoom(): boolean {
    return this.queue.length < this.hub.queueLimit;
  }

  /** @internal Appends a message if there is room. */
  push(m: WatchMessage): boolean {
    if (!this.hasRoom) return false;
    this.queue.push(m);
    if (this.queue.length === 1) this.onReady?.();
    return true;
  }

  /** @internal The compaction message goes in even when the queue is full: it is the last one. */
  pushFinal(m: WatchMessage): void {
    this.queue.push(m);
    this.onReady?.();
  }
}

export class WatchHub {
  readonly queueLimit: number;
  private readonly pageRows: number;
  private readonly maxRevs: number;
  private readonly maxPerSync: number;
  private source: HistorySource;
  private readonly synced = new Set<Watcher>();
  private readonly unsynced = new Set<Watcher>();
  /** Revisions published in the open transaction. */
  private pending: Array<[number, Event[]]> = [];
  /** The last revision delivered to synced watchers (or the store's revision when it was attached). */
  private deliveredRev: number;
  /** Cancels the scheduled sync pass, if one is scheduled. */
  private syncTimer: (() => void) | undefined;
  private readonly schedule: (fn: () => void) => () => void;
  private closed = false;

  constructor(source: HistorySource, opts: HubOptions = {}) {
    this.source = source;
    this.deliveredRev = source.rev;
    this.queueLimit = opts.queueLimit ?? 128;
    this.pageRows = opts.pageRows ?? 1000;
    this.maxRevs = opts.maxRevsPerMessage ?? 1000;
    this.maxPerSync = opts.maxWatchersPerSync ?? 512;
    this.schedule =
      opts.schedule ??
      ((fn) => {
        const t = setTimeout(fn, 0);
        return () => clearTimeout(t);
      });
  }

  get currentRev(): number {
    return this.source.rev;
  }

  get compactRev(): number {
    return this.source.compactRev;
  }

  /** The store's value of `key` at `rev` (for prev_kv of replayed events). */
  getAt(key: Uint8Array, rev: number): KeyValue | null {
    return this.source.getAt(key, rev);
  }

  get watcherCount(): { synced: number; unsynced: number } {
    return { synced: this.synced.size, unsynced: this.unsynced.size };
  }

  watch(o: WatchOptions): Watcher {
    const cur = this.source.rev;
    const syncedNow = o.startRevision === 0 || o.startRevision > cur;
    const start = syncedNow ? Math.max(cur + 1, o.startRevision) : o.startRevision;
    const w = new Watcher(this, o.key, o.end, start, !!o.noPut, !!o.noDelete, o.onReady);
    if (syncedNow) {
      w.state = "synced";
      this.synced.add(w);
    } else {
      this.unsynced.add(w);
      this.scheduleSync();
    }
    return w;
  }

  /** @internal */
  remove(w: Watcher): void {
    this.synced.delete(w);
    this.unsynced.delete(w);
    w.state = "canceled";
  }

  // ---- the member's side ----

  /** From store.onEvents, inside the apply transaction: buffered until committed(). */
  publish(rev: number, events: Event[]): void {
    this.pending.push([rev, events]);
  }

  /** The transaction committed: deliver what it published. */
  committed(): void {
    if (this.pending.length === 0) return;
    const batch = this.pending;
    this.pending = [];
    for (const [rev, events] of batch) this.deliver(rev, events);
  }

  /** The transaction rolled back: forget what it published. */
  rolledBack(): void {
    this.pending = [];
  }

  /** A snapshot install replaced the store: every watcher catches up from the new store's history. */
  storeReplaced(source: HistorySource): void {
    this.pending = [];
    const delivered = this.deliveredRev;
    for (const w of this.synced) {
      w.minRev = Math.max(w.minRev, delivered + 1);
      w.state = "unsynced";
      this.unsynced.add(w);
    }
    this.synced.clear();
    this.source = source;
    this.deliveredRev = source.rev;
    this.scheduleSync();
  }

  /** Stops the sync timer (the member is stopping). */
  close(): void {
    this.closed = true;
    this.syncTimer?.();
    this.syncTimer = undefined;
  }

  private deliver(rev: number, events: Event[]): void {
    this.deliveredRev = rev;
    // Watchers that match every event share one message (immutable once queued): with many
    // watchers on the same keys, that is one object per revision instead of one per watcher.
    let whole: WatchMessage | undefined;
    for (const w of this.synced) {
      if (rev < w.minRev) continue; // a watcher created with a future start revision
      let evs: Event[] | undefined;
      let all = true;
      for (const ev of events) {
        if (w.matches(ev)) (evs ??= []).push(ev);
        else all = false;
      }
      if (evs === undefined) continue;
      const msg = all ? (whole ??= { events, revision: rev, compactRevision: 0 }) : { events: evs, revision: rev, compactRevision: 0 };
      if (w.push(msg)) {
        w.minRev = rev + 1;
      } else {
        // etcd's victim: catch up from history once the consumer has made room.
        w.minRev = rev;
        w.state = "unsynced";
        this.synced.delete(w);
        this.unsynced.add(w);
        this.scheduleSync();
      }
    }
  }

  // ---- catching up ----

  /** @internal Runs a sync pass soon (never inside the publisher's call). */
  scheduleSync(): void {
    if (this.syncTimer !== undefined || this.closed || this.unsynced.size === 0) return;
    this.syncTimer = this.schedule(() => {
      this.syncTimer = undefined;
      const more = this.syncOnce();
      if (more) this.scheduleSync();
    });
  }

  /**
   * One sync pass: up to maxWatchersPerSync unsynced watchers with room, one
   * page of history from the smallest revision they need. Returns whether
   * another pass could make progress now.
   */
  syncOnce(): boolean {
    const cur = this.source.rev;
    const compact = this.source.compactRev;
    const chosen: Watcher[] = [];
    let minRev = Infinity;
    for (const w of this.unsynced) {
      if (chosen.length >= this.maxPerSync) break;
      if (w.minRev < compact) {
        // etcd: canceled with the compact revision (header revision 0).
        this.remove(w);
        w.compacted = true;
        w.pushFinal({ events: [], revision: 0, compactRevision: compact });
        continue;
      }
      if (w.minRev > cur) {
        // Nothing to read (e.g. a future start revision moved here by a store replacement).
        this.unsynced.delete(w);
        w.state = "synced";
        this.synced.add(w);
        continue;
      }
      if (!w.hasRoom) continue;
      chosen.push(w);
      if (w.minRev < minRev) minRev = w.minRev;
    }
    if (chosen.length === 0) return false;

    // One page, cut at a revision boundary: a revision never splits between pages.
    let limit = this.pageRows;
    let rows = this.source.readHistory(minRev, limit);
    let upTo = cur;
    while (rows.length === limit && limit > 0) {
      const last = Number(rows[rows.length - 1].modRevision);
      if (Number(rows[0].modRevision) < last) {
        upTo = last - 1;
        let n = rows.length;
        while (n > 0 && Number(rows[n - 1].modRevision) === last) n--;
        rows = rows.slice(0, n);
        break;
      }
      // The whole page is one revision: read on until it is complete.
      limit *= 2;
      rows = this.source.readHistory(minRev, limit);
    }
    const events = rows.map(toEvent);

    let progress = false;
    for (const w of chosen) {
      if (w.minRev > upTo) continue;
      // Events for this watcher, grouped into messages of at most maxRevs revisions.
      let msg: Event[] = [];
      let revs = 0;
      let lastRev = 0;
      let full = false;
      const flush = (): boolean => {
        if (msg.length === 0) return true;
        if (!w.push({ events: msg, revision: cur, compactRevision: 0 })) return false;
        w.minRev = lastRev + 1;
        progress = true;
        msg = [];
        revs = 0;
        return true;
      };
      for (const ev of events) {
        const r = Number(ev.kv!.modRevision);
        if (r < w.minRev || !w.matches(ev)) continue;
        if (r !== lastRev) {
          if (revs === this.maxRevs && !flush()) {
            full = true;
            break;
          }
          revs++;
        }
        lastRev = r;
        msg.push(ev);
      }
      if (!full && !flush()) full = true;
      if (full) continue; // stays unsynced, resumes from w.minRev once it has room
      w.minRev = Math.max(w.minRev, upTo + 1);
      progress = true;
      if (upTo >= cur) {
        this.unsynced.delete(w);
        w.state = "synced";
        this.synced.add(w);
      }
    }
    return progress && this.unsynced.size > 0;
  }
}

/** A history row as an event (etcd's kvsToEvents). */
function toEvent(kv: KeyValue): Event {
  if (kv.createRevision === 0n) return create(EventSchema, { type: Event_EventType.DELETE, kv });
  return create(EventSchema, { type: Event_EventType.PUT, kv });
}

/** etcd's isCreateEvent: a put that created the key (no previous value to look up). */
export function isCreateEvent(ev: Event): boolean {
  return ev.type === Event_EventType.PUT && ev.kv!.createRevision === ev.kv!.modRevision;
}
