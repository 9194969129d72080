// Runs in headless Chromium: a gRPC-Web Put then Range against the member,
// exactly as a browser page of an operator would. The result lands in the DOM.
import { createClient } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import { KV } from "../../src/gen/etcdserverpb/rpc_pb.js";

async function run(): Promise<void> {
  const target = new URLSearchParams(location.search).get("member")!;
  const kv = createClient(KV, createGrpcWebTransport({ baseUrl: target }));
  const enc = new TextEncoder();
  const put = await kv.put({ key: enc.encode("browser/key"), value: enc.encode("hello from chromium") });
  const got = await kv.range({ key: enc.encode("browser/key") });
  const out = {
    putRevision: String(put.header?.revision),
    value: new TextDecoder().decode(got.kvs[0]?.value),
    modRevision: String(got.kvs[0]?.modRevision),
  };
  document.getElementById("out")!.textContent = JSON.stringify(out);
}

run().catch((err) => {
  document.getElementById("out")!.textContent = "ERROR " + String(err);
});
