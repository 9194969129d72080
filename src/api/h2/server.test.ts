// End to end: our HTTP/2 server under the real gRPC layer (GrpcServer) with
// fake services, driven by connect-node's gRPC client (node:http2 inside),
// node:http2's client directly, and the real etcdctl (Go's gRPC client).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import http2 from "node:http2";
import net from "node:net";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { KV, Maintenance, Watch } from "../../gen/etcdserverpb/rpc_pb.js";
import { BENCHMARK_BIN, ETCDCTL_BIN, requireTool } from "../../testing/tools.ts";
import { dec, enc, fakeServices } from "../testing/fake-services.js";
import { GrpcServer } from "../grpc/server.js";
import { listenH2, serveH2, type H2Connection, type H2Options, type H2Stream, type HeaderMap } from "./server.js";

let aborted = 0;

const ETCDCTL = ETCDCTL_BIN;
const HAVE_ETCDCTL = requireTool(ETCDCTL_BIN);
const BENCHMARK = BENCHMARK_BIN;
const HAVE_BENCHMARK = requireTool(BENCHMARK_BIN);
const SNAPSHOT_CHUNK = 64 * 1024;
const SNAPSHOT_CHUNKS = 160; // 10 MiB in all

const { services, store } = fakeServices({
  snapshotChunks: SNAPSHOT_CHUNKS,
  snapshotChunkBytes: SNAPSHOT_CHUNK,
  onAbort: () => aborted++,
});

/** Streams that are not gRPC: a small echo/inspect service for node:http2's client. */
function plainHandler(stream: H2Stream, headers: HeaderMap): void {
  const path = headers[":path"];
  if (path === "/echo-headers") {
    stream.respond({
      ":status": 200,
      "x-method": String(headers[":method"]),
      "x-multi": ["one", "two"],
      "x-long": "v".repeat(500),
      "content-type": "text/plain",
    });
    stream.end("ok");
    stream.resume();
    return;
  }
  if (path === "/count") {
    // Counts the request body; a large upload exercises our receive windows.
    let n = 0;
    stream.on("data", (c: Uint8Array) => (n += c.length));
    stream.on("end", () => {
      stream.respond({ ":status": 200 });
      stream.end(String(n));
    });
    return;
  }
  stream.respond({ ":status": 404 }, { endStream: true });
}

const grpc = new GrpcServer(services, { maxRecvBytes: 2 * 1024 * 1024, maxSendBytes: 4 * 1024 * 1024 });
const h2Options: H2Options = {
  maxConcurrentStreams: 4000,
  onStream(stream, headers) {
    const type = String(headers["content-type"] ?? "");
    if (type.startsWith("application/grpc")) grpc.handle(stream as any, headers as any);
    else plainHandler(stream, headers);
  },
};

