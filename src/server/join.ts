// Joining an existing cluster (--initial-cluster-state existing, no data yet): what etcd's
// NewServer does in its `!haveWAL && !cfg.NewCluster` case, before the member can run.
//   1. VerifyJoinExisting: the local name is in --initial-cluster, no URL appears twice.
//   2. GetClusterFromRemotePeers: GET /members from the other members' peer URLs (sorted), in
//      turn, until one answers with the member list and the cluster id.
//   3. ValidateClusterAndAssignIDs: --initial-cluster must list exactly the remote members, each
//      with the same peer URLs; every local entry takes the remote member's id. Ours is the id
//      of the remote member whose peer URLs equal our own.
// The member then starts with that cluster id and member id, the remote members as its peers,
// and no bootstrap entries (it learns everything from the leader).
//
// GET /members is answered by every member's peer handler with encodeMembersResponse. The wire
// format is ours (etcd's is a JSON array plus an X-Etcd-Cluster-ID header): JSON with ids as
// lower-case hex strings, the cluster id in the body and in the x-tsetcd-cluster-id header.
import type { PeerReply, PeerRequestOptions, PeerResponse, PeerTlsOptions } from "../transport/transport.js";
import { peerRequest } from "../transport/transport.js";
import { log as defaultLog } from "../log.js";
import type { MemberInfo } from "./member-info.js";

export const MEMBERS_PATH = "/members";
/** Header carrying the cluster id on peer answers (the transport's own, see protocol.ts). */
export const CLUSTER_ID_HEADER = "x-tsetcd-cluster-id";
/** etcd gives each GET /members 10 s ("the upper limit of TTL is 5s"). */
export const DEFAULT_JOIN_TIMEOUT_MS = 10_000;

