// What the member does at each step of a Ready (etcd's applyAll and the
// server side of raft.go): the Raft loop calls these hooks in order, and each
// hands the Ready's results to the part that owns them.
import { create } from "@bufbuild/protobuf";
import { ClusterVersionSchema } from "../gen/tsetcdpb/internal_pb.js";
import { EtcdError } from "../errors.js";
import { log } from "../log.js";
import { type Ready, Role } from "../raft/types.js";
import { CLUSTER_VERSION } from "../version.js";
import { emptyBatch, type ApplyBatch } from "./apply.js";
import type { Owner, Parts } from "./member-parts.js";
import type { RaftLoopHost } from "./raft-loop.js";

export function raftLoopHost(p: Parts, owner: Owner): RaftLoopHost {
  return {
    roundStarting: () => p.reads.flush(),
    hasWork: () => p.reads.pending,
    softState: (lead, role, before) => softState(p, owner, lead, role, before),
    install: (rd) => p.snapshots.install(rd.snapshot!.meta),
    apply: (rd) => apply(p, rd),
    attachSnapshot: (rd) => (rd.snapshot ? p.snapshots.attach(rd.snapshot.meta) : undefined),
    detachSnapshot: () => p.snapshots.detach(),
    committed: (rd, file) => {
      p.state.watchHub.committed();
      if (rd.snapshot === undefined) return;
      p.snapshots.installed(rd.snapshot.meta, file!);
      p.peers.changed();
      p.sizeAfterLastCommit = p.maintenance.dbSize();
    },
    rolledBack: () => p.state.watchHub.rolledBack(),
    configured: (batch) => {
      if (batch.confChanges.length > 0) p.peers.changed();
      p.peers.sync();
    },
    settled: (rd, batch) => settled(p, rd, batch),
    advanced: (rd) => advanced(p, owner, rd),
    fatal: (what, err) => owner.fatal(what, err),
    stopped: owner.stopped,
  };
}

/** Inside the Ready's transaction, after its log writes: apply, record the applied index, maybe snapshot. */
function apply(p: Parts, rd: Ready): ApplyBatch {
  const batch = emptyBatch();
  p.applier.applyEntries(rd.committedEntries, p.loop.committed, batch);
  if (rd.committedEntries.length > 0 || rd.snapshot) p.applier.persist();
  p.snapshots.maybeTake();
  return batch;
}

function softState(p: Parts, owner: Owner, lead: bigint, role: Role, before: bigint): void {
  // Only the leader expires leases; it starts once it applied its term's first entry (the applier).
  if (role !== Role.Leader) p.leases.demote();
  if (lead !== before) {
    const self = p.memberId.toString(16);
    if (lead !== 0n) {
      p.metrics.leaderChanged();
      const what = before === 0n ? "raft.node: elected leader" : "raft.node: changed leader";
      log.info(what, { "local-member-id": self, "leader-id": lead.toString(16), term: p.loop.term });
      p.reads.leaderChanged();
      p.proposals.retryBlocked();
    } else {
      log.info("raft.node: lost leader", { "local-member-id": self, "lost-leader-id": before.toString(16), term: p.loop.term });
    }
  }
  if (role === Role.Leader && p.state.membership.clusterVersion() === "") {
    void owner.propose({ case: "clusterVersion", value: create(ClusterVersionSchema, { version: CLUSTER_VERSION }) }).catch(() => {});
  }
}

/** After the Ready's messages left: clients are answered and reads released. */
function settled(p: Parts, rd: Ready, batch: ApplyBatch): void {
  const applied = p.applier.appliedIndex;
  p.proposals.settle(batch);
  for (const rs of rd.readStates) p.reads.onReadState(rs);
  p.reads.onApplied(applied);
  p.proposals.releaseApplied(applied);
  const failures = batch.answers.reduce((n, [, r]) => (r instanceof EtcdError ? n + 1 : n), 0);
  p.metrics.applied(failures, p.loop.committed, applied);
}

function advanced(p: Parts, owner: Owner, rd: Ready): void {
  // The quota check's size (a query per applying Ready, skipped when there is no quota).
  if (rd.committedEntries.length > 0 && p.quotaLimited) p.sizeAfterLastCommit = p.maintenance.dbSize();
  // A follower joined after the last snapshot: it needs one that includes it.
  if (p.loop.isLeader() && p.loop.raw.raft.needsSnapshot().length > 0 && p.snapshots.stale) {
    try {
      p.snapshots.takeNow();
    } catch (err) {
      owner.fatal("failed to save a snapshot", err);
    }
  }
}
