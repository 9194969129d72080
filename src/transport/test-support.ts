// Test-only helpers for the transport: a JSON codec (bigints and bytes
// tagged), a binary codec for the benchmark, a logger that records, and
// transports on free loopback ports. Tests do not depend on codec.ts.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "../testing/ports.js";
import { MessageType, type Entry, type Message } from "../raft/types.js";
import { Transport } from "./transport.js";
import type { Codec, TransportLogger, TransportOptions } from "./types.js";

export const jsonCodec: Codec = {
  encode(m: Message): Uint8Array {
    return new TextEncoder().encode(
      JSON.stringify(m, (_k, v) => {
        if (typeof v === "bigint") return { $big: v.toString() };
        if (v instanceof Uint8Array) return { $bytes: Buffer.from(v).toString("base64") };
        return v;
      }),
    );
  },
  decode(b: Uint8Array): Message {
    return JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(b), (_k, v) => {
      if (v !== null && typeof v === "object") {
        if (typeof v.$big === "string") return BigInt(v.$big);
        if (typeof v.$bytes === "string") return new Uint8Array(Buffer.from(v.$bytes, "base64"));
      }
      return v;
    }) as Message;
  },
};

const TYPES = Object.values(MessageType);

/** A compact binary codec (benchmark): fixed header, then entries and context. */
export const binaryCodec: Codec = {
  encode(m: Message): Uint8Array {
    let size = 1 + 8 + 8 + 8 * 5 + 1 + 4 + m.context.length + 4;
    for (const e of m.entries) size += 8 + 8 + 1 + 4 + e.data.length;
    const out = new Uint8Array(size);
    const v = new DataView(out.buffer);
    let at = 0;
    out[at++] = TYPES.indexOf(m.type);
    v.setBigUint64(at, m.from);
    v.setBigUint64(at + 8, m.to);
    at += 16;
    for (const n of [m.term, m.logTerm, m.index, m.commit, m.rejectHint]) {
      v.setFloat64(at, n);
      at += 8;
    }
    out[at++] = m.reject ? 1 : 0;
    v.setUint32(at, m.context.length);
    out.set(m.context, at + 4);
    at += 4 + m.context.length;
    v.setUint32(at, m.entries.length);
    at += 4;
    for (const e of m.entries) {
      v.setFloat64(at, e.term);
      v.setFloat64(at + 8, e.index);
      out[at + 16] = e.type;
      v.setUint32(at + 17, e.data.length);
      out.set(e.data, at + 21);
      at += 21 + e.data.length;
    }
    return out;
  },
  decode(b: Uint8Array): Message {
    const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
    let at = 0;
    const type = TYPES[b[at++]];
    if (type === undefined) throw new Error("bad message type");
    const from = v.getBigUint64(at);
    const to = v.getBigUint64(at + 8);
    at += 16;
    const nums: number[] = [];
    for (let i = 0; i < 5; i++, at += 8) nums.push(v.getFloat64(at));
    const reject = b[at++] === 1;
    const clen = v.getUint32(at);
    const context = b.subarray(at + 4, at + 4 + clen);
    at += 4 + clen;
    const n = v.getUint32(at);
    at += 4;
    const entries: Entry[] = [];
    for (let i = 0; i < n; i++) {
      const len = v.getUint32(at + 17);
      entries.push({ term: v.getFloat64(at), index: v.getFloat64(at + 8), type: b[at + 16], data: b.subarray(at + 21, at + 21 + len) });
      at += 21 + len;
    }
    if (at !== b.length) throw new Error("trailing bytes");
    return { type, from, to, term: nums[0], logTerm: nums[1], index: nums[2], commit: nums[3], rejectHint: nums[4], reject, context, entries };
  },
};

export interface LogLine {
  level: string;
  msg: string;
  fields?: Record<string, unknown>;
}

/** A logger that keeps every line (and prints nothing unless TRANSPORT_TEST_LOG is set). */
export function recordingLogger(): TransportLogger & { lines: LogLine[]; has(msg: string | RegExp): LogLine | undefined } {
  const lines: LogLine[] = [];
  const rec = (level: string) => (msg: string, fields?: Record<string, unknown>) => {
    lines.push({ level, msg, fields });
    if (process.env.TRANSPORT_TEST_LOG)
      console.error(
        level,
        msg,
        JSON.stringify(fields ?? {}, (_k, v) => (typeof v === "bigint" ? v.toString(16) : v)),
      );
  };
  return {
    lines,
    debug: rec("debug"),
    info: rec("info"),
    warn: rec("warn"),
    error: rec("error"),
    has: (msg) => lines.find((l) => (typeof msg === "string" ? l.msg.includes(msg) : msg.test(l.msg))),
  };
}

export function tempDir(prefix = "tsetcd-transport-"): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** Polls `cond` until true; throws after `timeoutMs`. */
export async function waitFor(cond: () => boolean, timeoutMs: number, what = "condition"): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!cond()) {
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await Bun.sleep(5);
  }
}

export interface TestNode {
  t: Transport;
  id: bigint;
  port: number;
  url: string;
  received: Message[];
  unreachable: bigint[];
  log: ReturnType<typeof recordingLogger>;
  opts: TransportOptions;
}

/** A started transport on a free 127.0.0.1 port that records what it receives. */
export async function startNode(id: bigint, extra: Partial<TransportOptions> = {}, port?: number, scheme: "http" | "https" = "http"): Promise<TestNode> {
  const p = port ?? (await freePort());
  const received: Message[] = [];
  const unreachable: bigint[] = [];
  const log = recordingLogger();
  const url = `${scheme}://127.0.0.1:${p}`;
  const opts: TransportOptions = {
    id,
    clusterId: 0xc1n,
    codec: jsonCodec,
    listenUrls: [url],
    snapshotDir: tempDir(),
    logger: log,
    onMessage: (m) => received.push(m),
    onUnreachable: (peer) => unreachable.push(peer),
    random: () => 0.5,
    limits: { backoffMinMs: 20, backoffMaxMs: 100, dialTimeoutMs: 1000 },
    ...extra,
  };
  const t = new Transport(opts);
  await t.start();
  return { t, id, port: p, url, received, unreachable, log, opts };
}

/** A self-signed certificate for 127.0.0.1/localhost usable as server, client and CA. */
export { testCert as selfSignedCert } from "../tls/test-support.js";
