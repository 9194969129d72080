// The connection at the frame level, with a raw client: what our SETTINGS
// say, pings, stream-id rules, size limits, concurrency refusal, flow control
// in both directions, CONTINUATION, handler failures, graceful close, and
// back-pressure from a peer that stops reading.
import { afterAll, expect, test } from "bun:test";
import net from "node:net";
import { ErrorCode, Flag, FrameType, PREFACE, readU32, Setting } from "./frames.js";
import { encodeHeaders, HpackDecoder, type HeaderMap } from "./hpack.js";
import { H2Connection, type H2Options, type H2Socket } from "./connection.js";
import { serveH2 } from "./server.js";
import type { H2Stream } from "./stream.js";

interface Frame {
  type: number;
  flags: number;
  id: number;
  payload: Uint8Array;
}

function frame(type: number, flags: number, id: number, payload: Uint8Array = new Uint8Array(0)): Uint8Array {
  const out = new Uint8Array(9 + payload.length);
  out[0] = payload.length >>> 16;
  out[1] = (payload.length >>> 8) & 0xff;
  out[2] = payload.length & 0xff;
  out[3] = type;
  out[4] = flags;
  new DataView(out.buffer).setUint32(5, id);
  out.set(payload, 9);
  return out;
}

const u32 = (v: number) => {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, v);
  return b;
};

function settings(pairs: [number, number][]): Uint8Array {
  const b = new Uint8Array(6 * pairs.length);
  const v = new DataView(b.buffer);
  pairs.forEach(([id, value], i) => {
    v.setUint16(6 * i, id);
    v.setUint32(6 * i + 2, value);
  });
  return frame(FrameType.SETTINGS, 0, 0, b);
}

const REQUEST = { ":method": "POST", ":scheme": "http", ":path": "/t", ":authority": "x" };
const headersFrame = (id: number, endStream: boolean, extra: Record<string, string> = {}) =>
  frame(FrameType.HEADERS, Flag.END_HEADERS | (endStream ? Flag.END_STREAM : 0), id, encodeHeaders({ ...REQUEST, ...extra }));

/** A raw HTTP/2 client: writes bytes, collects parsed frames. */
class RawClient {
  readonly frames: Frame[] = [];
  closed = false;
  private buf = new Uint8Array(0);
  private waiters: (() => void)[] = [];
  readonly decoder = new HpackDecoder();

  constructor(readonly socket: net.Socket) {
    socket.on("data", (d: Buffer) => {
      const b = new Uint8Array(this.buf.length + d.length);
      b.set(this.buf);
      b.set(d, this.buf.length);
      let off = 0;
      while (b.length - off >= 9) {
        const len = (b[off] << 16) | (b[off + 1] << 8) | b[off + 2];
        if (b.length - off - 9 < len) break;
        this.frames.push({ type: b[off + 3], flags: b[off + 4], id: readU32(b, off + 5) & 0x7fffffff, payload: b.slice(off + 9, off + 9 + len) });
        off += 9 + len;
      }
      this.buf = b.slice(off);
      this.wake();
    });
    socket.on("close", () => {
      this.closed = true;
      this.wake();
    });
    socket.on("error", () => {});
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  static async connect(port: number, handshake = true): Promise<RawClient> {
    const socket = net.connect(port, "127.0.0.1");
    await new Promise((r) => socket.once("connect", r));
    const c = new RawClient(socket);
    if (handshake) c.send(PREFACE, settings([]));
    return c;
  }

  send(...parts: Uint8Array[]): void {
    for (const p of parts) this.socket.write(p);
  }

  /** Waits for a frame matching `pred` (searching all frames seen so far). */
  async waitFor(pred: (f: Frame) => boolean, what = "frame"): Promise<Frame> {
    const deadline = Date.now() + 3000;
    for (;;) {
      const f = this.frames.find(pred);
      if (f) return f;
      if (this.closed) throw new Error(`closed while waiting for ${what}`);
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise<void>((r) => {
        this.waiters.push(r);
        setTimeout(r, 50);
      });
    }
  }

  async waitClosed(): Promise<void> {
    const deadline = Date.now() + 3000;
    while (!this.closed && Date.now() < deadline) await Bun.sleep(10);
    expect(this.closed).toBe(true);
  }

  goaway(): Promise<Frame> {
    return this.waitFor((f) => f.type === FrameType.GOAWAY, "GOAWAY");
  }

  close(): void {
    this.socket.destroy();
  }
}

const servers: net.Server[] = [];
afterAll(() => {
  for (const s of servers) s.close();
});

async function startServer(onStream: (s: H2Stream, h: HeaderMap) => void, opts: Partial<H2Options> = {}): Promise<{ port: number; conns: H2Connection[] }> {
  const conns: H2Connection[] = [];
  const server = net.createServer((socket) => conns.push(serveH2(socket, new Uint8Array(0), { maxConcurrentStreams: 100, onStream, ...opts })));
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return { port: (server.address() as net.AddressInfo).port, conns };
}

/** Replies to every request with `size` bytes, a 200 and grpc-status 0 in trailers. */
function replier(size: number) {
  return (stream: H2Stream) => {
    stream.resume();
    stream.on("end", () => {
      stream.respond({ ":status": 200, "content-type": "application/grpc" }, { waitForTrailers: true });
      stream.write(new Uint8Array(size).fill(1));
      stream.once("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0" }));
      stream.end();
    });
  };
}

