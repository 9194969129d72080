// Watch at scale against the compiled binary (one member):
// 1. 10,000 events (2,500 txns of 4 ops, puts and deletes, on 100 keys under 10 prefixes)
//    while 100 watchers on 10 gRPC bidi streams (10 per stream: single keys, prefixes,
//    ranges, the whole space, with and without filters) watch: every watcher gets exactly
//    its expected events (known from the txn answers), each once, in revision order, and
//    one more watcher that disconnects mid-way and comes back with start_revision = last
//    seen + 1 misses nothing and sees nothing twice.
// 2. A stalled watcher: a raw HTTP/2 stream that asks for every event and then never reads
//    (no WINDOW_UPDATE, socket paused) while 10,000 events of 4 KiB are written. The
//    server's RSS must grow far less than what holding those events for it would cost, and
//    the other watchers must still get everything, in about the time they need without it.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { create, toBinary } from "@bufbuild/protobuf";
import { createClient, type Client, type Transport } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { connect as netConnect, type Socket } from "node:net";
import { readFileSync } from "node:fs";
import {
  KV,
  Watch,
  WatchCreateRequest_FilterType,
  type WatchRequest,
  WatchRequestSchema,
  type WatchResponse,
  type TxnResponse,
} from "../src/gen/etcdserverpb/rpc_pb.js";
import { Event_EventType } from "../src/gen/mvccpb/kv_pb.js";
import { dec, enc } from "./harness/grpc-client.ts";
import { startMember, type Member } from "./harness/server.ts";
import { requireTools, SUBJECT_BIN } from "./harness/tools.ts";

const PREFIXES = 10;
const KEYS_PER_PREFIX = 10;
const TXNS = 2_500;
const OPS_PER_TXN = 4;
const WRITERS = 32;
const STREAMS = 10;
const WATCHERS_PER_STREAM = 10;
/** Bound on waiting for every watcher to have everything once the writes are done. */
const DELIVERY_TIMEOUT_MS = 20_000;

const STALL_EVENTS = 10_000;
const STALL_VALUE_BYTES = 4 * 1024;
/** Payload the stalled watcher would hold if the server kept its events for it: ~40 MiB. */
const STALL_PAYLOAD = STALL_EVENTS * STALL_VALUE_BYTES;
/** Stalled streams, each on its own connection: a per-stream buffer would be paid this many times. */
const STALLED_STREAMS = 4;

// ---- small helpers ------------------------------------------------------------------------

function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout>;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms)));
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

/** Runs `fn(i)` for i in [0, n) with at most `concurrency` calls in flight. */
async function pool(n: number, concurrency: number, fn: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < n) await fn(next++);
    }),
  );
}

function rssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  if (!m) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(m[1]) * 1024;
}

const key = (p: number, k: number) => `s/p${p}/k${k}`;

// ---- watchers -----------------------------------------------------------------------------

interface Spec {
  key: string;
  /** undefined: the single key; "\0": every key >= key; else [key, rangeEnd). */
  rangeEnd?: string;
  noPut?: boolean;
  noDelete?: boolean;
}

interface Ev {
  rev: bigint;
  type: "PUT" | "DELETE";
  key: string;
}

const fmt = (e: Ev) => `${e.rev} ${e.type} ${e.key}`;

function matches(s: Spec, e: Ev): boolean {
  if (s.noPut && e.type === "PUT") return false;
  if (s.noDelete && e.type === "DELETE") return false;
  if (s.rangeEnd === undefined) return e.key === s.key;
  if (s.rangeEnd === "\0") return e.key >= s.key;
  return e.key >= s.key && e.key < s.rangeEnd;
}

