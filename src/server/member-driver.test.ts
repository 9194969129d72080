// The member's Raft driver under the conditions a second review found unsafe (each test
// failed before its fix): a removed leader must not answer linearizable reads from the
// lone-voter shortcut; a lone voter must not send a commit index above its own disk to a
// learner before its transaction commits; a snapshot whose data was copied later than its
// metadata must install, and later snapshots be taken at the last delivered entry.
import { expect, test } from "bun:test";
import { type Message, MessageType } from "../raft/types.js";
import { Member } from "./member.js";
import { filteredNetwork, newCluster, joinMember, put, get, until } from "./member-test-support.js";
// Removed leader answers linearizable reads from the single-voter shortcut.

test("stale read on a removed leader via the single-voter shortcut", async () => {
  // Once `deaf` names a member, Raft messages to it are dropped on arrival.
  let deaf = "";
  const { members, fatals } = await newCluster(2, undefined, (c) => filteredNetwork(c, () => c.name !== deaf));
  await until(() => members.some((m) => m.isLeader()), 10000, "leader");
  const L = members.find((m) => m.isLeader())!;
  const B = members.find((m) => m !== L)!;
  await put(L, "k", "old");
  await until(() => B.appliedIndex === L.appliedIndex);
  // Remove the leader; once it applied the removal, cut B -> L.
  await L.clusterOps.memberRemove(L.memberId);
  deaf = L.config.name; // L hears nothing from B any more
  await until(() => B.isLeader(), 5000, "B leads");
  await put(B, "k", "new");
  const v = await get(L, "k").catch((e) => "ERR " + e.message);
  expect(v).not.toBe("old"); // before the fix: "old" (stale); after: a timeout error
  for (const m of members) await m.stop().catch(() => {});
}, 30000);

// Single voter + learner: leaderFirst sends commit=E before E is on the leader's disk.

test("learner applies an entry the only voter never persisted", async () => {
  const { members, cfgs, fatals } = await newCluster(1);
  const L = members[0];
  L.onFatal = (r, e) => {
    fatals.push(`leader: ${r} ${e}`);
    L.stopNow();
  };
  await until(() => L.isLeader());
  await put(L, "k", "v1");
  const { m: R } = await joinMember(L, true);
  R.onFatal = (r, e) => void fatals.push(`learner: ${r} ${e}`);
  await R.start().catch(() => {});
  await until(() => R.appliedIndex === L.appliedIndex, 10000, "learner caught up");
  // The leader's next transaction does not commit (a crash between send and COMMIT; here: a throw).
  const loop = (L as any).parts.loop;
  const st = loop.storage;
  const orig = st.append.bind(st);
  const hr = loop.finish.bind(loop);
  let armed = false,
    fired = false;
  loop.finish = (rd: any, plan: any) => {
    if (armed && !fired && rd.entries.length > 0 && rd.messages.some((m: any) => m.entries.length > 0 && m.commit >= rd.entries[rd.entries.length - 1].index)) {
      fired = true;
      st.append = () => {
        throw new Error("simulated crash before COMMIT");
      };
    }
    return hr(rd, plan);
  };
  armed = true;
  for (let i = 0; i < 200 && !fired; i++) {
    void put(L, "k", "LOST" + i).catch(() => {});
    await Bun.sleep(5);
  }
  await Bun.sleep(500);
  st.append = orig;
  // Restart the leader from its disk.
  await L.network.stop();
  (L as any).db.close();
  await Bun.sleep(1000);
  const L2 = await Member.open(cfgs[0]);
  L2.onFatal = (r, e) => void fatals.push(`L2: ${r} ${e}`);
  const started = L2.start();
  await until(() => L2.isLeader(), 10000, "L2 leads");
  await put(L2, "k", "v2");
  // The learner reconnects (backoff) and catches up; then both must hold the same value.
  await until(() => R.appliedIndex >= L2.appliedIndex, 15000, "learner caught up after the restart");
  expect(await get(R, "k", true)).toBe(await get(L2, "k", true));
  await L2.stop().catch(() => {});
  await R.stop().catch(() => {});
}, 40000);

// Snapshot data copied >= snapshotCount entries after the snapshot's metadata.

test("install of a late copy snapshots beyond the log in the same transaction", async () => {
  const small = (c: any) => {
    c.snapshotCount = 10;
    c.snapshotCatchUpEntries = 2;
  };
  const { members, fatals } = await newCluster(1, small);
  const L = members[0];
  await until(() => L.isLeader());
  for (let i = 0; i < 40; i++) await put(L, "k" + i, "v");
  const snapshots = (L as any).parts.snapshots;
  const orig = snapshots.openData.bind(snapshots);
  snapshots.openData = () =>
    (async function* () {
      for (let i = 0; i < 25; i++) await put(L, "late" + i, "v"); // the leader keeps applying before the copy
      yield* orig();
    })();
  const { m: R } = await joinMember(L, true, small);
  R.onFatal = (r, e) => {
    fatals.push(`learner: ${r} ${e}`);
    R.stopNow();
  };
  void R.start().catch(() => {});
  // It installs the late copy and catches up (before the fix: a fatal invariant in the install).
  await until(() => fatals.length > 0 || (R.appliedIndex > 0 && R.appliedIndex >= L.appliedIndex), 15000, "learner caught up");
  expect(fatals).toEqual([]);
  expect(await get(R, "late24", true)).toBe("v");
}, 30000);

