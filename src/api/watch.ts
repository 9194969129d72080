// The Watch service: etcd's serverWatchStream (etcdserver/api/v3rpc/watch.go)
// over the WatchHub. One bidi stream carries many watchers; control answers
// (created, canceled, progress requests) go out in the order the requests
// came, and a watcher's events never precede its "created" answer.
import { create, toBinary } from "@bufbuild/protobuf";
import {
  type ResponseHeader,
  ResponseHeaderSchema,
  type WatchCreateRequest,
  WatchCreateRequest_FilterType,
  type WatchRequest,
  WatchRequestSchema,
  type WatchResponse,
  WatchResponseSchema,
} from "../gen/etcdserverpb/rpc_pb.js";
import { type Event, EventSchema } from "../gen/mvccpb/kv_pb.js";
import { compareBytes, toRangeEnd } from "../mvcc/key-range.js";
import { isCreateEvent, type WatchHub, type WatchMessage, type Watcher } from "../watch/hub.js";
import { type CallContext, ENCODED, type EncodedParts, type ResponseBatch, responseBatch, type ServiceImpl, unbatched } from "./context.js";
import { Code, EtcdError } from "../errors.js";

export interface WatchDeps {
  hub: WatchHub;
  /** The response header at `revision` ({cluster_id, member_id, revision, raft_term}). */
  header: (revision: number) => ResponseHeader;
  /** --max-request-bytes: the size fragmented responses are cut at (etcd default 1.5 MiB). */
  maxRequestBytes?: number;
  /** Progress notification interval for watchers created with progress_notify (etcd default 10 min). */
  progressIntervalMs?: number;
  /**
   * Aborted when the member is stopping: every stream then ends with Unavailable "transport is
   * closing", what etcd's clients see when the server goes away (watch streams never end on
   * their own, so a graceful stop would otherwise wait for its drain timeout).
   */
  stopping?: AbortSignal;
}

/** clientv3.InvalidWatchID */
const INVALID_ID = -1n;
const ERR_EMPTY_RANGE = "mvcc: watcher range is empty";
const ERR_DUPLICATE_ID = "mvcc: duplicate watch ID provided on the WatchStream";
const DEFAULT_MAX_REQUEST_BYTES = 1.5 * 1024 * 1024;
const DEFAULT_PROGRESS_MS = 10 * 60 * 1000;
/**
 * Control answers (created, canceled, progress) waiting to be sent (etcd's ctrlStreamBufLen).
 * When that many wait, the stream stops reading requests until the client reads its answers,
 * so a client that only writes is held back by flow control instead of growing this queue.
 */
const CTRL_LIMIT = 16;
/** A pass that answered this many responses within SUSTAINED_MS of another waits GATHER_MS before the next. */
const GATHER_AFTER = 64;
const SUSTAINED_MS = 50;
const GATHER_MS = 20;
/** Responses per batch (the gRPC layer writes a batch as one buffer). */
const MAX_BATCH = 128;

interface Entry {
  id: bigint;
  /** Canceled by the client: nothing more goes out for it. */
  removed?: boolean;
  /** undefined once the hub canceled it for compaction (etcd keeps the id until canceled). */
  w: Watcher;
  prevKv: boolean;
  fragment: boolean;
  /** etcd's progress map: present when progress_notify was asked; false right after events were sent. */
  progress: boolean | undefined;
}

export function watchService(deps: WatchDeps): ServiceImpl {
  return {
    watch(reqs: AsyncIterable<WatchRequest>, ctx: CallContext): AsyncIterable<WatchResponse | ResponseBatch<WatchResponse>> {
      return new WatchStream(deps, ctx.signal).run(reqs);
    },
  };
}

/**
 * tsetcdpb.WatchStream: one watcher per server-streaming call, for clients that cannot
 * open a bidi stream. The same stream logic as Watch.Watch, fed a single create request
 * (a half-closed bidi stream, which keeps delivering); the call ends after the watcher's
 * "canceled" answer, or when the client goes away.
 */
