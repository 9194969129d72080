import { afterEach, describe, expect, test } from "bun:test";
import http2 from "node:http2";
import { MessageType, msg, type Message } from "../raft/types.js";
import { frameAll } from "./framing.js";
import { H_CLUSTER, H_FROM, H_PROTOCOL, H_TO, parsePeerUrls, PROTOCOL_VERSION, requestHeaders, STREAM_PATH } from "./protocol.js";
import { jsonCodec, startNode, waitFor, type TestNode } from "./test-support.js";

const nodes: TestNode[] = [];
afterEach(async () => {
  await Promise.all(nodes.splice(0).map((n) => n.t.stop()));
});

async function node(id: bigint, extra: Parameters<typeof startNode>[1] = {}, port?: number): Promise<TestNode> {
  const n = await startNode(id, extra, port);
  nodes.push(n);
  return n;
}

function app(from: bigint, to: bigint, index: number): Message {
  return msg({
    type: MessageType.App,
    from,
    to,
    term: 1,
    index,
    entries: [{ term: 1, index: index + 1, type: 0, data: new TextEncoder().encode(`e${index}`) }],
  });
}

describe("transport", () => {
  test("a stream names its sender's advertised URLs, so a receiver that does not know it can answer it", async () => {
    const heard: Array<[bigint, string[]]> = [];
    const b = await node(2n, { onPeerUrls: (id, urls) => heard.push([id, urls]) });
    const a = await node(1n, { advertiseUrls: ["http://127.0.0.1:1", "https://a.example:2380"] });
    a.t.addPeer(2n, [b.url]);
    a.t.send([app(1n, 2n, 0)]);
    await waitFor(() => b.received.length === 1, 3000, "the message");
    expect(heard).toEqual([[1n, ["http://127.0.0.1:1", "https://a.example:2380"]]]);
  });

  test("peer URLs from a stream's headers are taken only when every one is an http(s) URL, and bounded", () => {
    expect(parsePeerUrls("http://a:1,https://b:2")).toEqual(["http://a:1", "https://b:2"]);
    expect(parsePeerUrls(undefined)).toEqual([]);
    expect(parsePeerUrls("http://a:1,file:///etc/passwd")).toEqual([]);
    expect(parsePeerUrls("not a url")).toEqual([]);
    expect(parsePeerUrls(`http://${"x".repeat(600)}:1`)).toEqual([]);
    expect(parsePeerUrls(Array.from({ length: 20 }, (_, i) => `http://h${i}:1`).join(",")).length).toBe(8);
  });

  test("messages between 3 transports arrive in order per pair", async () => {
    const ns = [await node(1n), await node(2n), await node(3n)];
    for (const a of ns) for (const b of ns) if (a !== b) a.t.addPeer(b.id, [b.url]);
    const N = 300;
    for (let i = 0; i < N; i++) {
      for (const a of ns) a.t.send(ns.filter((b) => b !== a).map((b) => app(a.id, b.id, i)));
      if (i % 50 === 0) await Bun.sleep(1);
    }
    await waitFor(() => ns.every((n) => n.received.length === 2 * N), 5000, "all messages");
    for (const b of ns) {
      for (const a of ns) {
        if (a === b) continue;
        const got = b.received.filter((m) => m.from === a.id);
        expect(got.map((m) => m.index)).toEqual([...Array(N).keys()]);
        expect(new TextDecoder().decode(got[7].entries[0].data)).toBe("e7");
        expect(got.every((m) => m.to === b.id && m.type === MessageType.App)).toBe(true);
      }
    }
    expect(ns[0].t.isActive(2n)).toBe(true);
  });

  test("a peer restarted on the same port gets messages again after reconnect", async () => {
    const a = await node(1n);
    let b = await node(2n);
    a.t.addPeer(2n, [b.url]);
    a.t.send([app(1n, 2n, 0)]);
    await waitFor(() => b.received.length === 1, 3000, "first message");
    await b.t.stop();
    // Sends while the peer is gone fail and say so.
    const deadline = performance.now() + 3000;
    while (a.unreachable.length === 0 && performance.now() < deadline) {
      a.t.send([app(1n, 2n, 1)]);
      await Bun.sleep(20);
    }
    expect(a.unreachable).toContain(2n);
    b = await node(2n, {}, b.port);
    await waitFor(
      () => {
        a.t.send([app(1n, 2n, 99)]);
        return b.received.some((m) => m.index === 99);
      },
      5000,
      "a message after the restart",
    );
    expect(a.log.has("peer became active")).toBeDefined();
  });

  test("a full queue drops, logs like etcd and reports the peer unreachable", async () => {
    const b = await node(2n);
    const statuses: Array<[bigint, boolean]> = [];
    const a = await node(1n, { limits: { maxQueueMessages: 8, backoffMinMs: 20, backoffMaxMs: 100 } });
    a.opts.onSnapshotStatus = (p, ok) => statuses.push([p, ok]);
    a.t.addPeer(2n, [b.url]);
    // One turn: nothing is written before the turn ends, so the queue holds 8 and drops the rest.
    a.t.send([...Array(100).keys()].map((i) => app(1n, 2n, i)));
    await Bun.sleep(0);
    expect(a.unreachable).toEqual([2n]);
    expect(a.log.has("dropped internal Raft message since sending buffer is full")).toBeDefined();
    await waitFor(() => b.received.length === 8, 3000, "the queued messages");
    await Bun.sleep(50);
    expect(b.received.map((m) => m.index)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
  });

  test("a cluster ID mismatch is refused and logged; nothing is delivered", async () => {
    const b = await node(2n);
    const a = await node(1n, { clusterId: 0xbadn });
    a.t.addPeer(2n, [b.url]);
    a.t.send([app(1n, 2n, 0)]);
    await waitFor(() => b.log.has("request cluster ID mismatch") !== undefined, 3000, "the mismatch log");
    const line = b.log.has("request cluster ID mismatch")!;
    expect(line.fields!["local-member-cluster-id"]).toBe("c1");
    expect(line.fields!["remote-peer-cluster-id"]).toBe("bad");
    expect(line.fields!.status).toBe(412);
    await waitFor(() => a.log.has("ignored by remote peer due to cluster ID") !== undefined, 3000, "the sender's log");
    a.t.send([app(1n, 2n, 1)]);
    await Bun.sleep(100);
    expect(b.received).toEqual([]);
    expect(a.t.isActive(2n)).toBe(false);
  });

  test("a removed member is refused with 410 and learns it", async () => {
    const removedUs: bigint[] = [];
    const b = await node(2n, { isRemoved: (id) => id === 1n });
    const a = await node(1n, { onPeerRemovedUs: (p) => removedUs.push(p) });
    a.t.addPeer(2n, [b.url]);
    a.t.send([app(1n, 2n, 0)]);
    await waitFor(() => removedUs.length > 0, 3000, "onPeerRemovedUs");
    expect(removedUs[0]).toBe(2n);
    expect(b.log.has("rejected stream from remote peer because it was removed")).toBeDefined();
    expect(b.received).toEqual([]);
  });

  test("tries a peer's URLs in turn", async () => {
    const b = await node(2n);
    const a = await node(1n);
    a.t.addPeer(2n, ["http://127.0.0.1:1", b.url]);
    await waitFor(
      () => {
        a.t.send([app(1n, 2n, 5)]);
        return b.received.length > 0;
      },
      3000,
      "delivery through the second URL",
    );
  });

  test("garbage, oversized frames and bad messages close only that stream", async () => {
    const b = await node(2n, { limits: { maxMessageBytes: 1024 } });
    const client = http2.connect(b.url);
    client.on("error", () => {});
    const open = () => {
      const s = client.request(requestHeaders(STREAM_PATH, 0xc1n, 1n, 2n));
      s.on("error", () => {});
      const closed = new Promise<void>((r) => s.on("close", () => r()));
      return { s, closed };
    };
    // An oversized length prefix.
    const big = open();
    big.s.write(new Uint8Array([0, 1, 0, 0, 1, 2, 3]));
    await Promise.race([big.closed, Bun.sleep(2000)]);
    expect(big.s.closed).toBe(true);
    // A frame that is not a message.
    const junk = open();
    junk.s.write(frameAll([new TextEncoder().encode("not json {")]));
    await Promise.race([junk.closed, Bun.sleep(2000)]);
    expect(junk.s.closed).toBe(true);
    // Random bytes.
    const rnd = open();
    rnd.s.write(crypto.getRandomValues(new Uint8Array(4096)));
    await Promise.race([rnd.closed, Bun.sleep(2000)]);
    expect(b.log.lines.filter((l) => l.msg === "closed malformed stream from remote peer").length).toBeGreaterThanOrEqual(2);
    // Headers missing: refused, not crashed.
    const bare = client.request({ ":method": "POST", ":path": STREAM_PATH });
    bare.on("error", () => {});
    const status = await new Promise<number>((r) => bare.on("response", (h) => r(Number(h[":status"]))));
    expect(status).toBe(412);
    // The same connection and the server still work: a good stream after all that.
    const good = open();
    good.s.write(frameAll([jsonCodec.encode(app(1n, 2n, 42))]));
    await waitFor(() => b.received.length === 1, 2000, "the good message");
    expect(b.received[0].index).toBe(42);
    // And a real peer connects as usual.
    const a = await node(1n);
    a.t.addPeer(2n, [b.url]);
    a.t.send([app(1n, 2n, 43)]);
    await waitFor(() => b.received.length === 2, 2000, "a real peer's message");
    client.destroy();
    expect([H_CLUSTER, H_FROM, H_TO, H_PROTOCOL, PROTOCOL_VERSION].every((h) => h.length > 0)).toBe(true);
  });

  test("messages for unknown peers or after stop are ignored; stop is bounded", async () => {
    const a = await node(1n);
    a.t.send([app(1n, 9n, 0)]);
    a.t.addPeer(2n, ["http://127.0.0.1:1"]);
    a.t.send([app(1n, 2n, 0)]);
    const t0 = performance.now();
    await a.t.stop();
    expect(performance.now() - t0).toBeLessThan(2500);
    a.t.send([app(1n, 2n, 1)]);
  });
});
