// Direct checks of guards the simulator cannot reach (defence in depth).
import { expect, test } from "bun:test";
import { encodeConfChange } from "./confchange.ts";
import { RawNode } from "./node.ts";
import { MemoryStorage } from "./storage.ts";
import { ConfChangeType, EntryType, MessageType, Role, msg } from "./types.ts";
import { mulberry32 } from "../testing/prng.ts";

const node = (storage = new MemoryStorage(), applied = 0) =>
  new RawNode({ id: 1n, peers: [1n, 2n, 3n], learners: [4n], storage, applied, electionTick: 10, heartbeatTick: 1, rand: mulberry32(1) });

test("a learner's (or stranger's) vote response never counts toward a win", () => {
  const n = node();
  n.campaign(); // pre-vote off: candidate of term 1
  expect(n.raft.role).toBe(Role.Candidate);
  for (const from of [4n, 9n]) n.step(msg({ type: MessageType.VoteResp, from, to: 1n, term: n.raft.term }));
  expect(n.raft.role).toBe(Role.Candidate);
  n.step(msg({ type: MessageType.VoteResp, from: 2n, to: 1n, term: n.raft.term }));
  expect(n.raft.role).toBe(Role.Leader);
});

test("no campaign (Hup or TimeoutNow) while a committed conf change is unapplied", () => {
  const s = new MemoryStorage();
  const cc = encodeConfChange({ type: ConfChangeType.RemoveNode, nodeId: 3n, context: new Uint8Array() });
  s.append([{ term: 1, index: 1, type: EntryType.ConfChange, data: cc }]);
  s.setHardState({ term: 1, vote: 0n, commit: 1 });
  const n = node(s, 0); // restarted: the removal is committed but not re-applied yet
  n.campaign();
  n.step(msg({ type: MessageType.TimeoutNow, from: 2n, to: 1n, term: 1 }));
  expect(n.raft.role).toBe(Role.Follower);
});

test("a failed snapshot leaves next at the acknowledged match (only what was acked is known there)", async () => {
  const { Progress } = await import("./progress.ts");
  const pr = new Progress(5, 6, 4, Number.MAX_SAFE_INTEGER);
  pr.becomeSnapshot(20);
  pr.snapshotDone(false);
  expect(pr.next).toBe(6);
  pr.becomeSnapshot(20);
  pr.snapshotDone(true);
  expect(pr.next).toBe(21);
});

test("after a removal, the removed voter's acknowledgements no longer count for commit", async () => {
  const { Harness, enc } = await import("./sim/harness.ts");
  const h = new Harness([1n, 2n, 3n, 4n], { maxSizePerMsg: 1 });
  h.elect(1n);
  const rm = { type: ConfChangeType.RemoveNode, nodeId: 4n, context: new Uint8Array() };
  const cut = (m: { type: MessageType; to: bigint }) => m.type === MessageType.App && (m.to === 2n || m.to === 3n);
  // 4 (about to be removed) acknowledges the removal and "x"; 2 and 3 hear nothing yet.
  h.intercept = (m) => (cut(m) ? undefined : m);
  h.get(1n).proposeConfChange(rm);
  const removalAt = h.get(1n).raft.log.lastIndex();
  h.get(1n).propose(enc("x"));
  h.settle();
  // Now 2 and 3 get the removal (so it commits and applies) but never "x".
  h.intercept = (m) => (cut(m) && m.entries.some((e) => e.index > removalAt) ? undefined : m);
  h.tick(3);
  expect(h.nodes.get(1n)!.conf.voters).toEqual([1n, 2n, 3n]);
  // In {1, 2, 3} only 1 holds "x": it must not commit.
  expect(h.get(1n).raft.log.committed).toBe(removalAt);
});

test("a snapshot that is not installed is answered with the commit index, never a possibly stale last index", () => {
  const s = new MemoryStorage();
  s.append([1, 2, 3, 4, 5].map((index) => ({ term: 1, index, type: EntryType.Normal, data: new Uint8Array() })));
  s.setHardState({ term: 1, vote: 0n, commit: 1 });
  const n = node(s, 1);
  const snap = { meta: { index: 2, term: 1, confState: { voters: [1n, 2n, 3n], learners: [4n] } }, data: new Uint8Array() };
  n.step({ ...msg({ type: MessageType.Snap, from: 2n, to: 1n, term: 2 }), snapshot: snap });
  const resp = n.ready()!.messages.find((m) => m.type === MessageType.AppResp)!;
  expect(resp.index).toBe(2); // entries 3..5 may be a stale suffix the leader does not have
});
