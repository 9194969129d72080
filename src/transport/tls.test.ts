import { afterEach, beforeAll, describe, expect, test } from "bun:test";
import { MessageType, msg } from "../raft/types.js";
import type { PeerTlsOptions } from "./types.js";
import { selfSignedCert, startNode, waitFor, type TestNode } from "./test-support.js";

const nodes: TestNode[] = [];
afterEach(async () => {
  await Promise.all(nodes.splice(0).map((n) => n.t.stop()));
});

let tls: PeerTlsOptions;
let other: { cert: string; key: string };
beforeAll(async () => {
  const pair = await selfSignedCert();
  other = await selfSignedCert("stranger");
  tls = {
    server: { cert: pair.cert, key: pair.key, ca: pair.cert, requestCert: true, rejectUnauthorized: true },
    client: { cert: pair.cert, key: pair.key, ca: pair.cert },
  };
});

async function node(id: bigint, t: PeerTlsOptions | undefined, scheme: "http" | "https" = "https"): Promise<TestNode> {
  const n = await startNode(id, { tls: t }, undefined, scheme);
  nodes.push(n);
  return n;
}

const hb = (from: bigint, to: bigint, term: number) => msg({ type: MessageType.Heartbeat, from, to, term });

describe("TLS", () => {
  test("peers with certificates (client-cert-auth) exchange messages", async () => {
    const a = await node(1n, tls);
    const b = await node(2n, tls);
    a.t.addPeer(2n, [b.url]);
    b.t.addPeer(1n, [a.url]);
    for (let i = 1; i <= 50; i++) {
      a.t.send([hb(1n, 2n, i)]);
      b.t.send([hb(2n, 1n, i)]);
    }
    await waitFor(() => a.received.length === 50 && b.received.length === 50, 5000, "messages both ways");
    expect(b.received.map((m) => m.term)).toEqual([...Array(50).keys()].map((i) => i + 1));
  });

  test("a client without an accepted certificate is refused", async () => {
    const b = await node(2n, tls);
    const a = await node(1n, { client: { cert: other.cert, key: other.key, ca: tls.client!.ca } }, "http");
    a.t.addPeer(2n, [b.url]);
    const deadline = performance.now() + 1500;
    while (a.unreachable.length === 0 && performance.now() < deadline) {
      a.t.send([hb(1n, 2n, 1)]);
      await Bun.sleep(20);
    }
    expect(a.unreachable).toContain(2n);
    expect(b.received).toEqual([]);
  });

  test("plain http to a TLS peer fails cleanly", async () => {
    const b = await node(2n, tls);
    const a = await node(1n, undefined, "http");
    a.t.addPeer(2n, [b.url.replace("https:", "http:")]);
    const deadline = performance.now() + 3000;
    while (a.unreachable.length === 0 && performance.now() < deadline) {
      a.t.send([hb(1n, 2n, 1)]);
      await Bun.sleep(20);
    }
    expect(a.unreachable).toContain(2n);
    expect(b.received).toEqual([]);
    // b still serves TLS peers afterwards.
    const c = await node(3n, tls);
    c.t.addPeer(2n, [b.url]);
    c.t.send([hb(3n, 2n, 7)]);
    await waitFor(() => b.received.length === 1, 3000, "a TLS peer's message");
  });

  test("an https URL without a server certificate is a start error", async () => {
    await expect(startNode(9n, {}, undefined, "https")).rejects.toThrow(/no peer TLS certificate/);
  });
});
