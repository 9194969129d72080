// ClusterOps against a fake member: URL validation, id derivation, etcd's
// strict reconfiguration checks, promotion on the leader and forwarding from
// a follower, and errors from the apply step reaching the caller.
import { describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { EtcdError, Errors } from "../errors.ts";
import { type ConfChange, ConfChangeType } from "../raft/types.ts";
import { openDatabase } from "../storage/db.ts";
import { ClusterOps, type ClusterDeps, HEALTH_INTERVAL_MS, newMemberId, parsePeerURLs } from "./cluster-ops.ts";
import type { MemberInfo } from "./member-info.ts";
import { decodeContext, encodeMemberContext, Membership } from "./membership.ts";

const NOW = 1_700_000_000_123;

interface Fake extends ClusterDeps {
  proposed: ConfChange[];
  barriers: number;
  forwarded: [bigint, bigint][];
  active: Map<bigint, number>;
  match: Map<bigint, number>;
  leader: bigint;
  clock: number;
}

/** A member whose proposals apply at once to a real Membership; `members` are bootstrapped as started voters. */
function fake(members: Partial<MemberInfo>[], over: Partial<ClusterDeps> = {}): { deps: Fake; ops: ClusterOps } {
  const db = openDatabase(":memory:");
  const membership = new Membership(db);
  members.forEach((m, i) => {
    const full: MemberInfo = { id: BigInt(i + 1), name: `m${i + 1}`, peerURLs: [`http://10.0.0.${i + 1}:2380`], clientURLs: [], isLearner: false, ...m };
    const r = membership.applyConfChange({
      type: full.isLearner ? ConfChangeType.AddLearnerNode : ConfChangeType.AddNode,
      nodeId: full.id,
      context: encodeMemberContext(full),
    });
    if (r.error) throw r.error;
  });
  const deps: Fake = {
    selfId: 1n,
    strictReconfigCheck: true,
    membership,
    proposed: [],
    barriers: 0,
    forwarded: [],
    active: new Map(),
    match: new Map(),
    leader: 1n,
    clock: NOW,
    isLeader() {
      return deps.leader === deps.selfId;
    },
    leaderId() {
      return deps.leader;
    },
    progress() {
      return new Map(deps.match);
    },
    activeSince(id) {
      return deps.active.get(id);
    },
    now() {
      return deps.clock;
    },
    async proposeConfChange(cc) {
      deps.proposed.push(cc);
      const r = db.transaction(() => membership.applyConfChange(cc))();
      if (r.error) throw r.error;
    },
    async linearizableBarrier() {
      deps.barriers++;
    },
    async forwardPromote(leader, id) {
      deps.forwarded.push([leader, id]);
      return [];
    },
    ...over,
  };
  // Every peer connected long enough by default.
  for (let i = 2; i <= members.length; i++) deps.active.set(BigInt(i), NOW - HEALTH_INTERVAL_MS - 1);
  return { deps, ops: new ClusterOps(deps) };
}

/** Awaits `p` and expects it to fail with `want` (message and code). */
async function rejects(p: Promise<unknown>, want: EtcdError): Promise<void> {
  let got: unknown;
  try {
    await p;
  } catch (e) {
    got = e;
  }
  expect(got).toBeInstanceOf(EtcdError);
  expect((got as EtcdError).message).toBe(want.message);
  expect((got as EtcdError).code).toBe(want.code);
}

describe("peer URLs", () => {
  test("accepted like etcd's types.NewURLs, trimmed, scheme lowercased, sorted", () => {
    expect(parsePeerURLs([" http://b:2380 ", "HTTPS://a:1", "unix://sock:0", "unixs://s:", "http://[::1]:2380", "http://u@h:1?q"])).toEqual([
      "http://[::1]:2380",
      "http://b:2380",
      "http://u@h:1?q",
      "https://a:1",
      "unix://sock:0",
      "unixs://s:",
    ]);
  });

  test("refused → memberBadURLs", () => {
    const bad = [
      [],
      ["127.0.0.1:2380"],
      ["ftp://a:1"],
      ["http://a"],
      ["http://a:1/path"],
      ["http://a:1/"],
      ["http://a:b"],
      ["http://::1:2380"],
      ["http://[::1]"],
      ["http://a:1", "nonsense"],
    ];
    for (const urls of bad) {
      let err: unknown;
      try {
        parsePeerURLs(urls);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(EtcdError);
      expect((err as EtcdError).message).toBe(Errors.memberBadURLs().message);
    }
  });
});

describe("member id", () => {
  test("sha1(sorted URLs + cluster name + unix seconds), first 8 bytes big-endian", () => {
    const want = createHash("sha1").update("http://a:1http://b:21700000000").digest().readBigUInt64BE(0);
    expect(newMemberId(["http://a:1", "http://b:2"], "", 1700000000)).toBe(want);
    expect(newMemberId(["http://a:1"], "", 1)).not.toBe(newMemberId(["http://a:1"], "", 2));
  });
});

describe("memberAdd", () => {
  test("proposes the member as etcd builds it and returns it with the list after", async () => {
    const { deps, ops } = fake([{}, {}, {}]);
    const r = await ops.memberAdd(["http://z:2380", "http://y:2380"], false);
    const id = newMemberId(["http://y:2380", "http://z:2380"], "", Math.floor(NOW / 1000));
    expect(r.member).toEqual({ id, name: "", peerURLs: ["http://y:2380", "http://z:2380"], clientURLs: [], isLearner: false });
    expect(deps.proposed).toHaveLength(1);
    expect(deps.proposed[0].type).toBe(ConfChangeType.AddNode);
    expect(deps.proposed[0].nodeId).toBe(id);
    expect(decodeContext(deps.proposed[0].context)).toEqual({ member: r.member, promote: false });
    expect(r.members.map((m) => m.id)).toEqual(deps.membership.list().map((m) => m.id));
    expect(r.members.some((m) => m.id === id)).toBe(true);
  });

  test("a learner is proposed as AddLearnerNode", async () => {
    const { deps, ops } = fake([{}, {}, {}]);
    const r = await ops.memberAdd(["http://l:2380"], true);
    expect(r.member.isLearner).toBe(true);
    expect(deps.proposed[0].type).toBe(ConfChangeType.AddLearnerNode);
    expect(deps.membership.get(r.member.id)!.isLearner).toBe(true);
  });

  test("bad URLs fail before anything is proposed", async () => {
    const { deps, ops } = fake([{}]);
    await rejects(ops.memberAdd(["http://x:1/p"], false), Errors.memberBadURLs());
    expect(deps.proposed).toHaveLength(0);
  });

  test("errors decided at apply reach the caller: peerURLExist, tooManyLearners", async () => {
    const { ops } = fake([{}, {}, {}]);
    await rejects(ops.memberAdd(["http://10.0.0.2:2380"], false), Errors.peerURLExist());
    await ops.memberAdd(["http://l1:2380"], true);
    await rejects(ops.memberAdd(["http://l2:2380"], true), Errors.tooManyLearners());
  });

  test("the same URLs in the same second give the same id → memberExist (from apply)", async () => {
    const { deps, ops } = fake([{}]);
    const first = await ops.memberAdd(["http://n:1"], true);
    expect(newMemberId(["http://n:1"], "", Math.floor((NOW + 999 - 123) / 1000))).toBe(first.member.id);
    // A second add of that id (other URLs, so the URL check cannot answer first).
    const again: MemberInfo = { ...first.member, peerURLs: ["http://other:1"] };
    await rejects(deps.proposeConfChange({ type: ConfChangeType.AddLearnerNode, nodeId: again.id, context: encodeMemberContext(again) }), Errors.memberExist());
  });

  test("strict: a voter needs a started quorum after the add → memberNotEnoughStarted", async () => {
    // 3 voters, 1 started (named): 4 members after the add need 3 started.
    const { deps, ops } = fake([{}, { name: "" }, { name: "" }]);
    await rejects(ops.memberAdd(["http://v:1"], false), Errors.memberNotEnoughStarted());
    expect(deps.proposed).toHaveLength(0);
    // A learner skips that check.
    await ops.memberAdd(["http://l:1"], true);
  });

  test("strict: a one-member cluster may always add its second member", async () => {
    const { ops } = fake([{}]);
    await ops.memberAdd(["http://v:1"], false);
  });

  test("strict: 2 started of 3 voters is not enough (2 < quorum 3 of 4); 3 of 4 is (quorum 3 of 5)", async () => {
    const { ops } = fake([{}, {}, { name: "" }]);
    await rejects(ops.memberAdd(["http://v:1"], false), Errors.memberNotEnoughStarted());
    const ok = fake([{}, {}, {}, { name: "" }]); // 3 started of 5 after the add: quorum 3
    await ok.ops.memberAdd(["http://v:1"], false);
  });

  test("strict: every voter connected for the health interval, else unhealthy (voters and learners)", async () => {
    const { deps, ops } = fake([{}, {}, {}]);
    deps.active.set(3n, NOW - HEALTH_INTERVAL_MS); // exactly 5 s: not strictly before
    await rejects(ops.memberAdd(["http://v:1"], false), Errors.unhealthy());
    await rejects(ops.memberAdd(["http://l:1"], true), Errors.unhealthy());
    deps.active.delete(3n);
    await rejects(ops.memberAdd(["http://v:1"], false), Errors.unhealthy());
    deps.active.set(3n, NOW - HEALTH_INTERVAL_MS - 1);
    await ops.memberAdd(["http://v:1"], false);
  });

  test("strict: a disconnected learner does not count", async () => {
    const { deps, ops } = fake([{}, {}, { isLearner: true }]);
    deps.active.delete(3n);
    await ops.memberAdd(["http://v:1"], false);
  });

  test("no strict check: anything goes to the log", async () => {
    const { deps, ops } = fake([{}, { name: "" }, { name: "" }], { strictReconfigCheck: false });
    deps.active.clear();
    await ops.memberAdd(["http://v:1"], false);
    expect(deps.proposed).toHaveLength(1);
  });
});

describe("memberRemove", () => {
  test("removes and returns the list after", async () => {
    const { deps, ops } = fake([{}, {}, {}]);
    const members = await ops.memberRemove(3n);
    expect(members.map((m) => m.id)).toEqual([1n, 2n]);
    expect(deps.membership.isRemoved(3n)).toBe(true);
    expect(deps.proposed).toEqual([{ type: ConfChangeType.RemoveNode, nodeId: 3n, context: new Uint8Array(0) }]);
  });

  test("unknown or removed ids → memberNotFound (from apply)", async () => {
    const { ops } = fake([{}, {}, {}]);
    await rejects(ops.memberRemove(99n), Errors.memberNotFound());
    await ops.memberRemove(3n);
    await rejects(ops.memberRemove(3n), Errors.memberNotFound());
  });

  test("strict: the remaining voters must keep a started quorum → memberNotEnoughStarted", async () => {
    // Removing a started voter leaves 1 started of 2.
    const { deps, ops } = fake([{}, {}, { name: "" }]);
    await rejects(ops.memberRemove(2n), Errors.memberNotEnoughStarted());
    expect(deps.proposed).toHaveLength(0);
    // Removing the unstarted one leaves 2 of 2.
    await ops.memberRemove(3n);
  });

  test("strict: a learner is removed without checks", async () => {
    const { ops } = fake([{}, { name: "" }, { isLearner: true }]);
    await ops.memberRemove(3n);
  });

  test("strict: a disconnected peer is safe to remove; removing a connected one must keep the active quorum → unhealthy", async () => {
    // 3 voters, self + 2 connected; 3 is down.
    const { deps, ops } = fake([{}, {}, {}]);
    deps.active.delete(3n);
    // Removing 2 (connected) leaves active 2 (self, 2) - 1 = 1 < 1 + 1 = 2.
    await rejects(ops.memberRemove(2n), Errors.unhealthy());
    // Removing 3 (down) is fine.
    await ops.memberRemove(3n);
  });

  test("strict: a peer connected for less than the health interval counts as inactive but not as down", async () => {
    const { deps, ops } = fake([{}, {}, {}]);
    deps.active.set(3n, NOW - 10);
    await rejects(ops.memberRemove(2n), Errors.unhealthy());
    await rejects(ops.memberRemove(3n), Errors.unhealthy());
    deps.active.set(3n, NOW - HEALTH_INTERVAL_MS - 1);
    await ops.memberRemove(3n);
  });

  test("strict: removing self is checked like a connected member", async () => {
    const { deps, ops } = fake([{}, {}, {}]);
    deps.active.delete(3n);
    await rejects(ops.memberRemove(1n), Errors.unhealthy());
    deps.active.set(3n, NOW - HEALTH_INTERVAL_MS - 1);
    await ops.memberRemove(1n);
  });
});

describe("memberUpdate", () => {
  test("replaces peer URLs (in the order given) and returns the list", async () => {
    const { deps, ops } = fake([{}, {}]);
    const members = await ops.memberUpdate(2n, ["http://z:1", " http://a:1"]);
    expect(members.find((m) => m.id === 2n)!.peerURLs).toEqual(["http://z:1", "http://a:1"]);
    expect(deps.proposed[0].type).toBe(ConfChangeType.UpdateNode);
    expect(deps.proposed[0].nodeId).toBe(2n);
  });

  test("unknown → memberNotFound; another member's URL → peerURLExist; bad URL → memberBadURLs", async () => {
    const { ops } = fake([{}, {}]);
    await rejects(ops.memberUpdate(9n, ["http://z:1"]), Errors.memberNotFound());
    await rejects(ops.memberUpdate(2n, ["http://10.0.0.1:2380"]), Errors.peerURLExist());
    await rejects(ops.memberUpdate(2n, ["z"]), Errors.memberBadURLs());
  });
});

describe("memberList", () => {
  test("serializable by default, a barrier first when linearizable", async () => {
    const { deps, ops } = fake([{}, {}]);
    expect((await ops.memberList(false)).map((m) => m.id)).toEqual([1n, 2n]);
    expect(deps.barriers).toBe(0);
    await ops.memberList(true);
    expect(deps.barriers).toBe(1);
  });

  test("a failing barrier fails the call", async () => {
    const { ops } = fake([{}], {
      linearizableBarrier: async () => {
        throw Errors.timeout();
      },
    });
    await rejects(ops.memberList(true), Errors.timeout());
  });
});

describe("memberPromote", () => {
  function withLearner() {
    const f = fake([{}, {}, { isLearner: true }]);
    f.deps.match = new Map([
      [1n, 100],
      [2n, 100],
      [3n, 90],
    ]);
    return f;
  }

  test("on the leader: a learner at 90% of the leader's match is promoted", async () => {
    const { deps, ops } = withLearner();
    const members = await ops.memberPromote(3n);
    expect(members.find((m) => m.id === 3n)!.isLearner).toBe(false);
    expect(deps.barriers).toBe(1);
    expect(deps.proposed[0].type).toBe(ConfChangeType.AddNode);
    expect(decodeContext(deps.proposed[0].context).promote).toBe(true);
  });

  test("below 90% → learnerNotReady, nothing proposed", async () => {
    const { deps, ops } = withLearner();
    deps.match.set(3n, 89);
    await rejects(ops.memberPromote(3n), Errors.learnerNotReady());
    expect(deps.proposed).toHaveLength(0);
  });

  test("not in the raft progress → memberNotFound; a voter → memberNotLearner (from apply)", async () => {
    const { ops } = withLearner();
    await rejects(ops.memberPromote(9n), Errors.memberNotFound());
    await rejects(ops.memberPromote(2n), Errors.memberNotLearner());
  });

  test("strict: the voters after the promotion need a started quorum → memberNotEnoughStarted", async () => {
    const { deps, ops } = fake([{}, { name: "" }, { name: "" }, { isLearner: true }]);
    deps.match = new Map([
      [1n, 10],
      [4n, 10],
    ]);
    // 4 voters after, started: self + the learner = 2 < 3.
    await rejects(ops.memberPromote(4n), Errors.memberNotEnoughStarted());
    deps.strictReconfigCheck = false;
    await ops.memberPromote(4n);
    expect(deps.membership.get(4n)!.isLearner).toBe(false);
  });

  test("on a follower: forwarded to the leader, whose answer is returned", async () => {
    const { deps, ops } = withLearner();
    deps.leader = 2n;
    const list: MemberInfo[] = [{ id: 3n, name: "x", peerURLs: [], clientURLs: [], isLearner: false }];
    deps.forwardPromote = async (leader, id) => {
      deps.forwarded.push([leader, id]);
      return list;
    };
    expect(await ops.memberPromote(3n)).toBe(list);
    expect(deps.forwarded).toEqual([[2n, 3n]]);
    expect(deps.proposed).toHaveLength(0);
  });

  test("on a follower without a leader → noLeader; promoteOnLeader off the leader → notLeader", async () => {
    const { deps, ops } = withLearner();
    deps.leader = 0n;
    await rejects(ops.memberPromote(3n), Errors.noLeader());
    deps.leader = 2n;
    await rejects(ops.promoteOnLeader(3n), Errors.notLeader());
    expect(deps.forwarded).toHaveLength(0);
  });
});
