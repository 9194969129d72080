// Readable scenarios for membership changes, learners, leadership transfer
// and snapshots, driven through the synchronous Harness.
import { describe, expect, test } from "bun:test";
import { applyChange, decodeConfChange, encodeConfChange } from "./confchange.ts";
import { ProgressState } from "./progress.ts";
import { ConfChangeType, MessageType, Role } from "./types.ts";
import { Harness, enc } from "./sim/harness.ts";

const add = (nodeId: bigint) => ({ type: ConfChangeType.AddNode, nodeId, context: new Uint8Array() });
const addLearner = (nodeId: bigint) => ({ type: ConfChangeType.AddLearnerNode, nodeId, context: new Uint8Array() });
const remove = (nodeId: bigint) => ({ type: ConfChangeType.RemoveNode, nodeId, context: new Uint8Array() });

function leaderOf(h: Harness): bigint {
  const ls = h.leaders();
  expect(ls.length).toBe(1);
  return ls[0];
}

describe("conf change encoding and rules", () => {
  test("round trip, including a 64-bit id and a context", () => {
    const cc = { type: ConfChangeType.AddLearnerNode, nodeId: 0xffffffffffffffffn, context: enc('{"name":"m4"}') };
    expect(decodeConfChange(encodeConfChange(cc))).toEqual(cc);
    expect(() => decodeConfChange(new Uint8Array([0x10, 0x80]))).toThrow(/truncated/);
    expect(() => decodeConfChange(new Uint8Array([0x10, 9]))).toThrow(/unsupported/);
  });

  test("UpdateNode (etcd's member update) leaves the configuration as it is", () => {
    const cs = { voters: [1n, 2n], learners: [3n] };
    for (const nodeId of [1n, 3n, 9n]) {
      expect(applyChange(cs, { type: ConfChangeType.UpdateNode, nodeId, context: enc("{}") })).toEqual(cs);
    }
    const cc = { type: ConfChangeType.UpdateNode, nodeId: 2n, context: enc("x") };
    expect(decodeConfChange(encodeConfChange(cc))).toEqual(cc);
  });

  test("applyChange: idempotent adds, promotion, no demotion, never the last voter", () => {
    const cs = { voters: [1n, 2n], learners: [3n] };
    expect(applyChange(cs, add(1n))).toBe(cs); // re-applied after a restart: no change
    expect(applyChange(cs, add(3n))).toEqual({ voters: [1n, 2n, 3n], learners: [] });
    expect(applyChange(cs, addLearner(2n))).toBe(cs); // demotion refused
    expect(applyChange(cs, add(0n))).toBe(cs); // neutralized by the application: nothing
    expect(applyChange(cs, remove(3n))).toEqual({ voters: [1n, 2n], learners: [] });
    expect(applyChange({ voters: [1n], learners: [] }, remove(1n))).toEqual({ voters: [1n], learners: [] });
  });
});

describe("learners", () => {
  test("a learner replicates but does not count for commit", () => {
    const h = new Harness([1n, 2n, 3n], { learners: [4n] });
    h.elect(1n);
    h.get(1n).propose(enc("a"));
    h.settle();
    expect(h.dataApplied(4n)).toEqual(["a"]);
    // With both other voters cut off, leader + learner are two of four nodes but one of three voters.
    h.isolate(2n);
    h.isolate(3n);
    h.get(1n).propose(enc("b"));
    h.settle();
    expect(h.get(4n).raft.log.lastIndex()).toBe(h.get(1n).raft.log.lastIndex());
    expect(h.dataApplied(1n)).toEqual(["a"]);
  });

  test("a learner never campaigns, and its vote does not count", () => {
    const h = new Harness([1n, 2n, 3n], { learners: [4n] });
    h.elect(1n);
    h.isolate(1n);
    h.tick(60, [4n]);
    expect(h.get(4n).raft.role).toBe(Role.Follower);
    // Node 2 campaigns with only the learner reachable: the learner's vote is not enough.
    h.isolate(3n);
    h.expireLeases();
    h.get(2n).campaign();
    h.settle();
    expect(h.get(2n).raft.role).not.toBe(Role.Leader);
  });

  test("a learner is promoted and then counts", () => {
    const h = new Harness([1n, 2n, 3n], { learners: [4n] });
    h.elect(1n);
    expect(h.get(1n).proposeConfChange(add(4n))).toEqual({ ok: true });
    h.settle();
    for (const n of h.nodes.values()) expect(n.conf).toEqual({ voters: [1n, 2n, 3n, 4n], learners: [] });
    // Four voters: leader + the promoted node is not a majority; with node 2 it is.
    h.isolate(3n);
    h.isolate(2n);
    h.get(1n).propose(enc("x"));
    h.settle();
    expect(h.dataApplied(1n)).toEqual([]);
    h.heal();
    h.isolate(3n);
    h.get(1n).propose(enc("y"));
    h.settle();
    expect(h.dataApplied(1n)).toEqual(["x", "y"]);
  });
});