const { port } = await startServer(replier(10));

test("server preface: SETTINGS with our limits, then a connection WINDOW_UPDATE", async () => {
  const c = await RawClient.connect(port);
  const s = await c.waitFor((f) => f.type === FrameType.SETTINGS && f.flags === 0);
  const values = new Map<number, number>();
  for (let i = 0; i < s.payload.length; i += 6) values.set((s.payload[i] << 8) | s.payload[i + 1], readU32(s.payload, i + 2));
  expect(values.get(Setting.MAX_CONCURRENT_STREAMS)).toBe(100);
  expect(values.get(Setting.INITIAL_WINDOW_SIZE)).toBe(4 * 1024 * 1024);
  expect(values.get(Setting.MAX_HEADER_LIST_SIZE)).toBe(64 * 1024);
  const wu = await c.waitFor((f) => f.type === FrameType.WINDOW_UPDATE && f.id === 0);
  expect(readU32(wu.payload, 0)).toBe(16 * 1024 * 1024 - 65535);
  await c.waitFor((f) => f.type === FrameType.SETTINGS && f.flags === Flag.ACK, "SETTINGS ACK");
  c.close();
});

test("a request gets HEADERS, DATA, trailers; table size update leads the first block", async () => {
  const c = await RawClient.connect(port);
  c.send(headersFrame(1, true));
  const h = await c.waitFor((f) => f.type === FrameType.HEADERS && f.id === 1);
  expect(h.payload[0]).toBe(0x20); // size update to 0, once per connection
  expect(c.decoder.decode(h.payload)).toEqual({ ":status": "200", "content-type": "application/grpc" } as any);
  const d = await c.waitFor((f) => f.type === FrameType.DATA && f.id === 1);
  expect(d.payload.length).toBe(10);
  const t = await c.waitFor((f) => f.type === FrameType.HEADERS && f.id === 1 && (f.flags & Flag.END_STREAM) !== 0);
  expect(c.decoder.decode(t.payload)).toEqual({ "grpc-status": "0" } as any);
  c.send(headersFrame(3, true));
  const h3 = await c.waitFor((f) => f.type === FrameType.HEADERS && f.id === 3);
  expect(h3.payload[0]).toBe(0x88); // no second size update
  c.close();
});

test("PING is answered with the same payload", async () => {
  const c = await RawClient.connect(port);
  c.send(frame(FrameType.PING, 0, 0, Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8])));
  const p = await c.waitFor((f) => f.type === FrameType.PING);
  expect(p.flags).toBe(Flag.ACK);
  expect(Array.from(p.payload)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
  c.close();
});

