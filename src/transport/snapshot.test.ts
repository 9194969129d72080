import { afterEach, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { MessageType, msg, type Message } from "../raft/types.js";
import { startNode, waitFor, type TestNode } from "./test-support.js";

const nodes: TestNode[] = [];
afterEach(async () => {
  await Promise.all(nodes.splice(0).map((n) => n.t.stop()));
});

async function node(id: bigint, extra: Parameters<typeof startNode>[1] = {}): Promise<TestNode> {
  const n = await startNode(id, extra);
  nodes.push(n);
  return n;
}

function snapMsg(from: bigint, to: bigint, index: number): Message {
  return msg({
    type: MessageType.Snap,
    from,
    to,
    term: 3,
    snapshot: { meta: { index, term: 3, confState: { voters: [from, to], learners: [] } }, data: new Uint8Array(0) },
  });
}

/** Deterministic pseudo-random bytes, `size` in total, in uneven chunks. */
async function* dataStream(size: number, seed: number, delayEveryBytes = 0): AsyncIterable<Uint8Array> {
  let x = seed >>> 0;
  let sent = 0;
  let sinceDelay = 0;
  while (sent < size) {
    const n = Math.min(size - sent, 100_000 + (x % 900_000));
    const chunk = new Uint8Array(n);
    for (let i = 0; i < n; i += 4) {
      x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
      chunk[i] = x;
      chunk[i + 1] = x >>> 8;
      chunk[i + 2] = x >>> 16;
      chunk[i + 3] = x >>> 24;
    }
    sent += n;
    sinceDelay += n;
    yield chunk;
    if (delayEveryBytes > 0 && sinceDelay >= delayEveryBytes) {
      sinceDelay = 0;
      await Bun.sleep(20);
    }
  }
}

async function sha256Of(it: AsyncIterable<Uint8Array>): Promise<string> {
  const h = createHash("sha256");
  for await (const c of it) h.update(c);
  return h.digest("hex");
}

describe("snapshots", () => {
  test("a 20 MiB snapshot arrives intact and both sides hear of it", async () => {
    const SIZE = 20 * 1024 * 1024;
    const got: Array<{ m: Message; file: string }> = [];
    const b = await node(2n, { onSnapshot: (m, file) => void got.push({ m, file }) });
    const statuses: Array<[bigint, boolean]> = [];
    const a = await node(1n, {
      onSnapshotStatus: (p, ok) => statuses.push([p, ok]),
      openSnapshotData: () => dataStream(SIZE, 7),
    });
    a.t.addPeer(2n, [b.url]);
    b.t.addPeer(1n, [a.url]);
    a.t.send([snapMsg(1n, 2n, 1234)]);
    // Messages keep flowing on the message stream meanwhile.
    a.t.send([msg({ type: MessageType.Heartbeat, from: 1n, to: 2n, term: 3 })]);
    await waitFor(() => statuses.length > 0, 10_000, "the snapshot status");
    expect(statuses).toEqual([[2n, true]]);
    expect(got.length).toBe(1);
    expect(got[0].m.snapshot!.meta.index).toBe(1234);
    expect(got[0].m.from).toBe(1n);
    const data = readFileSync(got[0].file);
    expect(data.length).toBe(SIZE);
    expect(createHash("sha256").update(data).digest("hex")).toBe(await sha256Of(dataStream(SIZE, 7)));
    // No temporary files left.
    expect(readdirSync(b.opts.snapshotDir).filter((f) => f.endsWith(".tmp"))).toEqual([]);
    await waitFor(() => b.received.some((m) => m.type === MessageType.Heartbeat), 2000, "the heartbeat");
  });

  test("a receiver killed mid-snapshot reports failure to the sender", async () => {
    const b = await node(2n);
    const statuses: Array<[bigint, boolean]> = [];
    const a = await node(1n, {
      onSnapshotStatus: (p, ok) => statuses.push([p, ok]),
      // Slow enough to be mid-transfer when the receiver dies.
      openSnapshotData: () => dataStream(64 * 1024 * 1024, 1, 1024 * 1024),
    });
    a.t.addPeer(2n, [b.url]);
    a.t.send([snapMsg(1n, 2n, 5)]);
    await waitFor(() => b.log.has("receiving database snapshot") !== undefined, 3000, "the transfer to start");
    await Bun.sleep(50);
    await b.t.stop();
    await waitFor(() => statuses.length > 0, 5000, "the snapshot status");
    expect(statuses).toEqual([[2n, false]]);
    expect(a.unreachable).toContain(2n);
    expect(a.log.has("failed to send database snapshot")).toBeDefined();
    expect(readdirSync(b.opts.snapshotDir)).toEqual([]);
  });

  test("an oversized snapshot is refused, and a stalled one times out", async () => {
    const b = await node(2n, { limits: { maxSnapshotBytes: 1024 * 1024, snapshotIdleTimeoutMs: 300 } });
    const statuses: boolean[] = [];
    let stall = false;
    const a = await node(1n, {
      onSnapshotStatus: (_p, ok) => statuses.push(ok),
      openSnapshotData: () =>
        stall
          ? (async function* () {
              yield new Uint8Array(1000);
              await Bun.sleep(60_000);
            })()
          : dataStream(4 * 1024 * 1024, 2),
      limits: { snapshotIdleTimeoutMs: 5000, backoffMinMs: 20, backoffMaxMs: 100 },
    });
    a.t.addPeer(2n, [b.url]);
    a.t.send([snapMsg(1n, 2n, 5)]);
    await waitFor(() => statuses.length === 1, 5000, "the oversized snapshot's status");
    expect(statuses).toEqual([false]);
    expect(b.log.has("failed to receive database snapshot")!.fields!.error).toContain("exceeds the limit");
    stall = true;
    a.t.send([snapMsg(1n, 2n, 6)]);
    await waitFor(() => statuses.length === 2, 5000, "the stalled snapshot's status");
    expect(statuses).toEqual([false, false]);
    expect(b.log.lines.some((l) => String(l.fields?.error ?? "").includes("no data for 300 ms"))).toBe(true);
    expect(readdirSync(b.opts.snapshotDir)).toEqual([]);
  });
});
