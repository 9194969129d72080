// The parts of a member, as one record: what member.ts holds and what the
// Raft loop's hooks (loop-host.ts) hand each Ready's results to. wiring.ts
// builds them.
import type { Applier } from "./apply.js";
import type { AuthServer } from "./auth-server.js";
import type { ClusterOps } from "./cluster-ops.js";
import type { LeaseDriver } from "./lease-driver.js";
import type { Maintenance } from "./maintenance.js";
import type { Metrics } from "./metrics.js";
import type { PeerNetwork } from "./peer-network.js";
import type { Peers } from "./peers.js";
import type { Proposals } from "./proposals.js";
import type { RaftLoop } from "./raft-loop.js";
import type { ReadIndexReads } from "./read-index.js";
import type { Propose } from "./requests.js";
import type { Snapshots } from "./snapshots.js";
import type { MemberState } from "./state.js";
import type { V3Server } from "./v3-server.js";
import { invariant } from "./invariant.js";

/** What the parts need of the member that owns them. */
export interface Owner {
  stopped(): boolean;
  /** Stops serving at once and tells the owner's owner (a failed write). */
  fatal(what: string, err: unknown): void;
  /** Removed from the cluster: the member stops. */
  removed(reason: string): void;
  /** Every proposal of every part goes through the member's propose (one path, observable in tests). */
  propose: Propose;
}

export interface Parts {
  readonly memberId: bigint;
  readonly clusterId: bigint;
  readonly requestTimeoutMs: number;
  state: MemberState;
  applier: Applier;
  network: PeerNetwork;
  peers: Peers;
  loop: RaftLoop;
  snapshots: Snapshots;
  proposals: Proposals;
  reads: ReadIndexReads;
  leases: LeaseDriver;
  kv: V3Server;
  auth: AuthServer;
  maintenance: Maintenance;
  clusterOps: ClusterOps;
  metrics: Metrics;
  /** Database size as of the last commit: the quota check must not query SQLite per request. */
  sizeAfterLastCommit: number;
  /** A finite --quota-backend-bytes is in force (else the size above need not be kept). */
  readonly quotaLimited: boolean;
  isLearner(): boolean;
}

/**
 * Every field of Parts, checked complete by the compiler: wiring.ts builds the record field by
 * field behind a cast, so a field it forgets is caught at start (assertComplete), not by the
 * feature that reads it (a missing quotaLimited once turned the quota off).
 */
const PART_FIELDS = {
  memberId: true,
  clusterId: true,
  requestTimeoutMs: true,
  state: true,
  applier: true,
  network: true,
  peers: true,
  loop: true,
  snapshots: true,
  proposals: true,
  reads: true,
  leases: true,
  kv: true,
  auth: true,
  maintenance: true,
  clusterOps: true,
  metrics: true,
  sizeAfterLastCommit: true,
  quotaLimited: true,
  isLearner: true,
} satisfies Record<keyof Parts, true>;

/** Asserts that the record built behind a cast has every field. */
export function assertComplete(p: Parts): void {
  for (const field of Object.keys(PART_FIELDS) as Array<keyof Parts>) invariant(p[field] !== undefined, `member part ${field} was never built`);
}