test("connection errors end with GOAWAY and the right code", async () => {
  const cases: [string, (c: RawClient) => void, ErrorCode][] = [
    ["bad preface", (c) => c.send(new TextEncoder().encode("GET / HTTP/1.1\r\n\r\n")), ErrorCode.PROTOCOL_ERROR],
    ["first frame not SETTINGS", (c) => c.send(PREFACE, frame(FrameType.PING, 0, 0, new Uint8Array(8))), ErrorCode.PROTOCOL_ERROR],
    ["even stream id", (c) => c.send(PREFACE, settings([]), headersFrame(2, true)), ErrorCode.PROTOCOL_ERROR],
    ["decreasing stream id", (c) => c.send(PREFACE, settings([]), headersFrame(5, true), headersFrame(3, true)), ErrorCode.PROTOCOL_ERROR],
    ["frame above MAX_FRAME_SIZE", (c) => c.send(PREFACE, settings([]), frame(FrameType.DATA, 0, 1, new Uint8Array(16385))), ErrorCode.FRAME_SIZE_ERROR],
    ["WINDOW_UPDATE of 0 on the connection", (c) => c.send(PREFACE, settings([]), frame(FrameType.WINDOW_UPDATE, 0, 0, u32(0))), ErrorCode.PROTOCOL_ERROR],
    ["bad SETTINGS length", (c) => c.send(PREFACE, frame(FrameType.SETTINGS, 0, 0, new Uint8Array(5))), ErrorCode.FRAME_SIZE_ERROR],
    ["INITIAL_WINDOW_SIZE too big", (c) => c.send(PREFACE, settings([[Setting.INITIAL_WINDOW_SIZE, 2 ** 31]])), ErrorCode.FLOW_CONTROL_ERROR],
    [
      "PUSH_PROMISE from a client",
      (c) => c.send(PREFACE, settings([]), frame(FrameType.PUSH_PROMISE, Flag.END_HEADERS, 1, new Uint8Array(4))),
      ErrorCode.PROTOCOL_ERROR,
    ],
    ["DATA on an idle stream", (c) => c.send(PREFACE, settings([]), frame(FrameType.DATA, 0, 7, new Uint8Array(3))), ErrorCode.PROTOCOL_ERROR],
    [
      "bad HPACK",
      (c) => c.send(PREFACE, settings([]), frame(FrameType.HEADERS, Flag.END_HEADERS, 1, Uint8Array.from([0xff, 0xff, 0xff, 0xff]))),
      ErrorCode.COMPRESSION_ERROR,
    ],
    [
      "frame inside a header block",
      (c) => c.send(PREFACE, settings([]), frame(FrameType.HEADERS, 0, 1, encodeHeaders(REQUEST)), frame(FrameType.PING, 0, 0, new Uint8Array(8))),
      ErrorCode.PROTOCOL_ERROR,
    ],
    [
      "padding longer than the frame",
      (c) => c.send(PREFACE, settings([]), headersFrame(1, false), frame(FrameType.DATA, Flag.PADDED, 1, Uint8Array.from([9, 1, 2]))),
      ErrorCode.PROTOCOL_ERROR,
    ],
  ];
  for (const [name, act, code] of cases) {
    const c = await RawClient.connect(port, false);
    act(c);
    const g = await c.goaway().catch((e) => {
      throw new Error(`${name}: ${e.message}`);
    });
    expect([name, readU32(g.payload, 4)]).toEqual([name, code]);
    await c.waitClosed();
  }
});