/** Ten watchers for stream `i`, a different mix on each stream. */
function specsFor(i: number): Spec[] {
  const p = i % PREFIXES;
  const q = (i + 3) % PREFIXES;
  return [
    { key: `s/p${p}/`, rangeEnd: `s/p${p}0` }, // a prefix
    { key: `s/p${q}/`, rangeEnd: `s/p${q}0` },
    { key: key(p, i % KEYS_PER_PREFIX) }, // single keys
    { key: key(q, (i + 5) % KEYS_PER_PREFIX) },
    { key: key(p, 0), noPut: true },
    { key: "s/", rangeEnd: "s0" }, // everything
    { key: `s/p${Math.min(p, 6)}/`, rangeEnd: `s/p${Math.min(p, 6) + 3}/` }, // three prefixes
    { key: `s/p${q}/`, rangeEnd: `s/p${q}0`, noDelete: true },
    { key: "s/p5/k5", rangeEnd: "\0" }, // from a key on
    { key: "s/", rangeEnd: "s0", noPut: true },
  ];
}

/** One gRPC bidi Watch stream on its own connection, carrying several watchers. */
class Stream {
  readonly byId = new Map<bigint, Ev[]>();
  private readonly pending: WatchRequest[] = [];
  private wake: (() => void) | undefined;
  private readonly ac = new AbortController();
  private readonly createdWaiters: Array<(id: bigint) => void> = [];
  /** Called after each response with events (for the reconnecting watcher). */
  onEvents: ((id: bigint, evs: Ev[]) => void) | undefined;
  readonly done: Promise<void>;
  error: unknown;
  /** The header revision of the last "created" answer. */
  createdRev = 0n;

  constructor(transport: Transport) {
    const client = createClient(Watch, transport);
    const ac = this.ac;
    const self = this;
    const reqs = (async function* () {
      while (!ac.signal.aborted) {
        const r = self.pending.shift();
        if (r) yield r;
        else await new Promise<void>((res) => (self.wake = res));
      }
    })();
    this.done = (async () => {
      try {
        for await (const r of client.watch(reqs, { signal: ac.signal })) this.onResponse(r);
      } catch (err) {
        if (!ac.signal.aborted) this.error = err;
      }
    })();
  }

  private onResponse(r: WatchResponse): void {
    if (r.created) {
      if (r.canceled) throw new Error(`watch refused: ${r.cancelReason}`);
      this.byId.set(r.watchId, []);
      this.createdRev = r.header!.revision;
      this.createdWaiters.shift()?.(r.watchId);
      return;
    }
    if (r.canceled) throw new Error(`watch ${r.watchId} canceled (compact ${r.compactRevision})`);
    if (r.events.length === 0) return;
    const evs = r.events.map((e) => ({ rev: e.kv!.modRevision, type: e.type === Event_EventType.DELETE ? "DELETE" : "PUT", key: dec(e.kv!.key) }) as Ev);
    this.byId.get(r.watchId)!.push(...evs);
    this.onEvents?.(r.watchId, evs);
  }

  /** Creates a watcher and resolves with its id once the server said "created". */
  watch(s: Spec, startRevision = 0n): Promise<bigint> {
    const filters = [];
    if (s.noPut) filters.push(WatchCreateRequest_FilterType.NOPUT);
    if (s.noDelete) filters.push(WatchCreateRequest_FilterType.NODELETE);
    const rangeEnd = s.rangeEnd === undefined ? new Uint8Array() : s.rangeEnd === "\0" ? new Uint8Array([0]) : enc(s.rangeEnd);
    this.pending.push(create(WatchRequestSchema, { requestUnion: { case: "createRequest", value: { key: enc(s.key), rangeEnd, filters, startRevision } } }));
    this.wake?.();
    return within(new Promise<bigint>((res) => this.createdWaiters.push(res)), 5_000, "watch created");
  }

  close(): Promise<void> {
    this.ac.abort();
    this.wake?.();
    return within(this.done, 5_000, "watch stream end");
  }
}