describe("membership changes", () => {
  test("a node joins as a learner with an empty log, catches up, is promoted", () => {
    const h = new Harness([1n, 2n, 3n], { bootstrap: true });
    h.elect(1n);
    for (const v of ["a", "b", "c"]) h.get(1n).propose(enc(v));
    h.settle();
    expect(h.get(1n).proposeConfChange(addLearner(4n))).toEqual({ ok: true });
    h.settle();
    h.addNode(4n); // empty, knows nothing: learns membership from the log
    h.tick(2);
    expect(h.dataApplied(4n)).toEqual(["a", "b", "c"]);
    expect(h.nodes.get(4n)!.conf).toEqual({ voters: [1n, 2n, 3n], learners: [4n] });
    h.get(1n).proposeConfChange(add(4n));
    h.settle();
    expect(h.nodes.get(4n)!.conf.voters).toContain(4n);
    expect(h.get(4n).raft.promotable()).toBe(true);
  });

  test("one change at a time: a second change waits until the first is applied", () => {
    const h = new Harness([1n, 2n, 3n]);
    h.elect(1n);
    h.isolate(2n);
    h.isolate(3n);
    expect(h.get(1n).proposeConfChange(addLearner(4n))).toEqual({ ok: true });
    h.settle(); // cannot commit: no quorum
    expect(h.get(1n).proposeConfChange(addLearner(5n))).toEqual({ ok: false, reason: "conf-change-pending" });
    h.heal();
    h.tick(1);
    expect(h.get(1n).proposeConfChange(addLearner(5n))).toEqual({ ok: true });
  });

  test("a new leader accepts no change before an entry of its own term is applied", () => {
    const h = new Harness([1n, 2n, 3n]);
    h.elect(1n);
    h.isolate(1n);
    // 2 wins with 3's vote, but 3's acknowledgements are lost: nothing of 2's term commits.
    h.intercept = (m) => (m.type === MessageType.AppResp && m.from === 3n ? undefined : m);
    h.expireLeases();
    h.get(2n).campaign();
    h.settle();
    expect(h.get(2n).raft.role).toBe(Role.Leader);
    expect(h.get(2n).proposeConfChange(remove(1n))).toEqual({ ok: false, reason: "conf-change-pending" });
    h.intercept = undefined;
    h.tick(1);
    expect(h.get(2n).proposeConfChange(remove(1n))).toEqual({ ok: true });
  });

  test("removing a follower: the rest commit without it", () => {
    const h = new Harness([1n, 2n, 3n]);
    h.elect(1n);
    h.get(1n).proposeConfChange(remove(3n));
    h.settle();
    h.stopNode(3n);
    h.isolate(2n);
    h.get(1n).propose(enc("needs 2"));
    h.settle();
    expect(h.dataApplied(1n)).toEqual([]); // {1, 2}: 2 is needed
    h.heal();
    h.tick(1);
    expect(h.dataApplied(1n)).toEqual(["needs 2"]);
  });

  test("a removed leader hands over to a caught-up voter at once, then steps down", () => {
    const h = new Harness([1n, 2n, 3n]);
    h.elect(1n);
    h.get(1n).propose(enc("a"));
    h.settle();
    const term = h.get(1n).raft.term;
    h.get(1n).proposeConfChange(remove(1n));
    h.settle();
    // Removed, 1 only hands over: it refuses proposals and asked a caught-up voter to
    // campaign at once (TimeoutNow), so no election timeout had to pass.
    expect(h.get(1n).propose(enc("refused"))).toEqual({ ok: false, reason: "no-leader" });
    const successor = h.leaders().find((id) => id !== 1n)!;
    expect(h.get(successor).raft.term).toBe(term + 1);
    // Its next heartbeat meets the higher term: it steps down.
    h.tick(1);
    expect(h.get(1n).raft.role).toBe(Role.Follower);
    const lead = leaderOf(h);
    expect(lead).toBe(successor);
    h.stopNode(1n);
    h.get(lead).propose(enc("b"));
    h.settle();
    for (const id of [2n, 3n]) expect(h.dataApplied(id)).toEqual(["a", "b"]);
    for (const id of [2n, 3n]) expect(h.nodes.get(id)!.conf).toEqual({ voters: [2n, 3n], learners: [] });
  });

  test("two members, the leader removes itself and loses leadership holding the longest log: the survivor still gets there", () => {
    const h = new Harness([1n, 2n], { maxSizePerMsg: 1 });
    h.elect(1n);
    h.get(1n).proposeConfChange(remove(1n));
    const removalAt = h.get(1n).raft.log.lastIndex();
    h.get(1n).propose(enc("late"));
    // 2 acknowledges the removal (so it commits on 1) but never hears that it committed,
    // nor gets "late": 1 ends up with the longest log, 2 still counts 1 in its quorum.
    h.intercept = (m) => {
      if (m.from !== 1n || m.to !== 2n) return m;
      if (m.entries.some((e) => e.index > removalAt)) return undefined;
      if (m.commit >= removalAt) return undefined;
      return m;
    };
    h.settle();
    expect(h.nodes.get(1n)!.conf).toEqual({ voters: [2n], learners: [] });
    expect(h.nodes.get(2n)!.conf).toEqual({ voters: [1n, 2n], learners: [] });
    expect(h.get(2n).raft.log.lastIndex()).toBe(removalAt);
    const term = h.get(1n).raft.term;
    h.tick(40); // 2 campaigns (1 refuses its shorter log); 1 loses leadership
    expect(h.get(1n).raft.term).toBeGreaterThan(term);
    h.intercept = undefined;
    // 1 campaigns with the new configuration's votes only (2's), wins, hands over.
    h.tick(100);
    expect(h.nodes.get(2n)!.conf).toEqual({ voters: [2n], learners: [] });
    expect(h.get(2n).raft.role).toBe(Role.Leader);
    expect(h.get(2n).propose(enc("after"))).toEqual({ ok: true });
    h.settle();
    expect(h.dataApplied(2n)).toEqual(["late", "after"]);
  });

  test("a removed node that missed its removal cannot disturb the rest (it is not asked and not counted)", () => {
    const h = new Harness([1n, 2n, 3n]);
    h.elect(1n);
    h.isolate(3n);
    h.get(1n).proposeConfChange(remove(3n));
    h.settle();
    h.heal();
    h.tick(50);
    expect(leaderOf(h)).toBe(1n);
    expect(h.get(1n).raft.prs.has(3n)).toBe(false);
  });
});

