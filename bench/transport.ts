#!/usr/bin/env bun
// Peer transport throughput: two transports in one process (so both ends share one CPU
// budget), on 127.0.0.1, with a compact binary test codec.
//
//   bun bench/transport.ts [--seconds=3] [--tls]
//
// Rows: App messages with 16 x 1 KiB entries; heartbeat-sized messages; a heartbeat round trip
// (one in flight, A -> B -> A); a 256 MiB snapshot. The sender keeps a bounded number of
// messages in flight (sent - received), as Raft's flow control would, so nothing is dropped.
import { MessageType, msg, type Message } from "../src/raft/types.ts";
import { Transport } from "../src/transport/transport.ts";
import { binaryCodec, recordingLogger, selfSignedCert, tempDir } from "../src/transport/test-support.ts";
import type { PeerTlsOptions } from "../src/transport/types.ts";
import { freePorts } from "../test/harness/ports.ts";

const args = new Map(process.argv.slice(2).map((a) => a.replace(/^--/, "").split("=") as [string, string]));
const SECONDS = Number(args.get("seconds") ?? 3);
const useTls = args.has("tls");

let onA: (m: Message) => void = () => {};
let onB: (m: Message) => void = () => {};
const snapStatus: Array<(ok: boolean) => void> = [];
let snapSize = 0;

const [pa, pb] = await freePorts(2);
let tls: PeerTlsOptions | undefined;
if (useTls) {
  const c = await selfSignedCert();
  tls = { server: { cert: c.cert, key: c.key, requestCert: false, rejectUnauthorized: false }, client: { ca: c.cert } };
}
const scheme = useTls ? "https" : "http";
const common = { clusterId: 1n, codec: binaryCodec, logger: recordingLogger(), tls };
const a = new Transport({
  ...common,
  id: 1n,
  listenUrls: [`${scheme}://127.0.0.1:${pa}`],
  snapshotDir: tempDir(),
  onMessage: (m) => onA(m),
  onSnapshotStatus: (_p, ok) => snapStatus.shift()?.(ok),
  openSnapshotData: async function* () {
    const chunk = new Uint8Array(1024 * 1024).fill(7);
    for (let sent = 0; sent < snapSize; sent += chunk.length) yield chunk;
  },
});
const b = new Transport({ ...common, id: 2n, listenUrls: [`${scheme}://127.0.0.1:${pb}`], snapshotDir: tempDir(), onMessage: (m) => onB(m) });
await a.start();
await b.start();
a.addPeer(2n, [`${scheme}://127.0.0.1:${pb}`]);
b.addPeer(1n, [`${scheme}://127.0.0.1:${pa}`]);

const ENTRY_DATA = [...Array(16).keys()].map((k) => new Uint8Array(1024).fill(k));
function appMessage(i: number): Message {
  const entries = ENTRY_DATA.map((data, k) => ({ term: 1, index: i * 16 + k, type: 0, data }));
  return msg({ type: MessageType.App, from: 1n, to: 2n, term: 1, index: i * 16, logTerm: 1, commit: i * 16, entries });
}
const heartbeat = (from: bigint, to: bigint, i: number) => msg({ type: MessageType.Heartbeat, from, to, term: 1, commit: i });

/** Streams `make(i)` to B for SECONDS with at most `window` in flight; returns msgs/s and MB/s. */
async function stream(name: string, make: (i: number) => Message, window: number, batch: number): Promise<void> {
  const bytesPer = binaryCodec.encode(make(0)).length;
  let received = 0;
  let sent = 0;
  let wake: (() => void) | null = null;
  onB = () => {
    received++;
    if (wake !== null && sent - received <= window / 2) {
      const w = wake;
      wake = null;
      w();
    }
  };
  // Warm up the connection.
  a.send([make(0)]);
  sent = 1;
  while (received < 1) await Bun.sleep(1);
  const start = performance.now();
  const cpu0 = process.cpuUsage();
  const end = start + SECONDS * 1000;
  const base = received;
  const sentBase = sent;
  while (performance.now() < end) {
    if (sent - received >= window) {
      await new Promise<void>((r) => (wake = r));
      continue;
    }
    const n = Math.min(batch, window - (sent - received));
    const msgs: Message[] = [];
    for (let i = 0; i < n; i++) msgs.push(make(sent + i));
    a.send(msgs);
    sent += n;
    await new Promise((r) => setImmediate(r));
  }
  while (received < sent) await Bun.sleep(1);
  const secs = (performance.now() - start) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const count = received - base;
  if (sent - sentBase !== count) throw new Error("lost messages");
  console.log(
    `${name.padEnd(34)} ${(count / secs).toFixed(0).padStart(8)} msg/s ${((count * bytesPer) / secs / 1e6).toFixed(1).padStart(8)} MB/s` +
      `   ${bytesPer} B/msg, CPU ${((cpu.user + cpu.system) / count).toFixed(2)} us/msg`,
  );
}

async function roundTrip(): Promise<void> {
  let done = 0;
  const N = 5000;
  let resolve!: () => void;
  const finished = new Promise<void>((r) => (resolve = r));
  onB = (m) => b.send([heartbeat(2n, 1n, m.commit)]);
  onA = (m) => {
    if (++done >= N) resolve();
    else a.send([heartbeat(1n, 2n, m.commit + 1)]);
  };
  a.send([heartbeat(1n, 2n, 0)]);
  while (done < 1) await Bun.sleep(1);
  const start = performance.now();
  const begin = done;
  await finished;
  const us = ((performance.now() - start) * 1000) / (N - begin);
  console.log(`${"heartbeat round trip A->B->A".padEnd(34)} ${us.toFixed(1).padStart(8)} us`);
}

async function snapshot(size: number): Promise<void> {
  snapSize = size;
  const start = performance.now();
  const ok = await new Promise<boolean>((r) => {
    snapStatus.push(r);
    a.send([
      msg({
        type: MessageType.Snap,
        from: 1n,
        to: 2n,
        term: 1,
        snapshot: { meta: { index: 1, term: 1, confState: { voters: [1n, 2n], learners: [] } }, data: new Uint8Array(0) },
      }),
    ]);
  });
  const secs = (performance.now() - start) / 1000;
  console.log(
    `${`snapshot ${size >> 20} MiB (fsync + rename)`.padEnd(34)} ${ok ? "ok" : "FAILED"} ${(size / secs / 1e6).toFixed(0).padStart(8)} MB/s   ${(secs * 1000).toFixed(0)} ms`,
  );
}

console.log(`transport, ${useTls ? "TLS" : "h2c"}, ${SECONDS} s per row, Bun ${Bun.version}`);
await stream("App, 16 x 1 KiB entries", appMessage, 512, 64);
await stream("heartbeat-sized", (i) => heartbeat(1n, 2n, i), 4096, 256);
await roundTrip();
await snapshot(256 * 1024 * 1024);
await a.stop();
await b.stop();
process.exit(0);
