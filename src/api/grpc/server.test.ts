// The gRPC layer and the one-port listener, with fake service implementations:
// unary, server-streaming and bidi calls over h2c from a real gRPC client,
// gRPC-Web and Connect over HTTP/1.1 on the same port, errors in trailers,
// deadlines, unknown methods.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { KV, Maintenance, Watch } from "../../gen/etcdserverpb/rpc_pb.js";
import { connectHandler } from "../connect.js";
import { fetchHandler } from "../fetch-handler.js";
import { httpRoutes } from "../http/routes.js";
import { ClientPort } from "../listener.js";
import { dec, enc, fakeServices } from "../testing/fake-services.js";
import { GrpcServer } from "./server.js";

const { services, store } = fakeServices({ snapshotChunks: 4, snapshotChunkBytes: 100_000 });

let port: ClientPort;
let url: string;

beforeAll(async () => {
  const grpc = new GrpcServer(services, { maxRecvBytes: 1024 * 1024, maxSendBytes: 4 * 1024 * 1024 });
  const routes = httpRoutes({ healthProblem: () => "" });
  const http = connectHandler(services, routes, { readMaxBytes: 1024 * 1024, cors: ["*"] });
  const fetch = fetchHandler(services, routes, { readMaxBytes: 1024 * 1024, cors: ["*"] });
  port = new ClientPort({ grpc, http, fetch, maxBodyBytes: 1024 * 1024, maxConcurrentStreams: 1000 });
  const p = 20_000 + Math.floor(Math.random() * 10_000) + 10_200;
  await port.listen("127.0.0.1", p);
  url = `http://127.0.0.1:${p}`;
});
afterAll(async () => {
  port.destroyConnections();
  await port.close();
});

test("unary over gRPC h2c", async () => {
  const kv = createClient(KV, createGrpcTransport({ baseUrl: url }));
  const put = await kv.put({ key: enc("a"), value: enc("1") });
  expect(put.header?.revision).toBeGreaterThan(0n);
  const r = await kv.range({ key: enc("a") });
  expect(dec(r.kvs[0].value)).toBe("1");
});

test("many concurrent unary calls on one connection", async () => {
  const kv = createClient(KV, createGrpcTransport({ baseUrl: url }));
  await Promise.all(Array.from({ length: 500 }, (_, i) => kv.put({ key: enc(`c${i}`), value: enc("x") })));
  expect(store.has("c499")).toBe(true);
});

test("errors carry etcd's code and message in trailers", async () => {
  const kv = createClient(KV, createGrpcTransport({ baseUrl: url }));
  const err = await kv.put({ key: new Uint8Array(), value: enc("1") }).catch((e) => e);
  expect(err).toBeInstanceOf(ConnectError);
  expect(err.code).toBe(3);
  expect(err.rawMessage).toBe("etcdserver: key is not provided");
});

test("a method without an implementation is UNIMPLEMENTED", async () => {
  const kv = createClient(KV, createGrpcTransport({ baseUrl: url }));
  const err = await kv.txn({}).catch((e) => e);
  expect(err.code).toBe(12);
});

test("grpc-timeout aborts the handler with DEADLINE_EXCEEDED", async () => {
  const kv = createClient(KV, createGrpcTransport({ baseUrl: url }));
  const err = await kv.put({ key: enc("slow"), value: enc("1") }, { timeoutMs: 200 }).catch((e) => e);
  expect(err.code).toBe(4);
  expect(store.has("slow")).toBe(false);
});

test("server streaming delivers every message in order", async () => {
  const m = createClient(Maintenance, createGrpcTransport({ baseUrl: url }));
  const got: bigint[] = [];
  for await (const r of m.snapshot({})) {
    got.push(r.remainingBytes);
    expect(r.blob.length).toBe(100_000);
  }
  expect(got).toEqual([3n, 2n, 1n, 0n]);
});

test("bidi streaming answers each request", async () => {
  const w = createClient(Watch, createGrpcTransport({ baseUrl: url }));
  async function* reqs() {
    for (let i = 1; i <= 3; i++) yield { requestUnion: { case: "createRequest" as const, value: { key: enc("k"), watchId: BigInt(i) } } };
  }
  const ids: bigint[] = [];
  for await (const r of w.watch(reqs())) ids.push(r.watchId);
  expect(ids).toEqual([1n, 2n, 3n]);
});

test("gRPC-Web and Connect JSON on the same port (HTTP/1.1)", async () => {
  const web = createClient(KV, createGrpcWebTransport({ baseUrl: url, httpVersion: "1.1" }));
  await web.put({ key: enc("w"), value: enc("web") });
  const json = createClient(KV, createConnectTransport({ baseUrl: url, httpVersion: "1.1", useBinaryFormat: false }));
  const r = await json.range({ key: enc("w") });
  expect(dec(r.kvs[0].value)).toBe("web");
  const err = await json.put({ key: new Uint8Array(), value: enc("1") }).catch((e) => e);
  expect(err.code).toBe(3);
  expect(err.rawMessage).toBe("etcdserver: key is not provided");
});

test("Connect over h2c (non-gRPC stream on HTTP/2) and plain routes", async () => {
  const c = createClient(KV, createConnectTransport({ baseUrl: url, httpVersion: "2" }));
  const r = await c.range({ key: enc("a") });
  expect(dec(r.kvs[0].value)).toBe("1");
  const v = await fetch(`${url}/version`).then((res) => res.json());
  expect(v.etcdserver).toMatch(/^3\.5\./);
  const h = await fetch(`${url}/health`).then((res) => res.json());
  expect(h).toEqual({ health: "true", reason: "" });
});