/** Waits (bounded) until `count()` reaches `want`; returns the ms it took. */
async function until<N extends number | bigint>(count: () => N | Promise<N>, want: N, ms: number, what: string): Promise<number> {
  const started = performance.now();
  for (let n = await count(); n < want; n = await count()) {
    if (performance.now() - started > ms) throw new Error(`${what}: ${n} of ${want} after ${ms} ms`);
    await Bun.sleep(10);
  }
  return performance.now() - started;
}

// ---- a stalled reader: HTTP/2 by hand, so nothing ever grants the server more window ----------

/** A literal header field without indexing, new name, no Huffman (RFC 7541 6.2.2); short strings only. */
function hpackLiteral(name: string, value: string): number[] {
  const n = [...Buffer.from(name)];
  const v = [...Buffer.from(value)];
  if (n.length > 126 || v.length > 126) throw new Error("header too long for this encoder");
  return [0x00, n.length, ...n, v.length, ...v];
}

function frame(type: number, flags: number, streamId: number, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(9 + payload.length);
  const len = payload.length;
  out.set([
    (len >> 16) & 0xff,
    (len >> 8) & 0xff,
    len & 0xff,
    type,
    flags,
    (streamId >>> 24) & 0x7f,
    (streamId >> 16) & 0xff,
    (streamId >> 8) & 0xff,
    streamId & 0xff,
  ]);
  out.set(payload, 9);
  return out;
}

/**
 * Opens one Watch stream for every key >= `fromKey`, waits for the server's SETTINGS (acks
 * them) and the first response bytes, then stops reading the socket for good. Returns the
 * socket (destroy it to end the stall).
 */
