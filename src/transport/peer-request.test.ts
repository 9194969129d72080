import { afterEach, beforeAll, describe, expect, test } from "bun:test";
import http2 from "node:http2";
import { freePort } from "../testing/ports.js";
import { MessageType, msg } from "../raft/types.js";
import { H_CLUSTER } from "./protocol.js";
import { peerRequest, PeerRequestError } from "./peer-request.js";
import { selfSignedCert, startNode, waitFor, type TestNode } from "./test-support.js";
import type { PeerRequest, PeerTlsOptions } from "./types.js";

const nodes: TestNode[] = [];
afterEach(async () => {
  await Promise.all(nodes.splice(0).map((n) => n.t.stop()));
});

async function node(id: bigint, extra: Parameters<typeof startNode>[1] = {}, scheme: "http" | "https" = "http"): Promise<TestNode> {
  const n = await startNode(id, extra, undefined, scheme);
  nodes.push(n);
  return n;
}

const text = (b: Uint8Array) => new TextDecoder().decode(b);

describe("non-Raft peer requests", () => {
  test("GET and POST reach the handler with headers, without cluster-id admission", async () => {
    const seen: PeerRequest[] = [];
    const b = await node(2n, {
      onPeerRequest: async (req) => {
        seen.push(req);
        return {
          status: 200,
          headers: { "content-type": "application/json", "x-echo": req.headers["x-hello"] ?? "" },
          body: JSON.stringify({ path: req.path, len: req.body.length }),
        };
      },
    });
    const r = await peerRequest([b.url], "/members?x=1", { timeoutMs: 2000, headers: { "X-Hello": "there" } });
    expect(r.status).toBe(200);
    expect(r.url).toBe(b.url);
    expect(r.headers["x-echo"]).toBe("there");
    expect(r.headers[H_CLUSTER]).toBe("c1");
    expect(JSON.parse(text(r.body))).toEqual({ path: "/members", len: 0 });
    expect(seen[0]).toMatchObject({ method: "GET", path: "/members", query: "x=1" });
    expect(seen[0].headers[":path"]).toBeUndefined();

    const body = new Uint8Array(60_000).fill(7);
    const p = await peerRequest([b.url], "/members/promote/abc", { method: "POST", body, timeoutMs: 2000 });
    expect(JSON.parse(text(p.body))).toEqual({ path: "/members/promote/abc", len: 60_000 });
    expect(seen[1].method).toBe("POST");
    expect(seen[1].body).toEqual(body);
  });

  test("oversized body → 413; handler error → 500; no handler → 404; other methods → 405", async () => {
    let calls = 0;
    const b = await node(2n, {
      onPeerRequest: (req) => {
        calls++;
        if (req.path === "/boom") throw new Error("kaput");
        return { status: 204, body: "" };
      },
    });
    const big = await peerRequest([b.url], "/members/promote/1", { method: "POST", body: new Uint8Array(64 * 1024 + 1), timeoutMs: 2000 });
    expect(big.status).toBe(413);
    expect(calls).toBe(0);
    const boom = await peerRequest([b.url], "/boom", { timeoutMs: 2000 });
    expect(boom.status).toBe(500);
    expect(text(boom.body)).toContain("kaput");
    const put = await peerRequest([b.url], "/members", { method: "PUT", timeoutMs: 2000 });
    expect(put.status).toBe(405);
    const ok = await peerRequest([b.url], "/members", { timeoutMs: 2000 });
    expect(ok.status).toBe(204);
    // /raft/* is still the Raft protocol's: an unknown /raft path is 404 and never reaches the handler.
    const raft = await peerRequest([b.url], "/raft/other", { method: "POST", timeoutMs: 2000 });
    expect(raft.status).toBe(404);
    expect(calls).toBe(2);

    const c = await node(3n);
    const none = await peerRequest([c.url], "/members", { timeoutMs: 2000 });
    expect(none.status).toBe(404);
  });

  test("a 413 body sent without content-length (streamed) is refused too", async () => {
    const b = await node(2n, { onPeerRequest: () => ({ status: 200, body: "ok" }) });
    const s = http2.connect(b.url);
    try {
      const req = s.request({ ":method": "POST", ":path": "/x" });
      const status = new Promise<number>((r) => req.on("response", (h) => r(Number(h[":status"]))));
      req.on("error", () => {});
      for (let i = 0; i < 10; i++) req.write(new Uint8Array(16 * 1024));
      expect(await status).toBe(413);
    } finally {
      s.destroy();
    }
  });

  test("Raft traffic still works beside the handler", async () => {
    const a = await node(1n, { onPeerRequest: () => ({ status: 200, body: "" }) });
    const b = await node(2n, { onPeerRequest: () => ({ status: 200, body: "" }) });
    a.t.addPeer(2n, [b.url]);
    a.t.send([msg({ type: MessageType.Heartbeat, from: 1n, to: 2n, term: 3 })]);
    await waitFor(() => b.received.length === 1, 3000, "heartbeat");
  });

  test("URLs are tried in turn; all failing throws with every URL's error", async () => {
    const b = await node(2n, { onPeerRequest: () => ({ status: 200, body: "here" }) });
    const dead = `http://127.0.0.1:${await freePort()}`;
    const r = await peerRequest([dead, b.url], "/members", { timeoutMs: 1000 });
    expect(text(r.body)).toBe("here");
    expect(r.url).toBe(b.url);

    const dead2 = `http://127.0.0.1:${await freePort()}`;
    const err = await peerRequest([dead, dead2], "/members", { timeoutMs: 1000 }).catch((e) => e);
    expect(err).toBeInstanceOf(PeerRequestError);
    expect((err as PeerRequestError).errors.map((e) => e.url)).toEqual([dead, dead2]);
    expect(err.message).toContain(dead);
    expect(err.message).toContain(dead2);
    await expect(peerRequest([], "/members", { timeoutMs: 100 })).rejects.toThrow(/no peer URLs/);
  });

  test("a handler that never answers times out at the client, and a big answer is refused", async () => {
    const b = await node(2n, {
      onPeerRequest: (req) => (req.path === "/slow" ? new Promise(() => {}) : { status: 200, body: new Uint8Array(100_000) }),
    });
    const t0 = performance.now();
    await expect(peerRequest([b.url], "/slow", { timeoutMs: 300 })).rejects.toThrow(/timed out/);
    expect(performance.now() - t0).toBeLessThan(2000);
    await expect(peerRequest([b.url], "/big", { timeoutMs: 2000, maxResponseBytes: 50_000 })).rejects.toThrow(/exceeds the limit/);
    expect((await peerRequest([b.url], "/big", { timeoutMs: 2000 })).body.length).toBe(100_000);
  });

  test("the handler's answer is bounded by limits.maxPeerResponseBytes", async () => {
    const b = await node(2n, { onPeerRequest: () => ({ status: 200, body: new Uint8Array(2000) }), limits: { maxPeerResponseBytes: 1000 } });
    const r = await peerRequest([b.url], "/x", { timeoutMs: 2000 });
    expect(r.status).toBe(500);
  });
});