describe("leadership transfer", () => {
  test("to an up-to-date follower: it wins the next term at once", () => {
    const h = new Harness([1n, 2n, 3n]);
    h.elect(1n);
    const term = h.get(1n).raft.term;
    expect(h.get(1n).transferLeader(3n)).toEqual({ ok: true });
    h.settle();
    expect(leaderOf(h)).toBe(3n);
    expect(h.get(3n).raft.term).toBe(term + 1);
  });

  test("to a lagging follower: proposals are refused until it has caught up and won", () => {
    const h = new Harness([1n, 2n, 3n]);
    h.elect(1n);
    h.isolate(3n);
    for (const v of ["a", "b", "c"]) h.get(1n).propose(enc(v));
    h.settle();
    expect(h.get(1n).transferLeader(3n)).toEqual({ ok: true });
    h.settle();
    expect(h.get(1n).propose(enc("during"))).toEqual({ ok: false, reason: "transferring" });
    expect(h.get(1n).raft.leadTransferee).toBe(3n);
    h.heal();
    h.tick(1); // heartbeat -> 3 answers -> catches up -> TimeoutNow
    expect(leaderOf(h)).toBe(3n);
    expect(h.dataApplied(3n)).toEqual(["a", "b", "c"]);
    expect(h.get(3n).propose(enc("after"))).toEqual({ ok: true });
    h.settle();
    expect(h.dataApplied(1n)).toEqual(["a", "b", "c", "after"]);
  });

  test("a transfer to an unreachable node is abandoned after an election timeout", () => {
    const h = new Harness([1n, 2n, 3n]);
    h.elect(1n);
    h.isolate(3n);
    h.get(1n).transferLeader(3n);
    h.tick(5, [1n, 2n]);
    expect(h.get(1n).propose(enc("x")).ok).toBe(false);
    h.tick(10, [1n, 2n]);
    expect(h.get(1n).raft.leadTransferee).toBe(0n);
    expect(h.get(1n).propose(enc("x"))).toEqual({ ok: true });
    expect(leaderOf(h)).toBe(1n);
  });

  test("a follower forwards the request; a learner cannot be made leader", () => {
    const h = new Harness([1n, 2n, 3n], { learners: [4n] });
    h.elect(1n);
    expect(h.get(1n).transferLeader(4n)).toEqual({ ok: false, reason: "invalid" });
    h.get(2n).transferLeader(2n);
    h.settle();
    expect(leaderOf(h)).toBe(2n);
  });

  test("TimeoutNow's campaign is granted despite the voters' leader lease (check-quorum)", () => {
    const h = new Harness([1n, 2n, 3n], { checkQuorum: true, preVote: true });
    h.elect(1n);
    let sawTimeoutNow = false;
    h.intercept = (m) => {
      if (m.type === MessageType.TimeoutNow) sawTimeoutNow = true;
      return m;
    };
    h.get(1n).transferLeader(2n);
    h.settle();
    expect(sawTimeoutNow).toBe(true);
    expect(leaderOf(h)).toBe(2n);
  });
});

