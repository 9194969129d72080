// Transports started with options peerTlsOptions built from the --peer-* flags: what each
// configuration lets through on the wire. The options alone are tested in src/tls/peer.test.ts.
import { afterEach, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { peerTlsOptions } from "../tls/peer.js";
import { peerTlsConfig, writePeerTestCerts } from "../tls/test-support.js";
import { startNode, type TestNode } from "./test-support.js";
import { peerRequest, PeerRequestError } from "./transport.js";

const quiet = { warn: () => {}, info: () => {} };
const nodes: TestNode[] = [];
afterEach(async () => {
  await Promise.all(nodes.splice(0).map((n) => n.t.stop()));
});

const base = peerTlsConfig;

let dir: string;
let files: Record<string, { cert: string; key: string }> = {};
beforeAll(async () => {
  ({ dir, files } = await writePeerTestCerts(["member", "client"]));
});

describe("peerTlsOptions on the wire", () => {
  async function serve(tls: Awaited<ReturnType<typeof peerTlsOptions>>): Promise<TestNode> {
    const n = await startNode(BigInt(nodes.length + 1), { tls, onPeerRequest: () => ({ status: 200, body: "ok" }) }, undefined, "https");
    nodes.push(n);
    return n;
  }

  test("two auto-TLS members talk without verifying each other", async () => {
    const a = await peerTlsOptions(base({ peerAutoTls: true }), quiet);
    const b = await peerTlsOptions(base({ peerAutoTls: true }), quiet);
    const server = await serve(a);
    expect((await peerRequest([server.url], "/members", { timeoutMs: 2000, tls: b!.client })).status).toBe(200);
  });

  test("client-cert-auth with allowed CN: the separate client identity gets in, a stranger does not", async () => {
    const cfg = {
      peerCertFile: files.member.cert,
      peerKeyFile: files.member.key,
      peerTrustedCaFile: join(dir, "ca.pem"),
      peerClientCertAuth: true,
      peerCertAllowedCn: ["client"],
    };
    const server = await serve(await peerTlsOptions(base(cfg), quiet));
    const asClient = await peerTlsOptions(base({ ...cfg, peerClientCertFile: files.client.cert, peerClientKeyFile: files.client.key }), quiet);
    expect((await peerRequest([server.url], "/members", { timeoutMs: 2000, tls: asClient!.client })).status).toBe(200);
    // The member's own certificate is trusted by the CA but its CN is "member": refused.
    const asMember = await peerTlsOptions(base(cfg), quiet);
    await expect(peerRequest([server.url], "/members", { timeoutMs: 2000, tls: asMember!.client })).rejects.toBeInstanceOf(PeerRequestError);
  });
});
