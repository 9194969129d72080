// Readable scenario tests of the Raft core, driven through the Harness.
import { describe, expect, test } from "bun:test";
import { RawNode } from "./node.ts";
import { MemoryStorage } from "./storage.ts";
import { type Entry, EntryType, MessageType, Role, msg } from "./types.ts";
import { Harness, enc } from "./sim/harness.ts";
import { mulberry32 as seededRandom } from "../testing/prng.ts";

const ids = [1n, 2n, 3n];

function elect(h: Harness, id: bigint): void {
  h.elect(id);
  expect(h.get(id).raft.role).toBe(Role.Leader);
}

describe("election", () => {
  test("a 3-node cluster elects exactly one leader by ticking", () => {
    const h = new Harness(ids, { seed: 7 });
    h.tick(40);
    expect(h.leaders().length).toBe(1);
    const lead = h.leaders()[0];
    for (const n of h.nodes.values()) expect(n.node.raft.lead).toBe(lead);
    // All agree on the leader's term and have applied its empty entry.
    const term = h.get(lead).raft.term;
    for (const n of h.nodes.values()) {
      expect(n.node.raft.term).toBe(term);
      expect(n.applied.length).toBeGreaterThanOrEqual(1);
    }
  });

  test("single node elects itself and commits at once", () => {
    const h = new Harness([1n]);
    h.tick(25);
    expect(h.leaders()).toEqual([1n]);
    expect(h.get(1n).propose(enc("x"))).toEqual({ ok: true });
    h.settle();
    expect(h.dataApplied(1n)).toEqual(["x"]);
  });

  test("election restriction: a node with a shorter log cannot win", () => {
    const h = new Harness(ids);
    elect(h, 1n);
    h.isolate(3n);
    h.get(1n).propose(enc("a"));
    h.settle();
    h.heal();
    // 1 steps aside (isolated); 3 campaigns but 2 has a longer log and refuses.
    h.isolate(1n);
    h.tick(20, [3n]);
    expect(h.get(3n).raft.role).not.toBe(Role.Leader);
    elect(h, 2n);
    h.heal();
    h.settle();
    expect(h.dataApplied(2n)).toEqual(["a"]);
  });

  test("proposal without a leader is dropped with a clear result", () => {
    const h = new Harness(ids);
    expect(h.get(1n).propose(enc("x"))).toEqual({ ok: false, reason: "no-leader" });
    expect(h.get(1n).readIndex(enc("r"))).toEqual({ ok: false, reason: "no-leader" });
  });

  test("election timeout is randomized in [electionTick, 2*electionTick)", () => {
    for (let seed = 1; seed < 50; seed++) {
      const n = new RawNode({
        id: 1n,
        peers: [1n, 2n],
        storage: new MemoryStorage(),
        electionTick: 10,
        heartbeatTick: 1,
        rand: seededRandom(seed),
      });
      let ticks = 0;
      while (n.raft.role === Role.Follower) {
        n.tick();
        ticks++;
      }
      expect(ticks).toBeGreaterThanOrEqual(10);
      expect(ticks).toBeLessThan(20);
    }
  });
});