export function watchStreamService(deps: WatchDeps): ServiceImpl {
  return {
    watch(creq: WatchCreateRequest, ctx: CallContext): AsyncIterable<WatchResponse> {
      return untilCanceled(new WatchStream(deps, ctx.signal).run(single(creq)));
    },
  };
}

async function* single(creq: WatchCreateRequest): AsyncGenerator<WatchRequest> {
  yield create(WatchRequestSchema, { requestUnion: { case: "createRequest", value: creq } });
}

async function* untilCanceled(responses: AsyncGenerator<WatchResponse | ResponseBatch<WatchResponse>>): AsyncGenerator<WatchResponse> {
  try {
    for await (const r of unbatched(responses)) {
      yield r;
      if (r.canceled) return;
    }
  } finally {
    await responses.return(undefined);
  }
}

class WatchStream {
  private readonly ctrl: WatchResponse[] = [];
  private readonly watchers = new Map<bigint, Entry>();
  /** Watchers whose queue may hold messages, in the order they became ready (entries, not ids: bigint keys hash slowly). */
  private ready = new Set<Entry>();
  private nextId = 0n;
  private wake: (() => void) | undefined;
  /** When the last pass of GATHER_AFTER or more responses ran (performance.now()). */
  private lastHeavyPass = -Infinity;
  /** The request reader waiting for room in `ctrl`. */
  private ctrlRoom: (() => void) | undefined;
  private failure: unknown;
  private ended = false;
  private progressTimer: ReturnType<typeof setInterval> | undefined;
  private readonly maxRequestBytes: number;

  constructor(
    private readonly deps: WatchDeps,
    private readonly signal: AbortSignal,
  ) {
    this.maxRequestBytes = deps.maxRequestBytes ?? DEFAULT_MAX_REQUEST_BYTES;
  }

  async *run(reqs: AsyncIterable<WatchRequest>): AsyncGenerator<WatchResponse | ResponseBatch<WatchResponse>> {
    const onAbort = () => this.notify();
    this.signal.addEventListener("abort", onAbort);
    this.deps.stopping?.addEventListener("abort", onAbort);
    void this.receive(reqs);
    try {
      while (!this.signal.aborted) {
        if (this.failure !== undefined) throw this.failure;
        if (this.deps.stopping?.aborted) throw new EtcdError(Code.Unavailable, "transport is closing");
        const c = this.ctrl.shift();
        if (c !== undefined) {
          if (this.ctrl.length < CTRL_LIMIT) this.ctrlRoom?.();
          yield c;
          continue;
        }
        const out = this.nextEvents();
        if (out !== undefined) {
          // Many watchers answered at once go out as batches (one write each on gRPC).
          if (out.length === 1) yield out[0];
          else for (let i = 0; i < out.length; i += MAX_BATCH) yield responseBatch(out.slice(i, i + MAX_BATCH));
          // Sustained heavy fan-out (a second pass of many responses soon after another): let
          // the next revisions gather for a moment, so each watcher gets them joined in one
          // response (as etcd's lagging watchers get batches) instead of one response each.
          if (out.length >= GATHER_AFTER) {
            const now = performance.now();
            const sustained = now - this.lastHeavyPass < SUSTAINED_MS;
            this.lastHeavyPass = now;
            if (sustained) await Bun.sleep(GATHER_MS);
          }
          continue;
        }
        // As etcd: a client that only half-closes keeps getting events until it goes away.
        await new Promise<void>((resolve) => (this.wake = resolve));
        this.wake = undefined;
      }
    } finally {
      this.signal.removeEventListener("abort", onAbort);
      this.deps.stopping?.removeEventListener("abort", onAbort);
      this.close();
    }
  }

  private notify(): void {
    this.wake?.();
  }