// The member wires the lease driver's leader-only proposals through to propose() (a wrapper that
// dropped the options once made expiry revokes ordinary proposals, queued for the next leader).
test("lease expiry is proposed leader-only", async () => {
  const { members, fatals } = await newCluster(1);
  const [m] = members;
  await until(() => m.isLeader() && m.lessor.isPrimary, 10000, "leader with a promoted lessor");
  const seen: Array<{ kind: string; leaderOnly: boolean }> = [];
  const original = m.propose.bind(m);
  m.propose = ((request: any, opts: any = {}) => {
    seen.push({ kind: request.case, leaderOnly: opts.leaderOnly === true });
    return original(request, opts);
  }) as typeof m.propose;
  await m.propose({ case: "leaseGrant", value: { ID: 77n, TTL: 1n } as any });
  await until(() => !m.lessor.exists(77n), 5000, "the lease expired and was revoked");
  expect(seen).toContainEqual({ kind: "leaseRevoke", leaderOnly: true });
  expect(seen.filter((s) => s.kind === "leaseRevoke").every((s) => s.leaderOnly)).toBe(true);
  expect(fatals).toEqual([]);
  await m.stop();
}, 20000);

// Found by the simulator: a member restarted after being down while another member was added
// (and came to lead) never heard of its leader from its own log, so its answers had nowhere to
// go and it never caught up. It now learns the member list from its peers.
test("a member restarted after a new member took the lead catches up", async () => {
  const { members, cfgs, fatals } = await newCluster(3);
  await until(() => members.some((m) => m.isLeader()), 10000, "leader");
  const leader = members.find((m) => m.isLeader())!;
  const downIdx = members.findIndex((m) => m !== leader);
  const down = members[downIdx];
  await put(leader, "before", "1");
  await until(() => down.appliedIndex === leader.appliedIndex, 10000, "all applied");
  await down.stop();
  const { m: D } = await joinMember(leader, false);
  D.onFatal = (r, e) => void fatals.push(`D: ${r} ${e ?? ""}`);
  await D.start();
  await leader.maintenance.moveLeader(D.memberId);
  await until(() => D.isLeader(), 10000, "D leads");
  await put(D, "after", "2");
  const back = await Member.open(cfgs[downIdx]);
  back.onFatal = (r, e) => void fatals.push(`restarted: ${r} ${e ?? ""}`);
  await back.start();
  await until(() => back.appliedIndex >= D.appliedIndex, 15000, "the restarted member caught up");
  expect(await get(back, "after", true)).toBe("2");
  expect(fatals).toEqual([]);
  for (const m of [...members.filter((m) => m !== down), D, back]) await m.stop().catch(() => {});
}, 40000);

// Found by the simulator (seed 4191): the removed leader of a two-member cluster stopped on a
// timer while the survivor had not learned that the removal committed, so the survivor counted
// it in its quorum forever. A removed member now stops only once another member applied it.
test("a removed leader waits until the survivor applied its removal", async () => {
  const cut = { on: false, survivor: "", leader: "", fromIndex: 0, committed: () => false };
  // Once on: the survivor gets the removal entry (and acknowledges it) but no later commit index
  // and no TimeoutNow, and the leader hears nothing from the survivor after it committed.
  const blocked = (name: string, m: Message) =>
    cut.on && ((name === cut.survivor && (m.commit >= cut.fromIndex || m.type === MessageType.TimeoutNow)) || (name === cut.leader && cut.committed()));
  const { members, fatals } = await newCluster(2, undefined, (c) => filteredNetwork(c, (m) => !blocked(c.name, m)));
  await until(() => members.some((m) => m.isLeader()), 10000, "leader");
  const leader = members.find((m) => m.isLeader())!;
  const survivor = members.find((m) => m !== leader)!;
  await put(leader, "k", "v");
  await until(() => survivor.appliedIndex === leader.appliedIndex, 10000, "both applied");
  let stopped = "";
  leader.onFatal = (r) => void (stopped = r);
  Object.assign(cut, { on: true, survivor: survivor.config.name, leader: leader.config.name, fromIndex: leader.committedIndex + 1 });
  cut.committed = () => leader.committedIndex >= cut.fromIndex;
  await leader.clusterOps.memberRemove(leader.memberId);
  // Well past the old timer (2 election timeouts as leader, 1 s): still running, still needed.
  await Bun.sleep(2500);
  expect(stopped).toBe("");
  cut.on = false;
  await until(() => stopped !== "", 10000, "the removed leader stopped");
  expect(stopped).toContain("permanently removed");
  await until(() => survivor.isLeader(), 10000, "the survivor leads alone");
  await put(survivor, "after", "1");
  expect(fatals).toEqual([]);
  await leader.stop().catch(() => {});
  await survivor.stop().catch(() => {});
}, 40000);