describe("check-quorum and pre-vote", () => {
  test("a leader isolated with a minority cannot commit and steps down", () => {
    const five = [1n, 2n, 3n, 4n, 5n];
    const h = new Harness(five);
    elect(h, 1n);
    h.partition([1n, 2n], [3n, 4n, 5n]);
    h.get(1n).propose(enc("lost"));
    h.settle();
    const r1 = h.get(1n).raft;
    const committedBefore = r1.log.committed;
    expect(r1.log.lastIndex()).toBe(committedBefore + 1); // appended, not committed
    // Within two election timeouts (the first check may still count acks from before the cut).
    h.tick(20, [1n]);
    expect(r1.role).toBe(Role.Follower);
    expect(r1.log.committed).toBe(committedBefore);
    // The majority elects a leader and makes progress; the minority's entry is discarded.
    h.tick(30, [3n, 4n, 5n]);
    const lead = h.leaders().find((l) => l !== 1n)!;
    expect([3n, 4n, 5n]).toContain(lead);
    h.get(lead).propose(enc("kept"));
    h.settle();
    h.heal();
    h.tick(5);
    for (const id of five) expect(h.dataApplied(id)).toEqual(["kept"]);
  });

  test("a rejoining partitioned node does not depose a healthy leader (pre-vote)", () => {
    const h = new Harness(ids);
    elect(h, 1n);
    const term = h.get(1n).raft.term;
    h.isolate(3n);
    h.tick(100); // 3 keeps timing out and pre-campaigning, but cannot raise its term
    expect(h.get(3n).raft.term).toBe(term);
    h.heal();
    h.tick(20);
    expect(h.leaders()).toEqual([1n]);
    expect(h.get(1n).raft.term).toBe(term);
    expect(h.get(3n).raft.lead).toBe(1n);
  });

  test("a node with a higher term (no pre-vote) is refused by followers in lease", () => {
    const h = new Harness(ids);
    elect(h, 1n);
    // Simulate a node that bumped its term while cut off.
    h.isolate(3n);
    const r3 = h.get(3n).raft;
    r3.becomeFollower(r3.term + 5, 0n);
    h.heal();
    // 3's vote request at a higher term reaches 2, which hears from leader 1: ignored.
    h.get(2n).step(msg({ type: MessageType.Vote, from: 3n, to: 2n, term: r3.term, index: 100, logTerm: 100 }));
    expect(h.get(2n).raft.term).toBe(h.get(1n).raft.term);
    expect(h.get(2n).raft.vote).toBe(1n);
  });
});

describe("asymmetric partition", () => {
  test("a leader that can send but not hear steps down, and the others elect a new one", () => {
    const h = new Harness(ids);
    elect(h, 1n);
    h.cutLink(2n, 1n);
    h.cutLink(3n, 1n);
    // 2 and 3 still hear 1's heartbeats, so they stay loyal until 1 gives up (check-quorum).
    h.tick(20);
    expect(h.get(1n).raft.role).not.toBe(Role.Leader);
    h.tick(40);
    const leads = h.leaders();
    expect(leads.length).toBe(1);
    expect([2n, 3n]).toContain(leads[0]);
    h.get(leads[0]).propose(enc("after"));
    h.settle();
    expect(h.dataApplied(2n)).toEqual(["after"]);
    expect(h.dataApplied(3n)).toEqual(["after"]);
  });
});

describe("replication", () => {
  test("a follower with a long conflicting log is repaired", () => {
    const h = new Harness(ids);
    elect(h, 1n);
    // 1 leads term 2 but is isolated: it appends many entries nobody else gets.
    h.isolate(1n);
    for (let i = 0; i < 50; i++) h.get(1n).propose(enc(`stale${i}`));
    h.settle();
    elect(h, 2n);
    for (let i = 0; i < 5; i++) h.get(2n).propose(enc(`good${i}`));
    h.settle();
    // 1 still believes it leads; once reconnected it learns the new term and is repaired.
    h.heal();
    h.tick(5);
    const want = ["good0", "good1", "good2", "good3", "good4"];
    for (const id of ids) expect(h.dataApplied(id)).toEqual(want);
    const l1 = h.get(1n).raft.log.allEntries();
    const l2 = h.get(2n).raft.log.allEntries();
    expect(l1.map((e) => [e.index, e.term])).toEqual(l2.map((e) => [e.index, e.term]));
  });

  test("rejection hints skip a whole conflicting term in few round trips", () => {
    const h = new Harness(ids);
    elect(h, 1n);
    h.isolate(1n);
    for (let i = 0; i < 100; i++) h.get(1n).propose(enc(`s${i}`));
    h.settle();
    elect(h, 2n);
    h.get(2n).propose(enc("g"));
    h.settle();
    h.heal();
    // Count App rejections 1 sends while being repaired.
    let rejects = 0;
    const n1 = h.nodes.get(1n)!;
    const orig = n1.node.ready.bind(n1.node);
    n1.node.ready = () => {
      const rd = orig();
      if (rd) rejects += rd.messages.filter((m) => m.type === MessageType.AppResp && m.reject).length;
      return rd;
    };
    h.tick(3);
    expect(h.dataApplied(1n)).toEqual(["g"]);
    expect(rejects).toBeLessThanOrEqual(2);
  });
});