async function stalledWatch(clientUrl: string, fromKey: string): Promise<Socket> {
  const url = new URL(clientUrl);
  const sock = netConnect({ host: url.hostname, port: Number(url.port) });
  await within(new Promise<void>((res, rej) => sock.once("connect", res).once("error", rej)), 5_000, "stalled client connect");
  const req = toBinary(
    WatchRequestSchema,
    create(WatchRequestSchema, { requestUnion: { case: "createRequest", value: { key: enc(fromKey), rangeEnd: new Uint8Array([0]) } } }),
  );
  const grpcMsg = new Uint8Array(5 + req.length);
  new DataView(grpcMsg.buffer).setUint32(1, req.length);
  grpcMsg.set(req, 5);
  const headers = [
    ...hpackLiteral(":method", "POST"),
    ...hpackLiteral(":scheme", "http"),
    ...hpackLiteral(":path", "/etcdserverpb.Watch/Watch"),
    ...hpackLiteral(":authority", url.host),
    ...hpackLiteral("content-type", "application/grpc"),
    ...hpackLiteral("te", "trailers"),
  ];
  // Preface, empty SETTINGS (default 64 KiB windows), HEADERS (END_HEADERS), DATA with the create request.
  sock.write(Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"));
  sock.write(frame(0x4, 0, 0, new Uint8Array()));
  sock.write(frame(0x1, 0x4, 1, Uint8Array.from(headers)));
  sock.write(frame(0x0, 0, 1, grpcMsg));
  // Read until the server's SETTINGS (ack it) and some DATA on stream 1 (the "created" answer).
  await within(
    new Promise<void>((resolve, reject) => {
      let buf = Buffer.alloc(0);
      let acked = false;
      const onData = (chunk: Buffer) => {
        buf = Buffer.concat([buf, chunk]);
        while (buf.length >= 9) {
          const len = buf.readUIntBE(0, 3);
          if (buf.length < 9 + len) break;
          const type = buf[3];
          const flags = buf[4];
          const sid = buf.readUInt32BE(5) & 0x7fffffff;
          buf = buf.subarray(9 + len);
          if (type === 0x4 && (flags & 0x1) === 0 && !acked) {
            acked = true;
            sock.write(frame(0x4, 0x1, 0, new Uint8Array()));
          }
          if (type === 0x3 || type === 0x7) reject(new Error(`stalled stream refused (frame type ${type})`));
          if (type === 0x0 && sid === 1 && acked) {
            sock.off("data", onData);
            sock.pause();
            resolve();
            return;
          }
        }
      };
      sock.on("data", onData);
      sock.once("error", reject);
    }),
    5_000,
    "stalled watch created",
  );
  sock.on("error", () => {});
  return sock;
}

/** Polls /metrics until the server has `n` watchers (bounded). */
async function expectWatchers(m: Member, n: number, ms = 5_000): Promise<void> {
  const deadline = Date.now() + ms;
  let last = NaN;
  while (Date.now() < deadline) {
    const text = await (await fetch(`${m.clientUrl}/metrics`)).text();
    last = Number(/^etcd_debugging_mvcc_watcher_total (\d+)$/m.exec(text)?.[1] ?? NaN);
    if (last === n) return;
    await Bun.sleep(50);
  }
  throw new Error(`expected ${n} watchers, the server has ${last}`);
}

// ---- the tests ----------------------------------------------------------------------------

const ready = requireTools([SUBJECT_BIN]);

describe.skipIf(!ready)("watch at scale (one member)", () => {
  let m: Member;
  let kv: Client<typeof KV>;
  const transports: Transport[] = [];
  const transport = (): Transport => {
    const t = createGrpcTransport({ baseUrl: m.clientUrl });
    transports.push(t);
    return t;
  };

  beforeAll(async () => {
    m = await startMember({ name: "scale" });
    kv = createClient(KV, transport());
  }, 30_000);
  afterAll(async () => {
    await m?.stop();
  });

  test("10,000 events, 100 watchers on 10 streams, and a watcher that reconnects: each event exactly once, in order", async () => {
    const t0 = performance.now();
    const streams = Array.from({ length: STREAMS }, () => new Stream(transport()));
    const watchers: { stream: Stream; id: bigint; spec: Spec }[] = [];
    for (const [i, s] of streams.entries()) {
      for (const spec of specsFor(i)) watchers.push({ stream: s, id: await s.watch(spec), spec });
    }
    expect(watchers.length).toBe(STREAMS * WATCHERS_PER_STREAM);

    // The reconnecting watcher: everything under s/, on a stream of its own.
    const all: Spec = { key: "s/", rangeEnd: "s0" };
    const seenByReconnecting: Ev[] = [];
    let rstream = new Stream(transport());
    const firstId = await rstream.watch(all);
    let lastSeen = 0n;
    let reconnects = 0;
    let resumedFrom = 0n;
    const follow = (s: Stream) =>
      (s.onEvents = (_id, evs) => {
        seenByReconnecting.push(...evs);
        lastSeen = evs[evs.length - 1].rev;
      });
    follow(rstream);
    expect(firstId).toBe(0n);

    // The writes: each txn touches OPS_PER_TXN distinct keys; about one op in five is a delete.
    let seed = 42;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    const plans = Array.from({ length: TXNS }, () => {
      const keys = new Set<string>();
      while (keys.size < OPS_PER_TXN) keys.add(key(rand(PREFIXES), rand(KEYS_PER_PREFIX)));
      return [...keys].map((k) => ({ k, del: rand(5) === 0 }));
    });
    const answers: TxnResponse[] = new Array(TXNS);
    let written = 0;
    const reconnectAt = Math.floor(TXNS / 3);
    let reconnecting: Promise<void> | undefined;
    const tw = performance.now();
    await pool(TXNS, WRITERS, async (i) => {
      answers[i] = await kv.txn({
        success: plans[i].map(({ k, del }) =>
          del
            ? { request: { case: "requestDeleteRange" as const, value: { key: enc(k) } } }
            : { request: { case: "requestPut" as const, value: { key: enc(k), value: enc(`v${i}`) } } },
        ),
      });
      // A third of the way in, the reconnecting watcher drops its stream and comes back from last seen + 1.
      if (++written === reconnectAt) {
        reconnecting = (async () => {
          await rstream.close();
          reconnects++;
          const from = lastSeen + 1n;
          resumedFrom = from;
          // Away until the writers made at least one revision it has not seen (bounded).
          await until(async () => (await kv.range({ key: enc("s/"), limit: 1n })).header!.revision, from, 5_000, "writes while away");
          rstream = new Stream(transport());
          follow(rstream);
          await rstream.watch(all, from);
        })();
      }
    });
    await within(reconnecting!, 10_000, "reconnect");
    const writeMs = performance.now() - tw;

    // What each txn did, in revision order: puts always, deletes when they deleted something.
    const events: Ev[] = [];
    const order = [...answers.keys()].sort((a, b) => Number(answers[a].header!.revision - answers[b].header!.revision));
    for (const i of order) {
      const rev = answers[i].header!.revision;
      plans[i].forEach(({ k, del }, j) => {
        const r = answers[i].responses[j].response;
        if (!del) events.push({ rev, type: "PUT", key: k });
        else if (r.case === "responseDeleteRange" && r.value.deleted > 0n) events.push({ rev, type: "DELETE", key: k });
      });
    }
    expect(events.filter((e) => e.type === "DELETE").length).toBeGreaterThan(500);
    const putCount = events.filter((e) => e.type === "PUT").length;
    // 10,000 ops; deletes of absent keys make no event.
    expect(putCount + events.filter((e) => e.type === "DELETE").length).toBeGreaterThan(9_000);
    expect(new Set(answers.map((a) => a.header!.revision)).size).toBe(TXNS);

    const expected = watchers.map((w) => events.filter((e) => matches(w.spec, e)).map(fmt));
    const got = () => watchers.map((w) => w.stream.byId.get(w.id)!);
    const totalExpected = expected.reduce((n, e) => n + e.length, 0);
    const deliverMs = await until(() => got().reduce((n, g) => n + g.length, 0), totalExpected, DELIVERY_TIMEOUT_MS, "events delivered");
    await until(() => seenByReconnecting.length, events.length, DELIVERY_TIMEOUT_MS, "reconnecting watcher");
    await Bun.sleep(200); // anything extra (a duplicate) would arrive now
    for (const s of streams) expect(s.error).toBeUndefined();
    got().forEach((g, i) => {
      expect({ watcher: i, spec: watchers[i].spec, events: g.map(fmt) }).toEqual({ watcher: i, spec: watchers[i].spec, events: expected[i] });
    });
    expect(reconnects).toBe(1);
    // It came back mid-way, and writes made while it was away came from history.
    expect(resumedFrom).toBeGreaterThan(events[0].rev);
    expect(rstream.createdRev).toBeGreaterThanOrEqual(resumedFrom);
    expect(seenByReconnecting.map(fmt)).toEqual(events.map(fmt));
    console.log(
      `scale: ${events.length} events in ${TXNS} txns written in ${writeMs.toFixed(0)} ms; ${totalExpected} deliveries to 100 watchers ` +
        `done ${deliverMs.toFixed(0)} ms after the last write; total ${(performance.now() - t0).toFixed(0)} ms`,
    );
    await Promise.all([...streams, rstream].map((s) => s.close()));
    await expectWatchers(m, 0); // closed streams leave no watcher behind
  }, 60_000);

  /** Writes STALL_EVENTS puts of STALL_VALUE_BYTES under `prefix` while 5 watchers follow it; returns the ms until they all had everything. */
  async function bigWrites(prefix: string): Promise<{ ms: number; streams: Stream[] }> {
    const streams = [new Stream(transport()), new Stream(transport())];
    const ids: [Stream, bigint][] = [];
    for (let i = 0; i < 5; i++) {
      const s = streams[i % 2];
      ids.push([s, await s.watch({ key: prefix, rangeEnd: prefix.slice(0, -1) + "0" })]);
    }
    const value = new Uint8Array(STALL_VALUE_BYTES).fill(120);
    const started = performance.now();
    const revs: bigint[] = new Array(STALL_EVENTS);
    await pool(STALL_EVENTS, WRITERS, async (i) => {
      revs[i] = (await kv.put({ key: enc(`${prefix}${i % 100}`), value })).header!.revision;
    });
    const total = () => ids.reduce((n, [s, id]) => n + s.byId.get(id)!.length, 0);
    await until(total, STALL_EVENTS * ids.length, DELIVERY_TIMEOUT_MS, `${prefix} delivered`);
    const ms = performance.now() - started;
    const sorted = revs.slice().sort((a, b) => (a < b ? -1 : 1));
    for (const [s, id] of ids) expect(s.byId.get(id)!.map((e) => e.rev)).toEqual(sorted);
    return { ms, streams };
  }

  test("stalled watchers: bounded server memory, the others unaffected", async () => {
    // The server's RSS is sampled through each round; its peak is what a buffer for the
    // stalled streams would raise (a later sample can be lower: the GC returns memory late).
    const peakDuring = async <T>(fn: () => Promise<T>): Promise<[T, number]> => {
      let peak = rssBytes(m.pid);
      const timer = setInterval(() => (peak = Math.max(peak, rssBytes(m.pid))), 50);
      try {
        const r = await fn();
        await Bun.sleep(300); // anything buffered for a stalled stream would still be held
        return [r, Math.max(peak, rssBytes(m.pid))];
      } finally {
        clearInterval(timer);
      }
    };
    // Without a stalled reader, twice: for comparison, and so the server's RSS reaches the
    // plateau this load takes it to (the GC heap and the allocator keep what they grew to).
    const [base, peakBase] = await peakDuring(() => bigWrites("big1/"));
    await Promise.all(base.streams.map((s) => s.close()));
    const [warm, peakWarm] = await peakDuring(() => bigWrites("big2/"));
    await Promise.all(warm.streams.map((s) => s.close()));

    const stalled: Socket[] = [];
    let stall: Awaited<ReturnType<typeof bigWrites>>;
    let peakStall: number;
    try {
      for (let i = 0; i < STALLED_STREAMS; i++) stalled.push(await stalledWatch(m.clientUrl, "big3/"));
      [stall, peakStall] = await peakDuring(() => bigWrites("big3/"));
    } finally {
      for (const s of stalled) s.destroy();
    }
    await Promise.all(stall.streams.map((s) => s.close()));
    await expectWatchers(m, 0); // the stalled streams' watchers too, once their sockets are gone
    const peakBefore = Math.max(peakBase, peakWarm);
    const growth = peakStall - peakBefore;
    const unread = STALLED_STREAMS * STALL_PAYLOAD;
    const mib = (n: number) => (n / 2 ** 20).toFixed(0);
    console.log(
      `stall: others done in ${stall.ms.toFixed(0)} ms (without stalled watchers: ${base.ms.toFixed(0)} and ${warm.ms.toFixed(0)} ms); ` +
        `server peak RSS ${mib(peakBase)}, ${mib(peakWarm)} MiB without, ${mib(peakStall)} MiB with ${STALLED_STREAMS} stalled streams ` +
        `(${growth >= 0 ? "+" : ""}${mib(growth)} MiB) that left ${mib(unread)} MiB of events unread`,
    );
    // Buffering for the stalled streams would cost at least what they left unread (~156 MiB:
    // each stream would hold its own encoded copy); bounded, the server holds per stalled
    // stream 128 queued messages (events shared with the other watchers) and about 128 KiB of
    // flow-control buffers. The same load without stalled readers moves the peak by tens of
    // MiB between rounds (GC timing), so the bound is half of the unread bytes.
    expect(growth).toBeLessThan(unread / 2);
    // The others are not held back by them (loosely: 2-core machine, shared with other work).
    expect(stall.ms).toBeLessThan(Math.max(base.ms, warm.ms) * 3 + 3_000);
  }, 60_000);
});
