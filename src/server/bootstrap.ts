// How a member's database comes to hold a Raft log it can start from, in the
// three ways etcd knows:
//   restart   the data dir has a member: its ids and log are used as they are,
//             the --initial-* flags are ignored (only the cluster token is
//             checked, so a data dir of another cluster is refused);
//   new       --initial-cluster-state new: ids derived from --initial-cluster
//             and the token as etcd derives them; the log starts with one
//             committed ConfChange per initial member (sorted by id, as etcd's
//             bootstrap), each carrying the member's name and peer URLs;
//   existing  --initial-cluster-state existing: the cluster (its id, members,
//             our id) is read from the running members over the peer port; the
//             log starts empty and the leader sends everything (entries or a
//             snapshot).
// A data dir written by the single-member server of issue 2 (applied state and
// an unreplicated log) is migrated once: its state becomes a Raft snapshot of
// a one-member configuration.
import type { Database } from "bun:sqlite";
import { ConfChangeType, EntryType, type Entry } from "../raft/types.js";
import { encodeConfChange } from "../raft/confchange.js";
import { MetaStore } from "../storage/meta-store.js";
import { RaftMetaKey, SqliteRaftStorage } from "../storage/raft-storage.js";
import { log } from "../log.js";
import { clusterId as deriveClusterId, memberId as deriveMemberId, parseInitialCluster } from "./ids.js";
import type { MemberInfo } from "./member-info.js";
import { memberFromWire, memberToWire } from "./join.js";
import { encodeMemberContext } from "./membership.js";

export interface BootstrapConfig {
  name: string;
  dataDir: string;
  initialCluster: string;
  initialClusterToken: string;
  initialClusterState: "new" | "existing";
  initialAdvertisePeerUrls: string[];
  /** For `existing`: reads the running cluster from its members and finds our id there (src/server/join.ts). */
  joinCluster?(): Promise<{ clusterId: bigint; localId: bigint; members: MemberInfo[] }>;
}

export interface Identity {
  memberId: bigint;
  clusterId: bigint;
  /** How this start came about (for logs). */
  how: "restart" | "new" | "existing";
  /** A joining member's view of the cluster it joins: peers to talk to until the log brings the membership. */
  remoteMembers?: MemberInfo[];
}

/**
 * meta rows that describe this member rather than the replicated state (never taken from a
 * snapshot). joinMembers: the cluster as a joining member read it from its peers, kept so a
 * restart before the log brings the membership still knows whom to talk to.
 */
export const LOCAL_META = { memberId: "member_id", clusterId: "cluster_id", token: "cluster_token", joinMembers: "join_members" } as const;
/** The issue-2 single-member server's term row. */
const LEGACY_TERM = "term";
export const APPLIED_INDEX = "applied_index";

export async function bootstrap(db: Database, cfg: BootstrapConfig): Promise<Identity> {
  const meta = new MetaStore(db);
  const member = meta.getBigInt(LOCAL_META.memberId);
  const cluster = meta.getBigInt(LOCAL_META.clusterId);
  if (member !== undefined && cluster !== undefined) {
    const token = meta.getText(LOCAL_META.token);
    if (token !== undefined && token !== cfg.initialClusterToken) {
      throw new Error(
        `data dir ${cfg.dataDir} belongs to cluster ${cluster.toString(16)} (initial-cluster-token ${JSON.stringify(token)}), ` +
          `not to --initial-cluster-token ${JSON.stringify(cfg.initialClusterToken)}; refusing to start`,
      );
    }
    if (meta.getNumber(RaftMetaKey.term) === undefined) migrateSingleMember(db, meta, member, cfg);
    return { memberId: member, clusterId: cluster, how: "restart", remoteMembers: joinedMembers(meta) };
  }
  const initial = parseInitialCluster(cfg.initialCluster);
  if (cfg.initialClusterState === "existing") return join(db, meta, cfg);
  return bootstrapNew(db, meta, cfg, initial);
}

function bootstrapNew(db: Database, meta: MetaStore, cfg: BootstrapConfig, initial: Map<string, string[]>): Identity {
  const ownUrls = initial.get(cfg.name);
  if (!ownUrls) throw new Error(`couldn't find local name "${cfg.name}" in the initial cluster configuration`);
  checkAdvertiseMatchesCluster(cfg.name, ownUrls, cfg.initialAdvertisePeerUrls);
  const members: MemberInfo[] = [...initial.entries()].map(([name, peerURLs]) => ({
    id: deriveMemberId(peerURLs, cfg.initialClusterToken),
    name,
    peerURLs,
    clientURLs: [],
    isLearner: false,
  }));
  const ids = members.map((m) => m.id);
  if (new Set(ids).size !== ids.length) throw new Error(`--initial-cluster ${cfg.initialCluster} has duplicate peer URLs`);
  members.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const self = deriveMemberId(ownUrls, cfg.initialClusterToken);
  const cluster = deriveClusterId(ids);
  // Etcd's raft bootstrap: the membership as committed conf changes at term 1.
  const entries: Entry[] = members.map((m, i) => ({
    term: 1,
    index: i + 1,
    type: EntryType.ConfChange,
    data: encodeConfChange({ type: ConfChangeType.AddNode, nodeId: m.id, context: encodeMemberContext(m) }),
  }));
  const storage = new SqliteRaftStorage(db);
  writeIdentity(db, storage, meta, self, cluster, cfg.initialClusterToken, () => {
    storage.append(entries);
    storage.setHardState({ term: 1, vote: 0n, commit: entries.length });
  });
  log.info("starting a new cluster", { "local-member-id": self.toString(16), "cluster-id": cluster.toString(16), members: members.length });
  return { memberId: self, clusterId: cluster, how: "new" };
}