  private close(): void {
    this.ended = true;
    this.ctrlRoom?.();
    if (this.progressTimer !== undefined) clearInterval(this.progressTimer);
    for (const e of this.watchers.values()) e.w.cancel();
    this.watchers.clear();
    this.ready.clear();
  }

  private async receive(reqs: AsyncIterable<WatchRequest>): Promise<void> {
    try {
      for await (const req of reqs) {
        while (this.ctrl.length >= CTRL_LIMIT && !this.ended) {
          await new Promise<void>((resolve) => (this.ctrlRoom = resolve));
          this.ctrlRoom = undefined;
        }
        if (this.ended) return;
        this.handle(req);
      }
    } catch (err) {
      if (!this.ended) this.failure = err;
      this.notify();
    }
  }

  private handle(req: WatchRequest): void {
    const u = req.requestUnion;
    switch (u.case) {
      case "createRequest":
        this.create(u.value);
        break;
      case "cancelRequest": {
        const id = u.value.watchId;
        const e = this.watchers.get(id);
        if (e === undefined) return; // etcd: no answer for an unknown id
        e.w.cancel();
        e.removed = true;
        this.watchers.delete(id);
        this.ready.delete(e);
        this.control(create(WatchResponseSchema, { header: this.header(), watchId: id, canceled: true }));
        break;
      }
      case "progressRequest":
        this.control(create(WatchResponseSchema, { header: this.header(), watchId: INVALID_ID }));
        break;
      default:
        break; // etcd ignores what it does not know
    }
  }

  private create(creq: WatchCreateRequest): void {
    let key = creq.key;
    if (key.length === 0) key = new Uint8Array([0]); // \x00 is the smallest key
    const end = toRangeEnd(creq.rangeEnd);
    const wsrev = this.deps.hub.currentRev;
    const fail = (reason: string) =>
      this.control(create(WatchResponseSchema, { header: this.deps.header(wsrev), watchId: INVALID_ID, created: true, canceled: true, cancelReason: reason }));
    if (end !== null && end.length > 0 && compareBytes(key, end) >= 0) return fail(ERR_EMPTY_RANGE);
    let id = creq.watchId;
    if (id === 0n) {
      while (this.watchers.has(this.nextId)) this.nextId++;
      id = this.nextId++;
    } else if (this.watchers.has(id)) {
      return fail(ERR_DUPLICATE_ID);
    }
    const start = creq.startRevision === 0n ? wsrev + 1 : Number(creq.startRevision);
    // The created answer is queued before the watcher exists, so it goes out first.
    this.control(create(WatchResponseSchema, { header: this.deps.header(wsrev), watchId: id, created: true }));
    let entry: Entry | undefined;
    const w = this.deps.hub.watch({
      key,
      end,
      startRevision: start,
      noPut: creq.filters.includes(WatchCreateRequest_FilterType.NOPUT),
      noDelete: creq.filters.includes(WatchCreateRequest_FilterType.NODELETE),
      onReady: () => {
        if (entry === undefined) return;
        this.ready.add(entry);
        this.notify();
      },
    });
    entry = { id, w, prevKv: creq.prevKv, fragment: creq.fragment, progress: creq.progressNotify ? true : undefined };
    this.watchers.set(id, entry);
    // Messages queued while the entry was being made (a replay can start at once).
    if (w.queued > 0) {
      this.ready.add(entry);
      this.notify();
    }
    if (creq.progressNotify) this.startProgressTimer();
  }

  private control(r: WatchResponse): void {
    this.ctrl.push(r);
    this.notify();
  }

  private header(): ResponseHeader {
    return this.deps.header(this.deps.hub.currentRev);
  }

