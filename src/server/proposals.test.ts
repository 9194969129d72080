// Proposals on a simulated clock: a membership change that retries while there is no leader
// fails cleanly when the member stops meanwhile (its rejection reaches the caller and is never
// reported as unhandled: bun test fails a file on an unhandled rejection).
import { expect, test } from "bun:test";
import { ConfChangeType } from "../raft/types.js";
import { Proposals, type ProposalHost } from "./proposals.js";
import { SimTime } from "./sim/time.js";

test("a conf change retrying without a leader is rejected with 'server stopped' when the member stops", async () => {
  const time = new SimTime();
  const owner = time.newOwner();
  const runtime = time.runtimeFor(owner, 1);
  let stopped = false;
  const host: ProposalHost = {
    memberId: 1n,
    raftPropose: () => false,
    raftProposeConfChange: () => false, // no leader: the change is retried every confRetryMs
    committed: () => 0,
    term: () => 1,
    leader: () => 0n,
    isLeader: () => false,
    appliedIndex: () => 0,
    isLearner: () => false,
    stopped: () => stopped,
    schedule: () => {},
    fillHeader: (r) => r,
    sizeAfterLastCommit: () => 0,
    noSpaceAlarm: () => false,
  };
  const proposals = new Proposals(
    host,
    { maxRequestBytes: 1 << 20, quotaBytes: Infinity, requestTimeoutMs: 5000, confRetryMs: 100 },
    runtime.clock,
    runtime.scheduler,
  );
  const change = proposals.proposeConfChange({ type: ConfChangeType.RemoveNode, nodeId: 2n, context: new Uint8Array(0) });
  // Let it retry a few times, then stop the member while it sleeps between tries.
  for (let i = 0; i < 3; i++) await time.next(Infinity)?.();
  stopped = true;
  proposals.rejectAll(new Error("etcdserver: server stopped"));
  await Bun.sleep(0); // an unhandled rejection would be reported here
  await time.next(Infinity)?.(); // the retry loop wakes, sees the stop and hands back the rejected wait
  await expect(change).rejects.toThrow("etcdserver: server stopped");
});
