// A member's configuration, as the composition root derives it from etcd's
// flags (src/config/) and hands it to Member.open.
import type { PeerTlsOptions } from "../transport/transport.js";
import type { BootstrapConfig } from "./bootstrap.js";

export interface MemberConfig {
  name: string;
  dataDir: string;
  initialAdvertisePeerUrls: string[];
  initialCluster: string;
  initialClusterToken: string;
  initialClusterState: "new" | "existing";
  listenPeerUrls: string[];
  advertiseClientUrls: string[];
  heartbeatIntervalMs: number;
  electionTimeoutMs: number;
  /** Applied entries between two snapshots (etcd's --snapshot-count). */
  snapshotCount: number;
  /** Entries kept in the log behind a snapshot for slow followers (etcd: 5000). */
  snapshotCatchUpEntries?: number;
  preVote: boolean;
  strictReconfigCheck: boolean;
  /** --max-request-bytes: the largest encoded request accepted into the log. */
  maxRequestBytes: number;
  /** The effective backend quota in bytes (Infinity: none). */
  quotaBackendBytes: number;
  peerTls?: PeerTlsOptions;
  /** How often the leader records long leases' remaining TTLs in the log (default 5 min, as etcd; 0: never). */
  leaseCheckpointIntervalMs?: number;
  /** --bcrypt-cost: the cost of hashing auth passwords (default 10, as etcd). */
  bcryptCost?: number;
  /** For --initial-cluster-state existing (src/server/join.ts). */
  joinCluster?: BootstrapConfig["joinCluster"];
}