describe("non-Raft peer requests over TLS", () => {
  let pair: { cert: string; key: string };
  let stranger: { cert: string; key: string };
  beforeAll(async () => {
    pair = await selfSignedCert("member");
    stranger = await selfSignedCert("stranger");
  });

  test("https with client-cert-auth", async () => {
    const tls: PeerTlsOptions = {
      server: { cert: pair.cert, key: pair.key, ca: pair.cert, requestCert: true, rejectUnauthorized: true },
      client: { cert: pair.cert, key: pair.key, ca: pair.cert },
    };
    const b = await node(2n, { tls, onPeerRequest: () => ({ status: 200, body: "secure" }) }, "https");
    const r = await peerRequest([b.url], "/members", { timeoutMs: 2000, tls: tls.client });
    expect(text(r.body)).toBe("secure");
    // Without a certificate the server refuses the handshake.
    await expect(peerRequest([b.url], "/members", { timeoutMs: 2000, tls: { ca: pair.cert } })).rejects.toThrow(PeerRequestError);
    // Without trusting the server's certificate the client refuses.
    await expect(peerRequest([b.url], "/members", { timeoutMs: 2000, tls: { cert: pair.cert, key: pair.key } })).rejects.toThrow(PeerRequestError);
    // rejectUnauthorized false (peer auto-TLS) connects without the CA.
    const insecure = await peerRequest([b.url], "/members", { timeoutMs: 2000, tls: { cert: pair.cert, key: pair.key, rejectUnauthorized: false } });
    expect(insecure.status).toBe(200);
  });

  test("--peer-cert-allowed-cn disconnects a verified client with another CN", async () => {
    const ca = [pair.cert, stranger.cert];
    const tls: PeerTlsOptions = {
      server: { cert: pair.cert, key: pair.key, ca, requestCert: true, rejectUnauthorized: true },
      client: { cert: pair.cert, key: pair.key, ca },
      allowedCn: ["member"],
    };
    let calls = 0;
    const b = await node(2n, { tls, onPeerRequest: () => ({ status: 200, body: String(++calls) }) }, "https");
    expect((await peerRequest([b.url], "/members", { timeoutMs: 2000, tls: tls.client })).status).toBe(200);
    const err = await peerRequest([b.url], "/members", { timeoutMs: 2000, tls: { cert: stranger.cert, key: stranger.key, ca } }).catch((e) => e);
    expect(err).toBeInstanceOf(PeerRequestError);
    await waitFor(() => b.log.has("client certificate authentication failed") !== undefined, 2000, "rejection log");
    expect(calls).toBe(1);
  });
});
