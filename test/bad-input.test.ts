// Bad input gets etcd's error and changes nothing: every case below runs
// against one member, and after each the stored data and revision are checked
// unchanged and the member still serves.
import { afterAll, beforeAll, expect, test } from "bun:test";
import http2 from "node:http2";
import net from "node:net";
import { ConnectError } from "@connectrpc/connect";
import { startMember, type Member } from "./harness/server.ts";
import { enc, grpcClient, type EtcdClient } from "./harness/grpc-client.ts";

let member: Member;
let client: EtcdClient;
let baseline: { revision: bigint; count: bigint };

beforeAll(async () => {
  member = await startMember();
  client = grpcClient(member.clientUrl);
  await client.kv.put({ key: enc("keep"), value: enc("me") });
  baseline = await snapshot();
});
afterAll(() => member.stop());

async function snapshot() {
  const r = await client.kv.range({ key: new Uint8Array([0]), rangeEnd: new Uint8Array([0]) });
  return { revision: r.header!.revision, count: r.count };
}

async function expectRpcError(call: Promise<unknown>, code: number, message: string | RegExp) {
  const err = await call.then(
    () => undefined,
    (e) => e,
  );
  expect(err).toBeInstanceOf(ConnectError);
  expect((err as ConnectError).code).toBe(code);
  if (typeof message === "string") expect((err as ConnectError).rawMessage).toBe(message);
  else expect((err as ConnectError).rawMessage).toMatch(message);
  expect(await snapshot()).toEqual(baseline);
}

test("a request above --max-request-bytes is refused", async () => {
  const value = new Uint8Array(1024 * 1024 + 600 * 1024); // 1.6 MiB: above 1.5 MiB, below the gRPC limit
  await expectRpcError(client.kv.put({ key: enc("big"), value }), 3, "etcdserver: request is too large");
});

test("a message above the gRPC receive limit is refused by the transport", async () => {
  const value = new Uint8Array(3 * 1024 * 1024);
  await expectRpcError(client.kv.put({ key: enc("huge"), value }), 8, /^grpc: received message larger than max \(\d+ vs\. 2097152\)$/);
});

test("a txn with too many operations is refused", async () => {
  const success = Array.from({ length: 129 }, (_, i) => ({
    request: { case: "requestPut" as const, value: { key: enc(`t${i}`), value: enc("x") } },
  }));
  await expectRpcError(client.kv.txn({ success }), 3, "etcdserver: too many operations in txn request");
});

test("a txn putting one key twice is refused", async () => {
  const put = { request: { case: "requestPut" as const, value: { key: enc("dup"), value: enc("x") } } };
  await expectRpcError(client.kv.txn({ success: [put, put] }), 3, "etcdserver: duplicate key given in txn request");
});

test("an empty key is refused", async () => {
  await expectRpcError(client.kv.put({ key: new Uint8Array(), value: enc("x") }), 3, "etcdserver: key is not provided");
  await expectRpcError(client.kv.range({ key: new Uint8Array() }), 3, "etcdserver: key is not provided");
});

test("a range at a future revision is refused", async () => {
  await expectRpcError(client.kv.range({ key: enc("keep"), revision: 1000n }), 11, "etcdserver: mvcc: required revision is a future revision");
});

test("malformed protobuf bytes over raw HTTP/2 get INTERNAL in trailers", async () => {
  const session = http2.connect(member.clientUrl);
  try {
    const body = Buffer.from([0, 0, 0, 0, 3, 0xff, 0xff, 0xff]); // one frame, 3 bytes of invalid varint tag
    const req = session.request({ ":method": "POST", ":path": "/etcdserverpb.KV/Put", "content-type": "application/grpc", te: "trailers" });
    const trailers = await new Promise<http2.IncomingHttpHeaders>((resolve, reject) => {
      req.on("trailers", resolve);
      req.on("error", reject);
      req.on("data", () => {});
      req.end(body);
    });
    expect(trailers["grpc-status"]).toBe("13");
    expect(String(trailers["grpc-message"])).toContain("grpc: error unmarshalling request");
  } finally {
    session.close();
  }
  expect(await snapshot()).toEqual(baseline);
});

test("an unknown method answers UNIMPLEMENTED in trailers", async () => {
  const session = http2.connect(member.clientUrl);
  try {
    const req = session.request({ ":method": "POST", ":path": "/etcdserverpb.KV/Nope", "content-type": "application/grpc", te: "trailers" });
    const trailers = await new Promise<http2.IncomingHttpHeaders>((resolve, reject) => {
      req.on("trailers", resolve);
      req.on("error", reject);
      req.on("data", () => {});
      req.end(Buffer.from([0, 0, 0, 0, 0]));
    });
    expect(trailers["grpc-status"]).toBe("12");
    expect(trailers["grpc-message"]).toBe("unknown method Nope for service etcdserverpb.KV");
  } finally {
    session.close();
  }
});

test("garbage on the port is answered and closed; the member keeps serving", async () => {
  const reply = await new Promise<string>((resolve) => {
    const sock = net.connect(Number(new URL(member.clientUrl).port), "127.0.0.1");
    let got = "";
    sock.on("data", (d) => (got += d.toString()));
    sock.on("close", () => resolve(got));
    sock.on("error", () => resolve(got));
    sock.write(Buffer.from([0x16, 0x03, 0x01, 0xde, 0xad, 0xbe, 0xef, 0x0d, 0x0a, 0x0d, 0x0a]));
    setTimeout(() => sock.destroy(), 3000);
  });
  expect(reply).toMatch(/^HTTP\/1\.1 400/);
  expect(await snapshot()).toEqual(baseline);
});

test("a wrong content-type on an RPC path is refused with 415", async () => {
  const res = await fetch(`${member.clientUrl}/etcdserverpb.KV/Put`, {
    method: "POST",
    headers: { "content-type": "text/plain" },
    body: "key=value",
  });
  expect(res.status).toBe(415);
  expect(await snapshot()).toEqual(baseline);
});

test("the member still serves after all of that", async () => {
  const r = await client.kv.range({ key: enc("keep") });
  expect(new TextDecoder().decode(r.kvs[0].value)).toBe("me");
});

test("an oversized /v3 gateway body is refused before it is buffered", async () => {
  const body = JSON.stringify({ key: "Zm9v", value: "A".repeat(3 * 1024 * 1024) });
  const res = await fetch(`${member.clientUrl}/v3/kv/put`, { method: "POST", body });
  expect(res.status).toBe(429);
  expect((await res.json()).code).toBe(8);
  expect(await snapshot()).toEqual(baseline);
});
