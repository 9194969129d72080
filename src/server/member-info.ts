// What the cluster knows about one member: the rows of `etcdctl member list`.
// Shared by the membership store (applied from the log), the Cluster service,
// and the peer API a joining member reads the cluster from.

export interface MemberInfo {
  /** etcd's 64-bit member id. */
  id: bigint;
  /** Empty until the member started and published its attributes (etcd's "unstarted"). */
  name: string;
  peerURLs: string[];
  /** Empty until the member published them. */
  clientURLs: string[];
  isLearner: boolean;
}