export interface JoinLogger {
  warn(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
}

export const hex = (id: bigint): string => id.toString(16);

interface WireMember {
  id: string;
  name: string;
  peerURLs: string[];
  clientURLs: string[];
  isLearner: boolean;
}

export function memberToWire(m: MemberInfo): WireMember {
  return { id: hex(m.id), name: m.name, peerURLs: [...m.peerURLs], clientURLs: [...m.clientURLs], isLearner: m.isLearner };
}

const HEX_ID = /^[0-9a-f]{1,16}$/i;
const isStringArray = (v: unknown): v is string[] => Array.isArray(v) && v.every((s) => typeof s === "string");

/** One member from its wire form; throws on anything malformed. */
export function memberFromWire(v: unknown): MemberInfo {
  if (v === null || typeof v !== "object") throw new Error("member is not an object");
  const o = v as Record<string, unknown>;
  if (typeof o.id !== "string" || !HEX_ID.test(o.id)) throw new Error(`invalid member id ${JSON.stringify(o.id)}`);
  if (typeof o.name !== "string") throw new Error("invalid member name");
  if (!isStringArray(o.peerURLs)) throw new Error("invalid member peerURLs");
  if (!isStringArray(o.clientURLs)) throw new Error("invalid member clientURLs");
  if (typeof o.isLearner !== "boolean") throw new Error("invalid member isLearner");
  return { id: BigInt("0x" + o.id), name: o.name, peerURLs: o.peerURLs, clientURLs: o.clientURLs, isLearner: o.isLearner };
}

/** The answer to GET /members, for the member's onPeerRequest handler to return as is. */
export function encodeMembersResponse(clusterId: bigint, members: MemberInfo[]): PeerResponse {
  const sorted = [...members].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  return {
    status: 200,
    headers: { "content-type": "application/json", [CLUSTER_ID_HEADER]: hex(clusterId) },
    body: JSON.stringify({ clusterId: hex(clusterId), members: sorted.map(memberToWire) }) + "\n",
  };
}

/** Parses a GET /members answer body; throws on anything malformed. */
export function decodeMembersResponse(body: Uint8Array | string): { clusterId: bigint; members: MemberInfo[] } {
  const text = typeof body === "string" ? body : new TextDecoder("utf-8", { fatal: true }).decode(body);
  const v = JSON.parse(text) as Record<string, unknown>;
  if (v === null || typeof v !== "object") throw new Error("members response is not an object");
  if (typeof v.clusterId !== "string" || !HEX_ID.test(v.clusterId)) throw new Error(`invalid cluster id ${JSON.stringify(v.clusterId)}`);
  if (!Array.isArray(v.members)) throw new Error("members response has no member list");
  return { clusterId: BigInt("0x" + v.clusterId), members: v.members.map(memberFromWire) };
}

/**
 * etcd's getClusterFromRemotePeers: GET /members from each URL in turn; the first usable answer
 * wins. An answer with no members ends the search with an error, as in etcd. Errors carry
 * etcd's texts, wrapped as NewServer wraps them:
 *   "cannot fetch cluster info from peer urls: could not retrieve cluster information from the given URLs"
 *   "cannot fetch cluster info from peer urls: failed to get raft cluster member(s) from the given URLs"
 */
export async function fetchClusterFromPeers(
  peerUrls: string[],
  tls: PeerTlsOptions["client"],
  timeoutMs: number = DEFAULT_JOIN_TIMEOUT_MS,
  logger: JoinLogger = defaultLog,
  request: (urls: string[], path: string, opts: PeerRequestOptions) => Promise<PeerReply> = peerRequest,
): Promise<{ clusterId: bigint; members: MemberInfo[] }> {
  for (const u of peerUrls) {
    const address = u.replace(/\/+$/, "") + MEMBERS_PATH;
    let reply: PeerReply;
    try {
      reply = await request([u], MEMBERS_PATH, { method: "GET", tls, timeoutMs });
    } catch (err) {
      const e = err as { errors?: Array<{ error: Error }> };
      logger.warn("failed to get cluster response", { address, error: e.errors?.[0]?.error.message ?? String(err) });
      continue;
    }
    if (reply.status !== 200) {
      logger.warn("failed to get cluster response", { address, error: `unexpected status ${reply.status}` });
      continue;
    }
    let cluster: { clusterId: bigint; members: MemberInfo[] };
    try {
      cluster = decodeMembersResponse(reply.body);
    } catch (err) {
      logger.warn("failed to unmarshal cluster response", { address, error: err instanceof Error ? err.message : String(err) });
      continue;
    }
    const header = reply.headers[CLUSTER_ID_HEADER];
    if (header !== undefined && (!HEX_ID.test(header) || BigInt("0x" + header) !== cluster.clusterId)) {
      logger.warn("failed to parse cluster ID", { address, header });
      continue;
    }
    if (cluster.members.length > 0) return cluster;
    throw new Error("cannot fetch cluster info from peer urls: failed to get raft cluster member(s) from the given URLs");
  }
  throw new Error("cannot fetch cluster info from peer urls: could not retrieve cluster information from the given URLs");
}

/** etcd's getRemotePeerURLs: the other members' peer URLs, sorted. */
export function remotePeerUrls(initialCluster: Map<string, string[]>, localName: string): string[] {
  const out: string[] = [];
  for (const [name, urls] of initialCluster) if (name !== localName) out.push(...urls);
  return out.sort();
}

/** URLsMap.String(): "name=url" pairs sorted, comma-joined. */
function urlsMapString(m: Map<string, string[]>): string {
  const pairs: string[] = [];
  for (const [name, urls] of m) for (const u of urls) pairs.push(`${name}=${u}`);
  return pairs.sort().join(",");
}

/**
 * etcd's ServerConfig.VerifyJoinExisting (without discovery, which we do not support):
 *   couldn't find local name "x" in the initial cluster configuration
 *   initial cluster a=http://...,b=http://... has duplicate url
 */
export function verifyJoinExisting(initialCluster: Map<string, string[]>, localName: string): void {
  if (initialCluster.get(localName) === undefined) {
    throw new Error(`couldn't find local name ${goQuote(localName)} in the initial cluster configuration`);
  }
  const seen = new Set<string>();
  for (const urls of initialCluster.values()) {
    for (const u of urls) {
      if (seen.has(u)) throw new Error(`initial cluster ${urlsMapString(initialCluster)} has duplicate url`);
      seen.add(u);
    }
  }
}

/** Go's %q for a string (JSON's escaping is close enough for names and URLs). */
const goQuote = (s: string) => JSON.stringify(s);
/** Go's %v of a []string. */
const goList = (a: string[]) => `[${a.join(" ")}]`;
/** Go's %q of a []string. */
const goQuoteList = (a: string[]) => `[${a.map(goQuote).join(" ")}]`;

/** RaftCluster.String() of a cluster built from remote members (no removed ids). */
export function formatCluster(clusterId: bigint, members: MemberInfo[]): string {
  const ms = members.map(
    (m) =>
      `&{ID:${hex(m.id)} RaftAttributes:{PeerURLs:${goList(m.peerURLs)} IsLearner:${m.isLearner}} ` +
      `Attributes:{Name:${m.name} ClientURLs:${goList(m.clientURLs)}}}`,
  );
  return `{ClusterID:${hex(clusterId)} Members:[${ms.join(" ")}] RemovedMemberIDs:[]}`;
}

/**
 * netutil.URLStringsEqual without DNS resolution: equal when, sorted, the URLs are the same
 * strings. Returns the error etcd would report for the comparison, or null when equal.
 */
function urlsEqual(a: string[], b: string[]): string | null {
  if (a.length !== b.length) return `len(${goQuoteList(a)}) != len(${goQuoteList(b)})`;
  const sa = [...a].sort();
  const sb = [...b].sort();
  for (let i = 0; i < sa.length; i++) {
    if (sa[i] !== sb[i]) return `resolved urls: ${goQuote(sa[i])} != ${goQuote(sb[i])}`;
  }
  return null;
}

/**
 * etcd's ValidateClusterAndAssignIDs, then the local member's id: every remote member must
 * match one --initial-cluster entry by peer URLs, and the counts must be equal. Errors are
 * etcd's, wrapped as NewServer wraps them:
 *   error validating peerURLs {ClusterID:... Members:[...] RemovedMemberIDs:[]}: member count is unequal
 *   error validating peerURLs {...}: PeerURLs: no match found for existing member (<id>, [<urls>]), last resolver error (<err>)
 * (etcd also resolves host names before giving up on a pair; we compare the strings only.)
 */
export function assignLocalId(initialCluster: Map<string, string[]>, localName: string, remote: { clusterId: bigint; members: MemberInfo[] }): bigint {
  const wrap = (msg: string) => new Error(`error validating peerURLs ${formatCluster(remote.clusterId, remote.members)}: ${msg}`);
  const local = [...initialCluster.entries()].map(([name, urls]) => ({ name, urls, id: undefined as bigint | undefined }));
  if (remote.members.length !== local.length) throw wrap("member count is unequal");
  for (const em of remote.members) {
    let err: string | null = null;
    let ok = false;
    for (const lm of local) {
      err = urlsEqual(em.peerURLs, lm.urls);
      if (err === null) {
        lm.id = em.id;
        ok = true;
        break;
      }
    }
    if (!ok) {
      throw wrap(`PeerURLs: no match found for existing member (${hex(em.id)}, ${goList(em.peerURLs)}), last resolver error (${err ?? "<nil>"})`);
    }
  }
  const me = local.find((m) => m.name === localName);
  if (me === undefined) throw new Error(`couldn't find local name ${goQuote(localName)} in the initial cluster configuration`);
  if (me.id === undefined) {
    // Two remote members with our URLs matched other entries first: cannot happen with
    // duplicate-free URLs, but never start with a made-up id.
    throw wrap(`PeerURLs: no match found for local member ${localName} (${goList(me.urls)})`);
  }
  return me.id;
}

export interface JoinResult {
  clusterId: bigint;
  /** This member's id (assigned by the cluster when it was added with `member add`). */
  localId: bigint;
  /** The members as the remote reported them (ours included, still unstarted: no name). */
  members: MemberInfo[];
}

/**
 * The whole join: VerifyJoinExisting, GET /members from the other members, validation and id
 * assignment. Throws with etcd's texts (see the functions above).
 */
export async function joinExistingCluster(opts: {
  name: string;
  initialCluster: Map<string, string[]>;
  tls: PeerTlsOptions["client"];
  timeoutMs?: number;
  logger?: JoinLogger;
}): Promise<JoinResult> {
  verifyJoinExisting(opts.initialCluster, opts.name);
  const remote = await fetchClusterFromPeers(remotePeerUrls(opts.initialCluster, opts.name), opts.tls, opts.timeoutMs, opts.logger);
  const localId = assignLocalId(opts.initialCluster, opts.name, remote);
  (opts.logger ?? defaultLog).info("fetched cluster from remote peers", {
    "cluster-id": hex(remote.clusterId),
    "local-member-id": hex(localId),
    members: remote.members.length,
  });
  return { clusterId: remote.clusterId, localId, members: remote.members };
}
