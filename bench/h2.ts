// Server CPU per gRPC call: our HTTP/2 against node:http2, both under the
// same GrpcServer with a no-op Put, driven by etcd's own benchmark tool.
//
//   bun bench/h2.ts            # runs both, one after the other
//   bun bench/h2.ts serve h2|node PORT   # (used by the above)
//
// CPU is read from /proc/PID/stat (utime + stime, fields 14 and 15) of the
// server process before and after the run, so client CPU is not counted.
import http2 from "node:http2";
import net from "node:net";
import { create } from "@bufbuild/protobuf";
import { KV, PutResponseSchema, ResponseHeaderSchema } from "../src/gen/etcdserverpb/rpc_pb.ts";
import { GrpcServer } from "../src/api/grpc/server.ts";
import { listenH2, serveH2, type H2Stream, type HeaderMap } from "../src/api/h2/server.ts";

const BENCHMARK = `${process.env.HOME}/.cache/etcd-tools/etcd-benchmark`;
const TOTAL = Number(process.env.TOTAL ?? 50_000);
const WINDOW = 8 * 1024 * 1024;

/**
 * Modes: "node" is node:http2 + GrpcServer. "h2" is ours on node:net sockets
 * (as the one-port listener hands them over), "h2-bun" ours on Bun.listen;
 * a "-raw" suffix replaces GrpcServer with a constant reply, to show the
 * HTTP/2 layer's own share.
 */
function serve(mode: string, port: number): void {
  const header = create(ResponseHeaderSchema, { revision: 1n, clusterId: 1n, memberId: 1n, raftTerm: 1n });
  const grpc = new GrpcServer([{ service: KV, impl: { put: () => create(PutResponseSchema, { header }) } }], {
    maxRecvBytes: 2 * 1024 * 1024,
    maxSendBytes: 2 ** 31 - 1,
  });
  const ready = () => console.log("ready");
  if (mode === "node") {
    const server = http2.createServer({ settings: { maxConcurrentStreams: 1000, initialWindowSize: WINDOW } });
    server.on("session", (session) => {
      try {
        session.setLocalWindowSize?.(WINDOW);
      } catch {
        session.on("connect", () => session.setLocalWindowSize?.(WINDOW));
      }
    });
    server.on("stream", (stream, headers) => grpc.handle(stream as http2.ServerHttp2Stream, headers));
    server.listen(port, "127.0.0.1", ready);
    return;
  }
  const onStream = mode.endsWith("-raw") ? rawReply : (s: H2Stream, h: HeaderMap) => grpc.handle(s as any, h as any);
  const opts = { maxConcurrentStreams: 1000, onStream };
  if (mode.startsWith("h2-bun")) {
    listenH2("127.0.0.1", port, opts);
    ready();
  } else {
    net.createServer((socket) => serveH2(socket, new Uint8Array(0), opts)).listen(port, "127.0.0.1", ready);
  }
}

const RAW_REPLY = Buffer.from([0, 0, 0, 0, 0]);
const RAW_HEADERS = { ":status": 200, "content-type": "application/grpc" };

/** The HTTP/2 layer alone: a constant reply (an empty message), no gRPC layer, no protobuf. */
function rawReply(stream: H2Stream): void {
  stream.on("data", () => {});
  stream.on("end", () => {
    stream.respond(RAW_HEADERS, { waitForTrailers: true });
    stream.write(RAW_REPLY);
    stream.once("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0" }));
    stream.end();
  });
}

const CLK_TCK = 100; // getconf CLK_TCK on Linux

async function cpuTicks(pid: number): Promise<number> {
  const stat = await Bun.file(`/proc/${pid}/stat`).text();
  // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
  const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return Number(rest[11]) + Number(rest[12]);
}

async function measure(mode: string, port: number): Promise<{ usPerCall: number; rps: string }> {
  const server = Bun.spawn([process.execPath, import.meta.path, "serve", mode, String(port)], { stdout: "pipe", stderr: "inherit" });
  const reader = server.stdout.getReader();
  let text = "";
  while (!text.includes("ready")) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`${mode} server exited`);
    text += new TextDecoder().decode(value);
  }
  try {
    // A short warm-up so the JIT has compiled the hot path before we count.
    await run(port, 5_000);
    const before = await cpuTicks(server.pid);
    const out = await run(port, TOTAL);
    const after = await cpuTicks(server.pid);
    const rps = /Requests\/sec:\s*([\d.]+)/.exec(out)?.[1] ?? "?";
    return { usPerCall: (((after - before) / CLK_TCK) * 1e6) / TOTAL, rps };
  } finally {
    server.kill();
    await server.exited;
  }
}

async function run(port: number, total: number): Promise<string> {
  const args = [
    `--endpoints=127.0.0.1:${port}`,
    "--conns=100",
    "--clients=1000",
    "put",
    "--key-size=8",
    "--sequential-keys",
    `--total=${total}`,
    "--val-size=256",
  ];
  const p = Bun.spawn([BENCHMARK, ...args], { stdout: "pipe", stderr: "pipe" });
  const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  if (code !== 0) throw new Error(`benchmark failed (${code}): ${err}`);
  return out;
}

if (process.argv[2] === "serve") {
  // Exit cleanly on SIGTERM so `bun --cpu-prof` can write its profile.
  process.on("SIGTERM", () => process.exit(0));
  serve(process.argv[3], Number(process.argv[4]));
} else {
  const base = 31_000 + Math.floor(Math.random() * 1000);
  const modes = process.argv.length > 2 ? process.argv.slice(2) : ["h2", "node"];
  for (const [i, mode] of modes.entries()) {
    const r = await measure(mode, base + i);
    console.log(`${mode.padEnd(4)}  ${r.usPerCall.toFixed(1)} µs server CPU per call, ${r.rps} calls/s`);
  }
}