  /**
   * One message of every ready watcher, as responses (a message may be fragments), in the
   * order they became ready. Round robin: a watcher with more queued goes to the back, so a
   * busy watcher cannot starve the others. One pass for all: a revision that matches every
   * watcher of the stream is answered in one go.
   */
  private nextEvents(): WatchResponse[] | undefined {
    if (this.ready.size === 0) return undefined;
    const entries = this.ready;
    this.ready = new Set();
    const out: WatchResponse[] = [];
    for (const e of entries) {
      if (e.removed) continue;
      const msg = this.takeMessage(e.w);
      if (msg === undefined) continue;
      if (e.w.queued > 0) this.ready.add(e);
      this.toResponses(e.id, e, msg, out);
    }
    return out.length > 0 ? out : undefined;
  }

  /**
   * The watcher's next message; when it has several event messages queued (it fell behind the
   * writes), they go out merged into one response, as etcd sends a lagging watcher up to 1000
   * revisions at once: a revision is never split, only whole revisions are joined. Watchers
   * with the same queued messages share the merged one (and so its encoding).
   */
  private takeMessage(w: Watcher): WatchMessage | undefined {
    const first = w.next();
    if (first === undefined || !mergeable(first)) return first;
    let msgs: WatchMessage[] | undefined;
    let bytes = approxSize(first);
    for (;;) {
      const next = w.peek();
      if (next === undefined || !mergeable(next) || msgs?.length === MAX_MERGED_REVS) break;
      bytes += approxSize(next);
      if (bytes > MAX_MERGED_BYTES) break;
      (msgs ??= [first]).push(w.next()!);
    }
    if (msgs === undefined) return first;
    const cached = merged.get(first);
    if (cached !== undefined && cached.parts.length === msgs.length && cached.parts.every((m, i) => m === msgs[i])) return cached.msg;
    const msg: WatchMessage = { events: msgs.flatMap((m) => m.events), revision: msgs[msgs.length - 1].revision, compactRevision: 0 };
    merged.set(first, { parts: msgs, msg });
    return msg;
  }

  /** The response header at `revision`, shared by every response of that revision on this stream. */
  private headerAt(revision: number): ResponseHeader {
    const last = this.lastHeader;
    if (last !== undefined && last.revision === revision && last.at === this.deps.hub.currentRev) return last.header;
    const header = this.deps.header(revision);
    this.lastHeader = { revision, at: this.deps.hub.currentRev, header };
    return header;
  }
  private lastHeader: { revision: number; at: number; header: ResponseHeader } | undefined;

  /** The message's events as this watcher sends them (with or without prev_kv), shared by every watcher of that kind. */
  private eventsFor(msg: WatchMessage, prevKv: boolean): Event[] {
    let cached = shapedEvents.get(msg);
    if (cached === undefined) shapedEvents.set(msg, (cached = {}));
    const key = prevKv ? "withPrev" : "noPrev";
    return (cached[key] ??= msg.events.map((ev) => this.withPrevKv(ev, prevKv)));
  }

  /** Appends the watcher's message as responses (one, or its fragments) to `out`. */
  private toResponses(id: bigint, e: Entry, msg: WatchMessage, out: WatchResponse[]): void {
    const events = this.eventsFor(msg, e.prevKv);
    const header = this.headerAt(msg.revision);
    // Events of one revision go to every watcher that matches, often thousands: each event and
    // header is encoded once and the responses are assembled from those bytes (for gRPC).
    const parts = events.length > 0 && msg.compactRevision === 0 && !e.fragment ? encodeEventsResponse(header, id, events) : null;
    // A plain object of the message's shape (what create() returns, without its per-field
    // initialization): thousands of these go out per second when many watchers match.
    const wr: WatchResponse & { [ENCODED]?: EncodedParts } = {
      [ENCODED]: parts ?? undefined,
      $typeName: "etcdserverpb.WatchResponse",
      header,
      watchId: id,
      created: false,
      canceled: msg.compactRevision !== 0,
      compactRevision: msg.compactRevision === 0 ? 0n : BigInt(msg.compactRevision),
      cancelReason: "",
      fragment: false,
      events,
    };
    if (events.length > 0 && e.progress !== undefined) e.progress = false;
    if (e.fragment) for (const f of fragments(wr, this.maxRequestBytes)) out.push(f);
    else out.push(wr);
  }