describe("leader commits only current-term entries", () => {
  test("maybeCommit refuses an index whose term is older than the leader's", () => {
    const s = new MemoryStorage();
    const ents: Entry[] = [1, 1, 2].map((t, i) => ({ term: t, index: i + 1, type: EntryType.Normal, data: new Uint8Array() }));
    s.append(ents);
    s.setHardState({ term: 3, vote: 0n, commit: 0 });
    const n = new RawNode({ id: 1n, peers: [1n, 2n, 3n], storage: s, electionTick: 10, heartbeatTick: 1, rand: seededRandom(1) });
    expect(n.raft.log.maybeCommit(3, 3)).toBe(false);
    expect(n.raft.log.maybeCommit(3, 2)).toBe(true);
  });
});

describe("figure 8 of the Raft paper", () => {
  const five = [1n, 2n, 3n, 4n, 5n];
  const applied = (h: Harness, s: string) => five.filter((id) => h.dataApplied(id).includes(s));

  /**
   * (a) S1 leads, puts "A" at index 2 on S1, S2 only. (b) S5 leads a later term with
   * S3, S4's votes but its own index-2 entry reaches nobody. (c) S1 leads again and
   * copies "A" to S3: "A" is now on a majority. Returns after (c); when `termEntryLost`,
   * S1's own new-term entry reached nobody.
   */
  function upToC(termEntryLost: boolean): Harness {
    const h = new Harness(five, { preVote: false, checkQuorum: false, maxSizePerMsg: 1 });
    elect(h, 1n);
    h.partition([1n, 2n], [3n, 4n, 5n]);
    h.get(1n).propose(enc("A"));
    h.settle();
    expect(h.get(2n).raft.log.lastIndex()).toBe(2);

    h.heal();
    h.partition([1n, 2n], [3n, 4n, 5n]);
    h.intercept = (m) => (m.from === 5n && m.type === MessageType.App ? undefined : m);
    elect(h, 5n);
    const t5 = h.get(5n).raft.term;
    expect(h.get(5n).raft.log.term(2)).toBe(t5);
    expect(h.get(3n).raft.log.lastIndex()).toBe(1);
    const r5 = h.get(5n).raft;
    r5.becomeFollower(r5.term, 0n); // S5 crashes and restarts as a follower

    h.heal();
    h.partition([1n, 2n, 3n], [4n], [5n]);
    h.intercept = undefined;
    // S1 restarts (its leadership is volatile state) and campaigns; elect() retries with a
    // new term if the first try falls on S5's term, in which S3 already voted.
    const r1 = h.get(1n).raft;
    r1.becomeFollower(r1.term, 0n);
    const t1 = () => h.get(1n).raft.term;
    // To lose S1's new-term entry, strip it from every App (probes and older entries still flow).
    if (termEntryLost) h.intercept = (m) => (m.type === MessageType.App ? { ...m, entries: m.entries.filter((e) => e.term !== t1()) } : m);
    elect(h, 1n);
    expect(h.get(3n).raft.log.term(2)).toBe(h.get(1n).raft.log.term(2)); // "A" is on S1, S2, S3
    return h;
  }

  test("an old-term entry on a majority is not committed by counting replicas, and may be overwritten", () => {
    const h = upToC(true);
    const r1 = h.get(1n).raft;
    expect(r1.log.lastIndex()).toBe(3);
    expect(r1.log.committed).toBe(1); // "A" at index 2 is on 3 of 5 nodes, yet not committed
    // (d) S1 crashes; S5 (last term newer than "A"'s) wins with S2, S3, S4 and overwrites index 2.
    h.intercept = undefined;
    h.heal();
    h.isolate(1n);
    elect(h, 5n);
    h.get(5n).propose(enc("B"));
    h.settle();
    h.get(1n).raft.becomeFollower(h.get(1n).raft.term, 0n); // S1 restarts
    h.heal();
    h.tick(5);
    expect(h.leaders()).toEqual([5n]);
    expect(applied(h, "A")).toEqual([]); // never applied anywhere: it was never committed
    expect(applied(h, "B")).toEqual(five);
    const log5 = h
      .get(5n)
      .raft.log.allEntries()
      .map((e) => `${e.index}/${e.term}`);
    for (const id of five)
      expect(
        h
          .get(id)
          .raft.log.allEntries()
          .map((e) => `${e.index}/${e.term}`),
      ).toEqual(log5);
  });

  test("(e) once the leader's current-term entry is on a majority, the old entry is committed and safe", () => {
    const h = upToC(false);
    const r1 = h.get(1n).raft;
    expect(r1.log.committed).toBe(3);
    h.isolate(1n);
    h.heal();
    h.isolate(1n);
    h.get(5n).campaign();
    h.settle();
    h.get(5n).campaign();
    h.settle();
    expect(h.get(5n).raft.role).not.toBe(Role.Leader); // S5's log is behind the committed index 3
    h.heal();
    h.tick(30);
    expect(applied(h, "A")).toEqual(five);
  });
});