describe("snapshots", () => {
  test("a follower behind the compacted log is caught up by a snapshot, then by entries", () => {
    const h = new Harness([1n, 2n, 3n]);
    h.elect(1n);
    h.isolate(3n);
    for (let i = 0; i < 20; i++) h.get(1n).propose(enc(`v${i}`));
    h.settle();
    const snap = h.compact(1n);
    expect(h.nodes.get(1n)!.storage.firstIndex()).toBe(snap.meta.index + 1);
    h.heal();
    h.tick(1);
    const n3 = h.nodes.get(3n)!;
    expect(n3.installed.map((s) => s.meta.index)).toEqual([snap.meta.index]);
    h.get(1n).propose(enc("after"));
    h.settle();
    expect(h.dataApplied(3n)).toEqual(h.dataApplied(1n));
    expect(h.dataApplied(3n).at(-1)).toBe("after");
    expect(h.get(1n).raft.prs.get(3n)!.state).toBe(ProgressState.Replicate);
  });

  test("a lost snapshot is retried after the transport reports the failure", () => {
    const h = new Harness([1n, 2n, 3n]);
    h.elect(1n);
    h.isolate(3n);
    for (let i = 0; i < 5; i++) h.get(1n).propose(enc(`v${i}`));
    h.settle();
    h.compact(1n);
    h.heal();
    let dropped = 0;
    h.intercept = (m) => (m.type === MessageType.Snap && dropped++ === 0 ? undefined : m);
    h.tick(3);
    expect(dropped).toBe(2);
    expect(h.dataApplied(3n)).toEqual(h.dataApplied(1n));
  });

  test("a joining node whose log would start below the leader's first index gets the snapshot with the membership", () => {
    const h = new Harness([1n, 2n, 3n]);
    h.elect(1n);
    h.get(1n).proposeConfChange(addLearner(4n));
    h.get(1n).propose(enc("a"));
    h.settle();
    h.compact(1n);
    h.addNode(4n);
    h.tick(2);
    const n4 = h.nodes.get(4n)!;
    expect(n4.installed.length).toBe(1);
    expect(n4.conf).toEqual({ voters: [1n, 2n, 3n], learners: [4n] });
    expect(h.dataApplied(4n)).toEqual(["a"]);
  });

  test("a snapshot older than the follower's commit is ignored", () => {
    const h = new Harness([1n, 2n]);
    h.elect(1n);
    h.get(1n).propose(enc("a"));
    h.settle();
    const snap = h.compact(1n);
    const before = h.get(2n).raft.log.committed;
    h.get(2n).step({
      type: MessageType.Snap,
      from: 1n,
      to: 2n,
      term: h.get(1n).raft.term,
      logTerm: 0,
      index: 0,
      entries: [],
      commit: 0,
      reject: false,
      rejectHint: 0,
      context: new Uint8Array(),
      snapshot: snap,
    });
    h.settle();
    expect(h.get(2n).raft.log.committed).toBe(before);
    expect(h.nodes.get(2n)!.installed).toEqual([]);
  });
});