  /** etcd looks prev_kv up at the event's revision - 1; live events already carry it. */
  private withPrevKv(ev: Event, wanted: boolean): Event {
    if (!wanted) return ev.prevKv === undefined ? ev : withoutPrevKv(ev);
    if (ev.prevKv !== undefined || isCreateEvent(ev)) return ev;
    const known = withPrev.get(ev);
    if (known !== undefined) return known;
    const prev = this.deps.hub.getAt(ev.kv!.key, Number(ev.kv!.modRevision) - 1);
    const out = prev === null ? ev : create(EventSchema, { type: ev.type, kv: ev.kv, prevKv: prev });
    withPrev.set(ev, out);
    return out;
  }

  private startProgressTimer(): void {
    if (this.progressTimer !== undefined) return;
    // etcd adds up to a tenth of the interval as jitter, so streams opened together do not all report at once.
    const base = this.deps.progressIntervalMs ?? DEFAULT_PROGRESS_MS;
    const ms = base + Math.floor(Math.random() * (base / 10));
    this.progressTimer = setInterval(() => {
      for (const e of this.watchers.values()) {
        if (e.progress === undefined) continue;
        if (e.progress) e.w.requestProgress();
        e.progress = true;
      }
    }, ms);
    (this.progressTimer as { unref?: () => void }).unref?.();
  }
}

// ---- responses assembled from encoded parts ----
// Events are immutable once published and shared by every watcher they match, so their
// encodings (and their copies with or without prev_kv) are kept beside them while they live.

const eventBytes = new WeakMap<Event, Uint8Array>();
/** The last merge of queued messages starting at a message, for watchers with the same queue. */
const merged = new WeakMap<WatchMessage, { parts: WatchMessage[]; msg: WatchMessage }>();
/** Revisions joined into one response at most (etcd's watchBatchMaxRevs). */
const MAX_MERGED_REVS = 1000;
/** Key and value bytes joined into one response at most. */
const MAX_MERGED_BYTES = 1024 * 1024;

/** Event messages can be joined; progress notices and compaction cancels cannot. */
function mergeable(m: WatchMessage): boolean {
  return m.events.length > 0 && m.compactRevision === 0;
}

function approxSize(m: WatchMessage): number {
  let n = 0;
  for (const ev of m.events) n += (ev.kv?.key.length ?? 0) + (ev.kv?.value.length ?? 0) + (ev.prevKv?.value.length ?? 0) + 32;
  return n;
}
/** A queued message's events shaped for watchers with and without prev_kv. */
const shapedEvents = new WeakMap<WatchMessage, { noPrev?: Event[]; withPrev?: Event[] }>();
/** The encoded header and events fields of a shaped events array (with the header they were made with). */
const eventsField = new WeakMap<Event[], { header: Uint8Array; bytes: Uint8Array }>();
const noPrev = new WeakMap<Event, Event>();
const withPrev = new WeakMap<Event, Event>();
let lastHeader: { header: ResponseHeader; bytes: Uint8Array } | undefined;

function withoutPrevKv(ev: Event): Event {
  let out = noPrev.get(ev);
  if (out === undefined) {
    out = create(EventSchema, { type: ev.type, kv: ev.kv });
    noPrev.set(ev, out);
  }
  return out;
}

function encodedEvent(ev: Event): Uint8Array {
  let b = eventBytes.get(ev);
  if (b === undefined) {
    b = toBinary(EventSchema, ev);
    eventBytes.set(ev, b);
  }
  return b;
}