/** etcd's advertiseMatchesCluster, with its messages (URLs compared as written: no DNS lookups). */
function checkAdvertiseMatchesCluster(name: string, clusterUrls: string[], advertised: string[]): void {
  const a = [...advertised].sort();
  const c = [...clusterUrls].sort();
  if (a.length === c.length && a.every((u, i) => u === c[i])) return;
  const inA = new Set(a);
  const inC = new Set(c);
  const missingFromA = c.filter((u) => !inA.has(u)).map((u) => `${name}=${u}`);
  if (missingFromA.length > 0) {
    throw new Error(
      `--initial-cluster has ${missingFromA.join(",")} but missing from --initial-advertise-peer-urls=${a.join(",")} (${JSON.stringify(a)} != ${JSON.stringify(c)})`,
    );
  }
  const missingFromC = a.filter((u) => !inC.has(u));
  throw new Error(`--initial-advertise-peer-urls has ${missingFromC.join(",")} but missing from --initial-cluster=${a.map((u) => `${name}=${u}`).join(",")}`);
}

async function join(db: Database, meta: MetaStore, cfg: BootstrapConfig): Promise<Identity> {
  if (!cfg.joinCluster) throw new Error("joining an existing cluster is not available");
  const remote = await cfg.joinCluster();
  const storage = new SqliteRaftStorage(db);
  writeIdentity(db, storage, meta, remote.localId, remote.clusterId, cfg.initialClusterToken, () => {
    // An empty Raft state of its own: a restart before the first entries arrive must restart
    // this joining member, not take its data dir for the single-member format (which would make
    // it a one-member cluster under the joined cluster's id). Found by the simulator.
    // (Written as a row: the storage writes only what differs from its initial term 0.)
    meta.setNumber(RaftMetaKey.term, 0);
    meta.setText(LOCAL_META.joinMembers, JSON.stringify(remote.members.map(memberToWire)));
  });
  log.info("joining an existing cluster", { "local-member-id": remote.localId.toString(16), "cluster-id": remote.clusterId.toString(16) });
  return { memberId: remote.localId, clusterId: remote.clusterId, how: "existing", remoteMembers: remote.members };
}

function writeIdentity(db: Database, storage: SqliteRaftStorage, meta: MetaStore, self: bigint, cluster: bigint, token: string, more: () => void): void {
  try {
    db.transaction(() => {
      meta.setBigInt(LOCAL_META.memberId, self);
      meta.setBigInt(LOCAL_META.clusterId, cluster);
      meta.setText(LOCAL_META.token, token);
      more();
    })();
    storage.committed();
  } catch (err) {
    storage.rollbackCache();
    throw err;
  }
}

/** The cluster a joining member read at its join; until the log brings the membership, its peers come from here. */
function joinedMembers(meta: MetaStore): MemberInfo[] | undefined {
  const text = meta.getText(LOCAL_META.joinMembers);
  if (text === undefined) return undefined;
  return (JSON.parse(text) as unknown[]).map(memberFromWire);
}

/**
 * Issue 2's single-member format: every logged entry was applied at once and
 * nothing was replicated, so the applied state IS the whole history. It
 * becomes a snapshot at the applied index (configuration: this member alone);
 * the old log (different entry encodings) is dropped.
 */
function migrateSingleMember(db: Database, meta: MetaStore, self: bigint, cfg: BootstrapConfig): void {
  // A snapshot needs an index above 0; an empty old log has applied nothing, so index 1 describes it too.
  const applied = Math.max(1, meta.getNumber(APPLIED_INDEX) ?? 0);
  const term = Math.max(1, meta.getNumber(LEGACY_TERM) ?? 1);
  // The old log goes first (everything in it is applied): Raft storage cannot even read a log
  // without its compaction point. A crash after this only means migrating again.
  db.run("DELETE FROM log");
  const storage = new SqliteRaftStorage(db);
  try {
    db.transaction(() => {
      storage.applySnapshot({ index: applied, term, confState: { voters: [self], learners: [] } });
      storage.setHardState({ term, vote: self, commit: applied });
      db.run(`DELETE FROM meta WHERE name = '${LEGACY_TERM}'`);
      meta.setNumber(APPLIED_INDEX, applied);
      meta.setText(LOCAL_META.token, cfg.initialClusterToken);
    })();
    storage.committed();
  } catch (err) {
    storage.rollbackCache();
    throw err;
  }
  log.info("migrated a single-member data dir to the replicated log", { "applied-index": applied, term });
}