describe("flow control and forwarding", () => {
  test("a follower's proposal is forwarded to the leader and committed everywhere", () => {
    const h = new Harness(ids);
    elect(h, 1n);
    expect(h.get(3n).propose(enc("via-3"))).toEqual({ ok: true });
    h.settle();
    for (const id of ids) expect(h.dataApplied(id)).toEqual(["via-3"]);
  });

  test("a silent follower in Replicate gets at most maxInflightMsgs unacknowledged Apps", () => {
    const s = new MemoryStorage();
    const n = new RawNode({
      id: 1n,
      peers: [1n, 2n],
      storage: s,
      electionTick: 10,
      heartbeatTick: 1,
      rand: seededRandom(1),
      maxSizePerMsg: 1,
      maxInflightMsgs: 3,
    });
    n.campaign();
    n.step(msg({ type: MessageType.VoteResp, from: 2n, to: 1n, term: 1 }));
    expect(n.raft.role).toBe(Role.Leader);
    n.step(msg({ type: MessageType.AppResp, from: 2n, to: 1n, term: 1, index: 1 })); // now Replicate
    const handle = () => {
      const rd = n.ready()!;
      s.append(rd.entries);
      if (rd.hardState) s.setHardState(rd.hardState);
      n.advance();
      return rd.messages;
    };
    handle();
    for (let i = 0; i < 10; i++) n.propose(enc(`p${i}`));
    const apps = handle().filter((m) => m.type === MessageType.App && m.entries.length > 0);
    expect(apps.length).toBe(3);
    // One ack frees one slot for exactly one more message.
    n.step(msg({ type: MessageType.AppResp, from: 2n, to: 1n, term: 1, index: 2 }));
    const more = handle().filter((m) => m.type === MessageType.App);
    expect(more.map((m) => m.entries.map((e) => e.index))).toEqual([[5]]);
  });

  test("heartbeats never carry a commit index beyond the follower's known match", () => {
    const h = new Harness(ids);
    elect(h, 1n);
    h.isolate(3n);
    h.get(1n).propose(enc("a"));
    h.settle();
    const r1 = h.get(1n).raft;
    expect(r1.log.committed).toBe(2);
    r1.step(msg({ type: MessageType.Beat, from: 1n }));
    const hb = r1.msgs.filter((m) => m.type === MessageType.Heartbeat);
    expect(hb.find((m) => m.to === 2n)!.commit).toBe(2);
    expect(hb.find((m) => m.to === 3n)!.commit).toBe(1);
  });

  test("a leader with a live quorum keeps its leadership over many timeouts", () => {
    const h = new Harness(ids);
    h.tick(30);
    const [lead] = h.leaders();
    const term = h.get(lead).raft.term;
    h.tick(500);
    expect(h.leaders()).toEqual([lead]);
    expect(h.get(lead).raft.term).toBe(term);
  });

  test("committed entries are handed out in size-bounded batches", () => {
    const s = new MemoryStorage();
    const n = new RawNode({
      id: 1n,
      peers: [1n],
      storage: s,
      electionTick: 10,
      heartbeatTick: 1,
      rand: seededRandom(1),
      maxCommittedSizePerReady: 40,
    });
    n.campaign();
    for (let i = 0; i < 5; i++) n.propose(enc(`e${i}`));
    const batches: number[][] = [];
    for (let rd = n.ready(); rd; rd = n.ready()) {
      s.append(rd.entries);
      if (rd.hardState) s.setHardState(rd.hardState);
      batches.push(rd.committedEntries.map((e) => e.index));
      n.advance();
    }
    expect(batches.flat()).toEqual([1, 2, 3, 4, 5, 6]);
    expect(batches.every((b) => b.length <= 2)).toBe(true);
  });
});
