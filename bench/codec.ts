// Benchmark of the Raft message codec (not a test): src/transport/codec.ts
// against the protobuf-es code generated from proto/tsetcdpb/raft.proto, on
//   1. an App message carrying 64 entries of 1 KiB (log replication), and
//   2. a heartbeat (the most frequent small message).
// protobuf-es works on its own message objects (the conversion from and to the
// src/raft/types.ts shapes it would also need is not counted: its best case).
//   bun bench/codec.ts [--ms=1000]     (time per measurement)
import { fromBinary, toBinary } from "@bufbuild/protobuf";
import { MessageSchema as PbMessageSchema } from "../src/gen/tsetcdpb/raft_pb.ts";
import { EntryType, type Message, MessageType, msg } from "../src/raft/types.ts";
import { decodeMessage, encodeMessage } from "../src/transport/codec.ts";
import { toPb } from "../src/transport/codec-pb.ts";

const arg = (name: string, dflt: number) => {
  const a = process.argv.find((s) => s.startsWith(`--${name}=`));
  return a ? Number(a.slice(name.length + 3)) : dflt;
};
const MS = arg("ms", 1000);

function payload(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * 131 + seed) & 0xff;
  return b;
}

const app: Message = msg({
  type: MessageType.App,
  from: 0x8e9e05c52164694dn,
  to: 0x91bc3c398fb3c146n,
  term: 12,
  logTerm: 12,
  index: 1_000_000,
  commit: 999_990,
  entries: Array.from({ length: 64 }, (_, i) => ({
    type: EntryType.Normal,
    term: 12,
    index: 1_000_001 + i,
    data: payload(1024, i),
  })),
});
const heartbeat: Message = msg({
  type: MessageType.Heartbeat,
  from: 0x8e9e05c52164694dn,
  to: 0x91bc3c398fb3c146n,
  term: 12,
  commit: 999_990,
  context: payload(8, 1),
});

let sink = 0;

/** ns per call of f, timed over about MS milliseconds after a warm-up. */
function measure(f: () => number): number {
  for (let i = 0; i < 2000; i++) sink += f();
  let n = 64;
  for (;;) {
    const t0 = Bun.nanoseconds();
    for (let i = 0; i < n; i++) sink += f();
    const dt = Bun.nanoseconds() - t0;
    if (dt >= MS * 1e6) return dt / n;
    n = dt < 1e6 ? n * 8 : Math.ceil((n * MS * 1e6 * 1.1) / dt);
  }
}

function row(name: string, what: string, bytes: number, ns: number) {
  const mbs = (bytes / ns) * 1e3; // bytes/ns = GB/s; x1000 = MB/s
  console.log(`${name.padEnd(24)} ${what.padEnd(14)} ${ns.toFixed(0).padStart(9)} ns/op ${mbs.toFixed(0).padStart(7)} MB/s`);
}

for (const [name, m] of [
  ["App 64 x 1 KiB", app],
  ["Heartbeat", heartbeat],
] as const) {
  const ours = encodeMessage(m);
  const pb = toPb(m);
  const theirs = toBinary(PbMessageSchema, pb);
  if (!Bun.deepEquals(ours, theirs)) throw new Error("encodings differ");
  const size = ours.length;
  console.log(`\n${name}: ${size} bytes`);
  row(
    "tsetcd codec",
    "encode",
    size,
    measure(() => encodeMessage(m).length),
  );
  row(
    "tsetcd codec",
    "decode",
    size,
    measure(() => decodeMessage(ours).entries.length),
  );
  row(
    "tsetcd codec",
    "encode+decode",
    size,
    measure(() => decodeMessage(encodeMessage(m)).entries.length),
  );
  row(
    "protobuf-es",
    "encode",
    size,
    measure(() => toBinary(PbMessageSchema, pb).length),
  );
  row(
    "protobuf-es",
    "decode",
    size,
    measure(() => fromBinary(PbMessageSchema, theirs).entries.length),
  );
  row(
    "protobuf-es",
    "encode+decode",
    size,
    measure(() => fromBinary(PbMessageSchema, toBinary(PbMessageSchema, pb)).entries.length),
  );
}
if (sink === -1) console.log(sink);
