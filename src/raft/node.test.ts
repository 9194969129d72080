// The RawNode contract (ready/advance) and ReadIndex.
import { describe, expect, test } from "bun:test";
import { RawNode } from "./node.ts";
import { MemoryStorage } from "./storage.ts";
import { MessageType, Role, msg } from "./types.ts";
import { Harness, enc } from "./sim/harness.ts";
import { mulberry32 as seededRandom } from "../testing/prng.ts";

const ids = [1n, 2n, 3n];
const dec = (b: Uint8Array) => new TextDecoder().decode(b);

describe("RawNode", () => {
  const fresh = () => new RawNode({ id: 1n, peers: [1n, 2n, 3n], storage: new MemoryStorage(), electionTick: 10, heartbeatTick: 1, rand: seededRandom(3) });

  test("no Ready when there is nothing to do; campaigning produces one", () => {
    const n = fresh();
    expect(n.hasReady()).toBe(false);
    expect(n.ready()).toBeUndefined();
    n.campaign();
    const rd = n.ready()!;
    expect(rd.softState?.role).toBe(Role.Candidate);
    expect(rd.hardState).toEqual({ term: 1, vote: 1n, commit: 0 });
    expect(rd.messages.map((m) => [m.type, m.to])).toEqual([
      [MessageType.Vote, 2n],
      [MessageType.Vote, 3n],
    ]);
    n.advance();
    expect(n.ready()).toBeUndefined(); // nothing is handed out twice
  });

  test("ready() twice without advance() is a driver bug", () => {
    const n = fresh();
    n.campaign();
    n.ready();
    expect(() => n.ready()).toThrow(/advance/);
  });

  test("advance() without persisting the entries is a driver bug", () => {
    const n = new RawNode({ id: 1n, peers: [1n], storage: new MemoryStorage(), electionTick: 10, heartbeatTick: 1, rand: seededRandom(3) });
    n.campaign();
    expect(n.ready()!.entries.length).toBe(1);
    expect(() => n.advance()).toThrow(/persisted/);
  });

  test("local message types from the network are refused", () => {
    const n = fresh();
    n.step(msg({ type: MessageType.Hup, from: 2n, to: 1n }));
    n.step(msg({ type: MessageType.Hup, from: 2n, to: 1n, term: 5 }));
    expect(n.raft.role).toBe(Role.Follower);
  });

  test("restart from storage keeps term, vote, commit and log", () => {
    const h = new Harness(ids);
    h.elect(1n);
    h.get(1n).propose(enc("x"));
    h.settle();
    const s = h.nodes.get(2n)!.storage;
    const again = new RawNode({ id: 2n, peers: ids, storage: s, electionTick: 10, heartbeatTick: 1, rand: seededRandom(1) });
    expect(again.raft.term).toBe(h.get(2n).raft.term);
    expect(again.raft.vote).toBe(1n);
    expect(again.raft.log.lastIndex()).toBe(2);
    // Commit was persisted; the app (applied = 0) gets every committed entry again.
    const rd = again.ready()!;
    expect(rd.committedEntries.map((e) => dec(e.data))).toEqual(["", "x"]);
    expect(rd.hardState).toBeUndefined(); // already on disk
  });
});

describe("ReadIndex (safe)", () => {
  test("the leader answers after a heartbeat round confirms its leadership", () => {
    const h = new Harness(ids);
    h.elect(1n);
    h.get(1n).propose(enc("a"));
    h.settle();
    h.get(1n).readIndex(enc("r1"));
    h.settle();
    const reads = h.nodes.get(1n)!.reads;
    expect(reads.map((r) => [r.index, dec(r.context)])).toEqual([[2, "r1"]]);
  });

  test("a follower's read is forwarded and answered with the leader's commit index", () => {
    const h = new Harness(ids);
    h.elect(1n);
    h.get(1n).propose(enc("a"));
    h.settle();
    expect(h.get(3n).readIndex(enc("f1"))).toEqual({ ok: true });
    h.settle();
    expect(h.nodes.get(3n)!.reads.map((r) => [r.index, dec(r.context)])).toEqual([[2, "f1"]]);
  });

  test("a leader cut off from the majority serves no read", () => {
    const h = new Harness(ids);
    h.elect(1n);
    h.isolate(1n);
    h.get(1n).readIndex(enc("stale"));
    h.settle();
    expect(h.nodes.get(1n)!.reads).toEqual([]);
    // Meanwhile the majority moves on and a new leader serves reads.
    h.elect(2n);
    h.get(2n).propose(enc("b"));
    h.settle();
    h.get(2n).readIndex(enc("fresh"));
    h.settle();
    expect(h.nodes.get(2n)!.reads.map((r) => dec(r.context))).toEqual(["fresh"]);
    h.heal();
    h.tick(3);
    expect(h.nodes.get(1n)!.reads).toEqual([]); // the stale request is never answered
  });

  test("a new leader defers reads until an entry of its term commits", () => {
    const h = new Harness(ids);
    h.elect(1n);
    // 1 wins term but its empty entry cannot reach anyone yet.
    const r1 = h.get(1n).raft;
    h.expireLeases();
    r1.becomeFollower(r1.term, 0n);
    h.heal();
    h.intercept = (m) => (m.type === MessageType.App || m.type === MessageType.Heartbeat ? undefined : m);
    h.elect(1n);
    h.get(1n).readIndex(enc("early"));
    h.settle();
    expect(h.nodes.get(1n)!.reads).toEqual([]);
    h.intercept = undefined;
    h.tick(2);
    const reads = h.nodes.get(1n)!.reads;
    expect(reads.map((r) => dec(r.context))).toEqual(["early"]);
    expect(reads[0].index).toBe(r1.log.committed);
    expect(r1.log.term(reads[0].index)).toBe(r1.term);
  });

  test("single-node reads are answered at once", () => {
    const h = new Harness([1n]);
    h.elect(1n);
    h.get(1n).readIndex(enc("solo"));
    h.settle();
    expect(h.nodes.get(1n)!.reads.map((r) => [r.index, dec(r.context)])).toEqual([[1, "solo"]]);
  });
});