test("stream errors reset only the stream: DATA beyond the stream window, self-dependency, malformed requests", async () => {
  const { port: p } = await startServer(replier(1), { initialWindowSize: 100 });
  const c = await RawClient.connect(p);
  c.send(headersFrame(1, false), frame(FrameType.DATA, 0, 1, new Uint8Array(101)));
  const rst = await c.waitFor((f) => f.type === FrameType.RST_STREAM && f.id === 1);
  expect(readU32(rst.payload, 0)).toBe(ErrorCode.FLOW_CONTROL_ERROR);
  const prio = new Uint8Array([0, 0, 0, 3, 16, ...encodeHeaders(REQUEST)]);
  c.send(frame(FrameType.HEADERS, Flag.END_HEADERS | Flag.END_STREAM | Flag.PRIORITY, 3, prio));
  expect(readU32((await c.waitFor((f) => f.type === FrameType.RST_STREAM && f.id === 3)).payload, 0)).toBe(ErrorCode.PROTOCOL_ERROR);
  c.send(frame(FrameType.HEADERS, Flag.END_HEADERS | Flag.END_STREAM, 5, encodeHeaders({ ":method": "GET", ":path": "/" }))); // no :scheme
  expect(readU32((await c.waitFor((f) => f.type === FrameType.RST_STREAM && f.id === 5)).payload, 0)).toBe(ErrorCode.PROTOCOL_ERROR);
  c.send(headersFrame(7, true, { connection: "close" }));
  expect(readU32((await c.waitFor((f) => f.type === FrameType.RST_STREAM && f.id === 7)).payload, 0)).toBe(ErrorCode.PROTOCOL_ERROR);
  // The connection still serves requests.
  c.send(headersFrame(9, true));
  await c.waitFor((f) => f.type === FrameType.HEADERS && f.id === 9 && (f.flags & Flag.END_STREAM) !== 0);
  expect(c.frames.some((f) => f.type === FrameType.GOAWAY)).toBe(false);
  c.close();
});

test("streams above MAX_CONCURRENT_STREAMS are refused", async () => {
  const { port: p } = await startServer(() => {}, { maxConcurrentStreams: 2 });
  const c = await RawClient.connect(p);
  c.send(headersFrame(1, false), headersFrame(3, false), headersFrame(5, false));
  const rst = await c.waitFor((f) => f.type === FrameType.RST_STREAM);
  expect(rst.id).toBe(5);
  expect(readU32(rst.payload, 0)).toBe(ErrorCode.REFUSED_STREAM);
  c.close();
});

test("CONTINUATION frames join one header block", async () => {
  const c = await RawClient.connect(port);
  const block = encodeHeaders({ ...REQUEST, "x-pad": "p".repeat(100) });
  c.send(
    frame(FrameType.HEADERS, Flag.END_STREAM, 1, block.subarray(0, 10)),
    frame(FrameType.CONTINUATION, 0, 1, block.subarray(10, 50)),
    frame(FrameType.CONTINUATION, Flag.END_HEADERS, 1, block.subarray(50)),
  );
  await c.waitFor((f) => f.type === FrameType.HEADERS && f.id === 1 && (f.flags & Flag.END_STREAM) !== 0);
  c.close();
});

test("sending respects the peer's windows and resumes on WINDOW_UPDATE", async () => {
  const { port: p } = await startServer(replier(100_000));
  const raw = await RawClient.connect(p, false);
  // A tiny stream window and the default 65,535-byte connection window.
  raw.send(PREFACE, settings([[Setting.INITIAL_WINDOW_SIZE, 1000]]), headersFrame(1, true));
  await raw.waitFor((f) => f.type === FrameType.DATA && f.id === 1);
  await Bun.sleep(100);
  const sent = () => raw.frames.filter((f) => f.type === FrameType.DATA && f.id === 1).reduce((n, f) => n + f.payload.length, 0);
  expect(sent()).toBe(1000);
  raw.send(frame(FrameType.WINDOW_UPDATE, 0, 1, u32(200_000)));
  await Bun.sleep(100);
  expect(sent()).toBe(65_535); // now the connection window is the limit
  raw.send(frame(FrameType.WINDOW_UPDATE, 0, 0, u32(100_000)));
  await raw.waitFor((f) => f.type === FrameType.HEADERS && f.id === 1 && (f.flags & Flag.END_STREAM) !== 0, "trailers");
  expect(sent()).toBe(100_000);
  // Every DATA frame within the peer's default MAX_FRAME_SIZE.
  expect(Math.max(...raw.frames.filter((f) => f.type === FrameType.DATA).map((f) => f.payload.length))).toBeLessThanOrEqual(16384);
  raw.close();
});