/** Field 1 (header): tag, length and the header's encoding; the last one is kept. */
function encodedHeaderField(h: ResponseHeader): Uint8Array {
  const last = lastHeader;
  if (
    last !== undefined &&
    last.header.revision === h.revision &&
    last.header.raftTerm === h.raftTerm &&
    last.header.memberId === h.memberId &&
    last.header.clusterId === h.clusterId
  ) {
    return last.bytes;
  }
  const hb = toBinary(ResponseHeaderSchema, h);
  const bytes = new Uint8Array(1 + varintSize(hb.length) + hb.length);
  bytes[0] = 0x0a;
  bytes.set(hb, putVarint(bytes, 1, hb.length));
  lastHeader = { header: h, bytes };
  return bytes;
}

const varintSize = (n: number): number => {
  let size = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 128);
    size++;
  }
  return size;
};

function putVarint(buf: Uint8Array, at: number, n: number): number {
  while (n >= 0x80) {
    buf[at++] = (n % 128) | 0x80;
    n = Math.floor(n / 128);
  }
  buf[at++] = n;
  return at;
}

/**
 * The protobuf encoding of WatchResponse{header, watch_id, events} (every other field at its
 * default), as parts to concatenate: the header and events fields, shared by every watcher
 * answered for the revision and encoded once, then the watcher's own watch_id field (left out
 * when 0). The watch id comes last, out of field-number order: protobuf parsers must accept
 * fields in any order, and this way a response costs one copy of the shared bytes and a few
 * bytes of its own. null for a watch id this does not handle (negative or above 2^53).
 */
function encodeEventsResponse(header: ResponseHeader, id: bigint, events: Event[]): EncodedParts | null {
  if (id < 0n || id > BigInt(Number.MAX_SAFE_INTEGER)) return null;
  const watchId = Number(id);
  const headerPart = encodedHeaderField(header);
  let shared = eventsField.get(events);
  if (shared === undefined || shared.header !== headerPart) {
    const evs = events.map(encodedEvent);
    let size = headerPart.length;
    for (const b of evs) size += 1 + varintSize(b.length) + b.length; // field 11, length-delimited
    const bytes = new Uint8Array(size);
    bytes.set(headerPart, 0);
    let at = headerPart.length;
    for (const b of evs) {
      bytes[at++] = 0x5a;
      at = putVarint(bytes, at, b.length);
      bytes.set(b, at);
      at += b.length;
    }
    shared = { header: headerPart, bytes };
    eventsField.set(events, shared);
  }
  if (watchId === 0) return shared.bytes;
  return [shared.bytes, watchIdField(watchId)];
}

/** Field 2 (watch_id) of small ids, encoded once. */
const watchIdFields: Uint8Array[] = [];
function watchIdField(id: number): Uint8Array {
  const cached = id < 4096 ? watchIdFields[id] : undefined;
  if (cached !== undefined) return cached;
  const out = new Uint8Array(1 + varintSize(id));
  out[0] = 0x10;
  putVarint(out, 1, id);
  if (id < 4096) watchIdFields[id] = out;
  return out;
}

/** etcd's sendFragments: cut a response whose size reaches the limit, never below one event per part. */
function fragments(wr: WatchResponse, maxBytes: number): WatchResponse[] {
  const size = (r: WatchResponse) => toBinary(WatchResponseSchema, r).length;
  if (wr.events.length < 2 || size(wr) < maxBytes) return [wr];
  const out: WatchResponse[] = [];
  const all = wr.events;
  let idx = 0;
  while (true) {
    const cur = create(WatchResponseSchema, {
      header: wr.header,
      watchId: wr.watchId,
      compactRevision: wr.compactRevision,
      canceled: wr.canceled,
      fragment: true,
    });
    for (; idx < all.length; idx++) {
      cur.events.push(all[idx]);
      if (cur.events.length > 1 && size(cur) >= maxBytes) {
        cur.events.pop();
        break;
      }
    }
    if (idx === all.length) cur.fragment = false;
    out.push(cur);
    if (!cur.fragment) break;
  }
  return out;
}
