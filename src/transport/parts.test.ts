// Unit tests of the transport's small parts: framing, the snapshot body, the queue, backoff, admission.
import { describe, expect, test } from "bun:test";
import { mulberry32 } from "../testing/prng.js";
import { MessageType, msg } from "../raft/types.js";
import { Backoff } from "./backoff.js";
import { UrlPicker } from "./env.js";
import { FrameDecoder, frameAll, FramingError } from "./framing.js";
import { admit, requestHeaders, STREAM_PATH } from "./protocol.js";
import { SendQueue } from "./queue.js";
import { endMark, lengthPrefix, SnapshotBodyParser } from "./snapshot-body.js";

function splitRandomly(buf: Uint8Array, rand: () => number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let at = 0; at < buf.length;) {
    const n = 1 + Math.floor(rand() * 40);
    out.push(buf.subarray(at, Math.min(buf.length, at + n)));
    at += n;
  }
  return out;
}

describe("framing", () => {
  test("frames survive any split", () => {
    const rand = mulberry32(42);
    const payloads = [...Array(50).keys()].map((i) => crypto.getRandomValues(new Uint8Array(i * 3)));
    const wire = frameAll(payloads);
    for (let round = 0; round < 20; round++) {
      const d = new FrameDecoder(1000);
      const got: Uint8Array[] = [];
      for (const c of splitRandomly(wire, rand)) d.push(c, (p) => got.push(p));
      expect(got).toEqual(payloads);
      expect(d.buffered).toBe(0);
    }
  });

  test("an oversized length is refused before its bytes arrive", () => {
    const d = new FrameDecoder(10);
    expect(() => d.push(new Uint8Array([0, 0, 0, 11]), () => {})).toThrow(FramingError);
  });
});

describe("snapshot body", () => {
  const header = new TextEncoder().encode("header");
  const data = crypto.getRandomValues(new Uint8Array(1000));
  const body = (total = data.length) =>
    Buffer.concat([frameAll([header]), lengthPrefix(600), data.subarray(0, 600), lengthPrefix(400), data.subarray(600), endMark(total)]);

  test("parses across any split and needs the end mark", () => {
    const rand = mulberry32(7);
    for (let round = 0; round < 20; round++) {
      const p = new SnapshotBodyParser(100, 10_000);
      let h: Uint8Array | null = null;
      const got: Uint8Array[] = [];
      const wire = body();
      const parts = splitRandomly(wire, rand);
      for (const c of parts.slice(0, -1))
        p.push(
          c,
          (x) => (h = x),
          (x) => got.push(x),
        );
      expect(p.complete).toBe(false);
      p.push(
        parts[parts.length - 1],
        (x) => (h = x),
        (x) => got.push(x),
      );
      expect(p.complete).toBe(true);
      expect(h!).toEqual(header);
      expect(Buffer.concat(got)).toEqual(Buffer.from(data));
    }
  });

  test("a wrong total, too much data or trailing bytes are errors", () => {
    const noop = () => {};
    expect(() => new SnapshotBodyParser(100, 10_000).push(body(999), noop, noop)).toThrow(/end mark/);
    expect(() => new SnapshotBodyParser(100, 700).push(body(), noop, noop)).toThrow(/exceeds/);
    expect(() => new SnapshotBodyParser(100, 10_000).push(Buffer.concat([body(), new Uint8Array(1)]), noop, noop)).toThrow(/after the end/);
    expect(() => new SnapshotBodyParser(3, 10_000).push(body(), noop, noop)).toThrow(/exceeds/);
  });
});

describe("queue", () => {
  const m = msg({ type: MessageType.App });
  test("bounded by count and by bytes, FIFO", () => {
    const q = new SendQueue(3, 100);
    expect(q.push({ m, bytes: new Uint8Array(10) })).toBe(true);
    expect(q.push({ m, bytes: new Uint8Array(20) })).toBe(true);
    expect(q.push({ m, bytes: new Uint8Array(80) })).toBe(false); // bytes
    expect(q.push({ m, bytes: new Uint8Array(30) })).toBe(true);
    expect(q.push({ m, bytes: new Uint8Array(1) })).toBe(false); // count
    expect(q.bytes).toBe(60);
    expect(q.take(25).map((x) => x.bytes.length)).toEqual([10]);
    expect(q.take(1).map((x) => x.bytes.length)).toEqual([20]); // at least one
    expect(q.clear().map((x) => x.bytes.length)).toEqual([30]);
    expect(q.length).toBe(0);
    expect(q.bytes).toBe(0);
  });
});

describe("backoff", () => {
  test("doubles from min to max with jitter in [d/2, d)", () => {
    const b = new Backoff(100, 2000, () => 0.5);
    const ds = [...Array(8)].map(() => b.next());
    expect(ds).toEqual([75, 150, 300, 600, 1200, 1500, 1500, 1500]);
    b.reset();
    expect(new Backoff(100, 2000, () => 0).next()).toBe(50);
    b.exhaust();
    expect(b.next()).toBe(1500);
  });
});

describe("url picker", () => {
  test("moves on when the current URL fails; keeps its place across updates", () => {
    const p = new UrlPicker(["a", "b", "c"]);
    expect(p.current()).toBe("a");
    p.failed("a");
    expect(p.current()).toBe("b");
    p.failed("a"); // stale report
    expect(p.current()).toBe("b");
    p.update(["c", "b"]);
    expect(p.current()).toBe("b");
    p.update(["x"]);
    expect(p.current()).toBe("x");
  });
});

describe("admission", () => {
  const local = { id: 2n, clusterId: 0xc1n, isRemoved: (id: bigint) => id === 5n };
  test("checks protocol, cluster, sender and target", () => {
    expect(admit(requestHeaders(STREAM_PATH, 0xc1n, 1n, 2n), local)).toEqual({ ok: true, from: 1n });
    const wrongCluster = admit(requestHeaders(STREAM_PATH, 0xc2n, 1n, 2n), local);
    expect(wrongCluster.ok === false && wrongCluster.status).toBe(412);
    const removed = admit(requestHeaders(STREAM_PATH, 0xc1n, 5n, 2n), local);
    expect(removed.ok === false && removed.status).toBe(410);
    const wrongTarget = admit(requestHeaders(STREAM_PATH, 0xc1n, 1n, 3n), local);
    expect(wrongTarget.ok === false && [wrongTarget.status, wrongTarget.reason]).toEqual([412, "to field mismatch"]);
    const noFrom = admit({ ...requestHeaders(STREAM_PATH, 0xc1n, 1n, 2n), "x-tsetcd-from": "zz" }, local);
    expect(noFrom.ok === false && noFrom.status).toBe(400);
    const get = admit({ ...requestHeaders(STREAM_PATH, 0xc1n, 1n, 2n), ":method": "GET" }, local);
    expect(get.ok === false && get.status).toBe(405);
  });
});

describe("framing, large frames", () => {
  test("a large frame in many small chunks is assembled once, correctly", () => {
    const big = crypto.getRandomValues(new Uint8Array(1 << 20));
    const small = new Uint8Array([1, 2, 3]);
    const wire = frameAll([big, small, big]);
    const d = new FrameDecoder(2 << 20);
    const got: Uint8Array[] = [];
    const t0 = performance.now();
    for (let at = 0; at < wire.length; at += 1000) d.push(wire.subarray(at, at + 1000), (p) => got.push(p));
    expect(performance.now() - t0).toBeLessThan(500);
    expect(got.length).toBe(3);
    expect(got[0]).toEqual(big);
    expect(got[1]).toEqual(small);
    expect(got[2]).toEqual(big);
  });
});