test("a SETTINGS change of INITIAL_WINDOW_SIZE applies to open streams", async () => {
  const { port: p } = await startServer(replier(5000));
  const raw = await RawClient.connect(p, false);
  raw.send(PREFACE, settings([[Setting.INITIAL_WINDOW_SIZE, 0]]), headersFrame(1, true));
  await raw.waitFor((f) => f.type === FrameType.HEADERS && f.id === 1);
  await Bun.sleep(50);
  expect(raw.frames.some((f) => f.type === FrameType.DATA)).toBe(false);
  raw.send(settings([[Setting.INITIAL_WINDOW_SIZE, 10_000]]));
  await raw.waitFor((f) => f.type === FrameType.HEADERS && f.id === 1 && (f.flags & Flag.END_STREAM) !== 0, "trailers");
  raw.close();
});

test("receiving: WINDOW_UPDATEs keep a large upload flowing", async () => {
  let received = 0;
  const { port: p } = await startServer(
    (stream) => {
      stream.on("data", (d: Uint8Array) => (received += d.length));
      stream.on("end", () => {
        stream.respond({ ":status": 200 });
        stream.end();
      });
    },
    { initialWindowSize: 65_535, connectionWindowSize: 65_535 },
  );
  const c = await RawClient.connect(p);
  c.send(headersFrame(1, false));
  // Send 1 MiB, only as far as the server's windows allow.
  let streamWin = 65_535;
  let connWin = 65_535;
  let sent = 0;
  const total = 1024 * 1024;
  while (sent < total) {
    const n = Math.min(16384, streamWin, connWin, total - sent);
    if (n <= 0) {
      const before = c.frames.length;
      await c.waitFor((f) => c.frames.indexOf(f) >= before && f.type === FrameType.WINDOW_UPDATE, "WINDOW_UPDATE");
      for (const f of c.frames.splice(before)) {
        if (f.type !== FrameType.WINDOW_UPDATE) continue;
        if (f.id === 0) connWin += readU32(f.payload, 0);
        else if (f.id === 1) streamWin += readU32(f.payload, 0);
      }
      continue;
    }
    c.send(frame(FrameType.DATA, sent + n === total ? Flag.END_STREAM : 0, 1, new Uint8Array(n)));
    sent += n;
    streamWin -= n;
    connWin -= n;
  }
  await c.waitFor((f) => f.type === FrameType.HEADERS && f.id === 1);
  expect(received).toBe(total);
  c.close();
});

test("a handler that throws resets its stream; the connection lives on", async () => {
  const errors: unknown[] = [];
  const { port: p } = await startServer(
    (stream, h) => {
      if (h[":path"] === "/boom") throw new Error("boom");
      replier(1)(stream);
    },
    { onError: (e) => errors.push(e) },
  );
  const c = await RawClient.connect(p);
  c.send(headersFrame(1, true, { ":path": "/boom" }));
  const rst = await c.waitFor((f) => f.type === FrameType.RST_STREAM && f.id === 1);
  expect(readU32(rst.payload, 0)).toBe(ErrorCode.INTERNAL_ERROR);
  expect(String(errors[0])).toContain("boom");
  c.send(headersFrame(3, true));
  await c.waitFor((f) => f.type === FrameType.HEADERS && f.id === 3 && (f.flags & Flag.END_STREAM) !== 0);
  c.close();
});