/** Starts the server on node:net sockets (as the one-port listener hands them over) or on Bun.listen. */
async function start(kind: string): Promise<{ port: number; connections: () => number; stop: () => Promise<void> }> {
  if (kind === "Bun.listen") {
    const { listener, connections } = listenH2("127.0.0.1", 0, h2Options);
    return {
      port: listener.port,
      connections: () => connections.size,
      stop: async () => {
        await Promise.all(Array.from(connections, (c) => c.close()));
        listener.stop(true);
      },
    };
  }
  const conns = new Set<H2Connection>();
  const server = net.createServer((socket) => {
    const conn = serveH2(socket, new Uint8Array(0), h2Options);
    conns.add(conn);
    conn.closed.then(() => conns.delete(conn));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    connections: () => conns.size,
    stop: async () => {
      await Promise.all(Array.from(conns, (c) => c.close()));
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

describe.each(["node:net", "Bun.listen"])("over %s sockets", (kind) => {
  let url: string;
  let port: number;
  let running: Awaited<ReturnType<typeof start>>;

  beforeAll(async () => {
    running = await start(kind);
    port = running.port;
    url = `http://127.0.0.1:${port}`;
  });

  afterAll(() => running.stop());

  test("unary calls", async () => {
    const kv = createClient(KV, createGrpcTransport({ baseUrl: url }));
    const put = await kv.put({ key: enc("a"), value: enc("1") });
    expect(put.header?.revision).toBeGreaterThan(0n);
    const r = await kv.range({ key: enc("a") });
    expect(dec(r.kvs[0].value)).toBe("1");
  });

  test("2,000 concurrent unary calls on one connection", async () => {
    const before = running.connections();
    const kv = createClient(KV, createGrpcTransport({ baseUrl: url }));
    const results = await Promise.all(Array.from({ length: 2000 }, (_, i) => kv.put({ key: enc(`c${i}`), value: enc(`v${i}`) })));
    expect(results.length).toBe(2000);
    for (let i = 0; i < 2000; i += 199) expect(dec(store.get(`c${i}`)!)).toBe(`v${i}`);
    expect(running.connections()).toBe(before + 1);
  }, 30_000);

  test("server streaming: 10 MiB through flow control, in order", async () => {
    const m = createClient(Maintenance, createGrpcTransport({ baseUrl: url }));
    let expected = SNAPSHOT_CHUNKS - 1;
    let bytes = 0;
    for await (const r of m.snapshot({})) {
      expect(r.remainingBytes).toBe(BigInt(expected));
      expect(r.blob.length).toBe(SNAPSHOT_CHUNK);
      expect(r.blob[SNAPSHOT_CHUNK - 1]).toBe(expected & 0xff);
      bytes += r.blob.length;
      expected--;
    }
    expect(expected).toBe(-1);
    expect(bytes).toBe(10 * 1024 * 1024);
  }, 30_000);

  test("bidi streaming answers each request", async () => {
    const w = createClient(Watch, createGrpcTransport({ baseUrl: url }));
    async function* reqs() {
      for (let i = 1; i <= 50; i++) yield { requestUnion: { case: "createRequest" as const, value: { key: enc("k"), watchId: BigInt(i) } } };
    }
    const ids: bigint[] = [];
    for await (const r of w.watch(reqs())) ids.push(r.watchId);
    expect(ids).toEqual(Array.from({ length: 50 }, (_, i) => BigInt(i + 1)));
  });

  test("an error status travels in trailers", async () => {
    const kv = createClient(KV, createGrpcTransport({ baseUrl: url }));
    const err = await kv.put({ key: new Uint8Array(), value: enc("1") }).catch((e) => e);
    expect(err.code).toBe(3);
    expect(err.rawMessage).toBe("etcdserver: key is not provided");
    const unimplemented = await kv.txn({}).catch((e) => e);
    expect(unimplemented.code).toBe(12);
  });

  test("a deadline aborts the handler with DEADLINE_EXCEEDED", async () => {
    const kv = createClient(KV, createGrpcTransport({ baseUrl: url }));
    const before = aborted;
    const err = await kv.put({ key: enc("slow"), value: enc("1") }, { timeoutMs: 200 }).catch((e) => e);
    expect(err.code).toBe(4);
    // The client's own timer may fire first; the server's follows within moments.
    for (let i = 0; i < 50 && aborted === before; i++) await Bun.sleep(10);
    expect(aborted).toBe(before + 1);
    expect(store.has("slow")).toBe(false);
  });

  test("a client cancel (RST_STREAM) aborts the handler", async () => {
    const kv = createClient(KV, createGrpcTransport({ baseUrl: url }));
    const before = aborted;
    const ac = new AbortController();
    const p = kv.put({ key: enc("slow"), value: enc("1") }, { signal: ac.signal }).catch((e) => e);
    await Bun.sleep(50);
    ac.abort();
    expect((await p).code).toBe(1);
    for (let i = 0; i < 50 && aborted === before; i++) await Bun.sleep(10);
    expect(aborted).toBe(before + 1);
  });

  test("node:http2's client reads our encoder's headers and sends large bodies", async () => {
    const session = http2.connect(url);
    try {
      const res = await new Promise<{ headers: http2.IncomingHttpHeaders; body: string }>((resolve, reject) => {
        const req = session.request({ ":path": "/echo-headers", ":method": "GET" });
        let body = "";
        let headers: http2.IncomingHttpHeaders = {};
        req.on("response", (h) => (headers = h));
        req.on("data", (c) => (body += c));
        req.on("end", () => resolve({ headers, body }));
        req.on("error", reject);
        req.end();
      });
      expect(res.headers[":status"] as unknown).toBe(200);
      expect(res.headers["x-method"]).toBe("GET");
      expect(res.headers["x-long"]).toBe("v".repeat(500));
      expect(String(res.headers["x-multi"])).toContain("one");
      expect(res.body).toBe("ok");

      // 12 MiB upload: beyond the 4 MiB stream window and the 16 MiB
      // connection window only if we grant window back as we read.
      const size = 12 * 1024 * 1024;
      const counted = await new Promise<string>((resolve, reject) => {
        const req = session.request({ ":path": "/count", ":method": "POST" });
        let body = "";
        req.on("data", (c) => (body += c));
        req.on("end", () => resolve(body));
        req.on("error", reject);
        const chunk = Buffer.alloc(256 * 1024, 7);
        let sent = 0;
        const pump = () => {
          while (sent < size) {
            sent += chunk.length;
            if (!req.write(chunk)) return void req.once("drain", pump);
          }
          req.end();
        };
        pump();
      });
      expect(Number(counted)).toBe(size);
    } finally {
      session.close();
    }
  }, 30_000);

  test.skipIf(!HAVE_ETCDCTL)(
    "real etcdctl (Go gRPC client) put and get",
    async () => {
      const run = async (...args: string[]) => {
        const p = Bun.spawn([ETCDCTL, `--endpoints=127.0.0.1:${port}`, "--dial-timeout=3s", "--command-timeout=5s", ...args], {
          env: { ...process.env, ETCDCTL_API: "3" },
          stdout: "pipe",
          stderr: "pipe",
        });
        const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
        return { out, err, code };
      };
      const put = await run("put", "foo", "bar");
      expect(put.err).toBe("");
      expect(put.out.trim()).toBe("OK");
      expect(put.code).toBe(0);
      const get = await run("get", "foo");
      expect(get.out.trim().split("\n")).toEqual(["foo", "bar"]);
      const bad = await run("put", "", "x");
      expect(bad.err).toContain("key is not provided");
    },
    30_000,
  );

  test.skipIf(!HAVE_BENCHMARK)(
    "etcd's benchmark (Go gRPC, BDP pings, window updates): 20,000 puts without a stall",
    async () => {
      const args = [
        `--endpoints=127.0.0.1:${port}`,
        "--conns=2",
        "--clients=100",
        "put",
        "--key-size=8",
        "--sequential-keys",
        "--total=20000",
        "--val-size=256",
      ];
      const p = Bun.spawn([BENCHMARK, ...args], { stdout: "pipe", stderr: "pipe" });
      const [out, , code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
      expect(code).toBe(0);
      expect(out).not.toContain("Error distribution");
      expect(out).toMatch(/Requests\/sec/);
    },
    60_000,
  );
});