test("RST_STREAM from the peer closes the stream with its code", async () => {
  let closed: H2Stream | undefined;
  const { port: p } = await startServer((stream) => stream.on("close", () => (closed = stream)));
  const c = await RawClient.connect(p);
  c.send(headersFrame(1, false), frame(FrameType.RST_STREAM, 0, 1, u32(ErrorCode.CANCEL)));
  for (let i = 0; i < 100 && !closed; i++) await Bun.sleep(5);
  expect(closed?.rstCode).toBe(ErrorCode.CANCEL);
  expect(closed?.closed).toBe(true);
  c.close();
});

test("rapid reset: a flood of opened-and-cancelled streams ends the connection", async () => {
  let opened = 0;
  const { port: p } = await startServer(() => opened++, { maxConcurrentStreams: 10 });
  const c = await RawClient.connect(p);
  const burst: Uint8Array[] = [];
  for (let id = 1; id < 2 * 500; id += 2) burst.push(headersFrame(id, false), frame(FrameType.RST_STREAM, 0, id, u32(ErrorCode.CANCEL)));
  c.send(...burst);
  const g = await c.goaway();
  expect(readU32(g.payload, 4)).toBe(ErrorCode.ENHANCE_YOUR_CALM);
  expect(opened).toBeLessThanOrEqual(101);
  await c.waitClosed();
});

test("graceful close: GOAWAY first, the socket ends when the last stream finishes", async () => {
  let held: H2Stream | undefined;
  const { port: p, conns } = await startServer((stream) => (held = stream));
  const c = await RawClient.connect(p);
  c.send(headersFrame(1, true));
  for (let i = 0; i < 100 && !held; i++) await Bun.sleep(5);
  const done = conns[0].close();
  const g = await c.goaway();
  expect(readU32(g.payload, 0)).toBe(1); // last stream id
  expect(readU32(g.payload, 4)).toBe(ErrorCode.NO_ERROR);
  c.send(headersFrame(3, true)); // after GOAWAY: refused
  expect(readU32((await c.waitFor((f) => f.type === FrameType.RST_STREAM && f.id === 3)).payload, 0)).toBe(ErrorCode.REFUSED_STREAM);
  expect(c.closed).toBe(false);
  held!.respond({ ":status": 200 }, { endStream: true });
  await c.waitClosed();
  await done;
});

test("a peer that stops reading: output stays bounded and we stop reading it", async () => {
  // A socket whose writes do not complete until 'drain'.
  let stuck = true;
  let paused = false;
  let written = 0;
  const handlers: Record<string, (arg?: any) => void> = {};
  const socket: H2Socket = {
    destroyed: false,
    write: (b) => {
      written += b.length;
      return !stuck;
    },
    end() {},
    destroy() {},
    pause: () => (paused = true),
    resume: () => (paused = false),
    on: (name, fn) => (handlers[name] = fn),
  };
  let opened = 0;
  const conn = new H2Connection(socket, {
    maxConcurrentStreams: 100,
    maxOutputBuffer: 16 * 1024,
    onStream: (s) => {
      opened++;
      replier(4096)(s);
    },
  });
  conn.start(new Uint8Array(0));
  handlers.data(Uint8Array.from([...PREFACE, ...settings([]), ...frame(FrameType.WINDOW_UPDATE, 0, 0, u32(1 << 20))]));
  let sent = 0;
  for (let id = 1; id < 2 * 5000 && !paused; id += 2, sent++) {
    handlers.data(headersFrame(id, true));
    if (id % 64 === 1) await new Promise((r) => setImmediate(r));
  }
  expect(paused).toBe(true);
  // Streams are capped by the concurrency limit (their data waits in them),
  // the rest were refused, and the output buffer stopped us reading.
  expect(opened).toBe(100);
  expect(conn.activeStreams).toBe(100);
  expect(sent).toBeLessThan(5000);
  // Only the first write (our preface) reached the socket.
  expect(written).toBeLessThan(100);
  // 'drain' sends everything and resumes reading.
  stuck = false;
  handlers.drain();
  expect(paused).toBe(false);
  expect(written).toBeGreaterThan(100 * 4096);
  await new Promise((r) => setImmediate(r));
  expect(conn.activeStreams).toBe(0);
  conn.destroy();
});
