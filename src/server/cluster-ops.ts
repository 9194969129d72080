// etcd 3.5's membership operations (etcdserver.AddMember, RemoveMember,
// UpdateMember, PromoteMember and the v3 Cluster API around them): the checks
// a member makes BEFORE proposing a change. The checks the log decides (ids,
// duplicate peer URLs, learner count) run at apply time in Membership, so
// every member agrees; their errors come back through proposeConfChange.
//
// Everything about the running member (raft status, transport, clock,
// proposals) is injected as ClusterDeps, so the rules are testable alone.
import { createHash } from "node:crypto";
import { Errors } from "../errors.ts";
import { type ConfChange, ConfChangeType } from "../raft/types.ts";
import type { MemberInfo } from "./member-info.ts";
import { encodeMemberContext, type Membership } from "./membership.ts";

/** etcd's HealthInterval: a peer counts as connected once its stream has been up this long. */
export const HEALTH_INTERVAL_MS = 5000;
/** etcd's readyPercent: a learner is ready when its match index is at least this share of the leader's. */
export const READY_PERCENT = 0.9;

export interface ClusterDeps {
  selfId: bigint;
  /** etcd's --strict-reconfig-check (default true). */
  strictReconfigCheck: boolean;
  membership: Membership;
  isLeader(): boolean;
  /** The leader's id as this member knows it; 0n when there is none. */
  leaderId(): bigint;
  /** On the leader: raft progress match index per member id, the leader's own entry included (its last index). */
  progress(): Map<bigint, number>;
  /** ms timestamp since which the peer stream to `id` has been active; undefined if not connected. */
  activeSince(id: bigint): number | undefined;
  /** ms, the same clock as activeSince. */
  now(): number;
  /**
   * Propose and wait until applied locally. Rejects with an EtcdError on
   * timeout / no leader, and with the error Membership.applyConfChange
   * returned for it when the log refused it (memberExist, peerURLExist, ...).
   */
  proposeConfChange(cc: ConfChange): Promise<void>;
  /** Wait until this member has applied everything committed before the call (ReadIndex). */
  linearizableBarrier(): Promise<void>;
  /**
   * Follower: ask the leader (over the peer port) to promote `id`; resolves
   * with the member list after it. The leader answers with
   * ClusterOps.promoteOnLeader; its EtcdError must surface unchanged.
   */
  forwardPromote(leader: bigint, id: bigint): Promise<MemberInfo[]>;
}

export interface MemberAddResult {
  /** The new member as etcd's MemberAdd returns it: id, sorted peer URLs, isLearner; no name or client URLs yet. */
  member: MemberInfo;
  /** The member list after the change. */
  members: MemberInfo[];
}

/**
 * Parses peer URLs like etcd's types.NewURLs and returns them sorted (etcd
 * stores them sorted); throws memberBadURLs. Rules: at least one URL; each,
 * trimmed, has scheme http, https, unix or unixs, a "host:port" authority and
 * no path.
 */
export function parsePeerURLs(urls: string[]): string[] {
  if (urls.length === 0) throw Errors.memberBadURLs();
  const out = urls.map((raw) => {
    const u = normalizeURL(raw.trim());
    if (u === undefined) throw Errors.memberBadURLs();
    return u;
  });
  return out.sort();
}

/** The URL as Go's url.URL.String() prints it (scheme lowercased), or undefined when etcd would refuse it. */
function normalizeURL(s: string): string | undefined {
  const m = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/([^/?#]*)(.*)$/.exec(s);
  if (!m) return undefined;
  const scheme = m[1].toLowerCase();
  if (scheme !== "http" && scheme !== "https" && scheme !== "unix" && scheme !== "unixs") return undefined;
  const authority = m[2];
  const rest = m[3];
  // A path (anything up to ? or #) is refused; a query or fragment is not a path.
  if (rest !== "" && !rest.startsWith("?") && !rest.startsWith("#")) return undefined;
  const host = authority.slice(authority.lastIndexOf("@") + 1);
  if (!hasPort(host)) return undefined;
  return `${scheme}://${authority}${rest}`;
}

/**
 * Go's url.Parse accepts the authority's port (digits, possibly none) and
 * net.SplitHostPort then finds "host:port" or "[v6]:port".
 */
function hasPort(host: string): boolean {
  let port: string;
  if (host.startsWith("[")) {
    const close = host.indexOf("]");
    if (close < 0 || host[close + 1] !== ":") return false;
    port = host.slice(close + 2);
  } else {
    const colon = host.indexOf(":");
    if (colon < 0 || colon !== host.lastIndexOf(":") || host.includes("[") || host.includes("]")) return false;
    port = host.slice(colon + 1);
  }
  return /^[0-9]*$/.test(port);
}

/**
 * etcd's new member id (membership.NewMember): sha1 of the sorted peer URLs
 * concatenated, the cluster name, and the unix time in seconds; the first 8
 * bytes big-endian. The v3 MemberAdd passes an empty cluster name, so two
 * adds of the same URLs in different seconds get different ids.
 */
export function newMemberId(sortedPeerURLs: string[], clusterName: string, unixSeconds: number): bigint {
  const data = sortedPeerURLs.join("") + clusterName + String(unixSeconds);
  return createHash("sha1").update(data).digest().readBigUInt64BE(0);
}

export class ClusterOps {
  constructor(private readonly deps: ClusterDeps) {}

  /** MemberAdd: validate URLs, derive the id, strict checks, propose AddNode / AddLearnerNode. */
  async memberAdd(peerURLs: string[], isLearner: boolean): Promise<MemberAddResult> {
    const urls = parsePeerURLs(peerURLs);
    const id = newMemberId(urls, "", Math.floor(this.deps.now() / 1000));
    const member: MemberInfo = { id, name: "", peerURLs: urls, clientURLs: [], isLearner };
    this.mayAddMember(member);
    await this.deps.proposeConfChange({
      type: isLearner ? ConfChangeType.AddLearnerNode : ConfChangeType.AddNode,
      nodeId: id,
      context: encodeMemberContext(member),
    });
    return { member: { ...member, peerURLs: [...urls] }, members: this.deps.membership.list() };
  }

  /** MemberRemove: strict checks, propose RemoveNode (unknown / removed ids fail at apply: memberNotFound). */
  async memberRemove(id: bigint): Promise<MemberInfo[]> {
    this.mayRemoveMember(id);
    await this.deps.proposeConfChange({ type: ConfChangeType.RemoveNode, nodeId: id, context: new Uint8Array(0) });
    return this.deps.membership.list();
  }

  /**
   * MemberUpdate: propose UpdateNode with the new peer URLs, stored in the
   * order given (as etcd does). etcd's v3 API does not validate them; we do
   * (memberBadURLs), since a member with an unparsable peer URL cannot be
   * reached by anyone.
   */
  async memberUpdate(id: bigint, peerURLs: string[]): Promise<MemberInfo[]> {
    parsePeerURLs(peerURLs);
    const urls = peerURLs.map((u) => u.trim());
    const member: MemberInfo = { id, name: "", peerURLs: urls, clientURLs: [], isLearner: false };
    await this.deps.proposeConfChange({ type: ConfChangeType.UpdateNode, nodeId: id, context: encodeMemberContext(member) });
    return this.deps.membership.list();
  }

  /** MemberList; `linearizable` (etcd 3.5) first waits for everything committed to be applied here. */
  async memberList(linearizable: boolean): Promise<MemberInfo[]> {
    if (linearizable) await this.deps.linearizableBarrier();
    return this.deps.membership.list();
  }

  /**
   * MemberPromote: only the leader knows whether the learner caught up, so a
   * follower forwards to the leader (etcd's PromoteMember → promoteMemberHTTP).
   */
  async memberPromote(id: bigint): Promise<MemberInfo[]> {
    if (this.deps.isLeader()) return this.promoteOnLeader(id);
    const leader = this.deps.leaderId();
    if (leader === 0n) throw Errors.noLeader();
    return this.deps.forwardPromote(leader, id);
  }

  /**
   * The leader's side of a promotion (etcd's promoteMember); throws notLeader
   * elsewhere, so a forwarded request that reaches an ex-leader fails instead
   * of bouncing. Order as etcd 3.5: applied index caught up, id in the raft
   * progress (else memberNotFound), learner ready, strict check, propose.
   * "Not a learner" is decided at apply time (memberNotLearner).
   */
  async promoteOnLeader(id: bigint): Promise<MemberInfo[]> {
    if (!this.deps.isLeader()) throw Errors.notLeader();
    await this.deps.linearizableBarrier();
    this.isLearnerReady(id);
    if (this.deps.strictReconfigCheck && !this.isReadyToPromoteMember()) throw Errors.memberNotEnoughStarted();
    const context = encodeMemberContext({ id, name: "", peerURLs: [], clientURLs: [], isLearner: false }, true);
    await this.deps.proposeConfChange({ type: ConfChangeType.AddNode, nodeId: id, context });
    return this.deps.membership.list();
  }

  // ---- etcd's checks -------------------------------------------------------------

  /** etcd's isLearnerReady (3.5): on the leader, the learner's match must reach 90% of the leader's. */
  private isLearnerReady(id: bigint): void {
    if (!this.deps.isLeader()) throw Errors.notLeader();
    const progress = this.deps.progress();
    const learnerMatch = progress.get(id);
    if (learnerMatch === undefined) throw Errors.memberNotFound();
    const leaderMatch = progress.get(this.deps.selfId) ?? 0;
    if (learnerMatch < leaderMatch * READY_PERCENT) throw Errors.learnerNotReady();
  }

  /** etcd's mayAddMember. */
  private mayAddMember(m: MemberInfo): void {
    if (!this.deps.strictReconfigCheck) return;
    if (!m.isLearner && !this.isReadyToAddVotingMember()) throw Errors.memberNotEnoughStarted();
    // Also for learners (as etcd): a reconfiguration while peers are down may break the active quorum.
    const voters = this.deps.membership.voters();
    if (this.numConnectedSince(voters) !== voters.length) throw Errors.unhealthy();
  }

  /** etcd's mayRemoveMember. */
  private mayRemoveMember(id: bigint): void {
    if (!this.deps.strictReconfigCheck) return;
    // Removing a learner never costs a vote.
    if (this.deps.membership.get(id)?.isLearner) return;
    if (!this.isReadyToRemoveVotingMember(id)) throw Errors.memberNotEnoughStarted();
    // A member that is down is not part of the active quorum: removing it is safe.
    if (id !== this.deps.selfId && this.deps.activeSince(id) === undefined) return;
    const voters = this.deps.membership.voters();
    const active = this.numConnectedSince(voters);
    if (active - 1 < 1 + Math.floor((voters.length - 1) / 2)) throw Errors.unhealthy();
  }

  /**
   * etcd's IsReadyToAddVotingMember. "Started" here is etcd's IsStarted: the
   * member published its name (applyAttributes), not a transport fact.
   */
  private isReadyToAddVotingMember(): boolean {
    const voters = this.deps.membership.voters();
    const nmembers = voters.length + 1;
    const nstarted = voters.filter((m) => m.name !== "").length;
    // Adding a second member to a one-member cluster (restoring a cluster from a backup).
    if (nstarted === 1 && nmembers === 2) return true;
    return nstarted >= Math.floor(nmembers / 2) + 1;
  }

  /** etcd's IsReadyToRemoveVotingMember: the remaining voters keep a started quorum. */
  private isReadyToRemoveVotingMember(id: bigint): boolean {
    const rest = this.deps.membership.voters().filter((m) => m.id !== id);
    const nstarted = rest.filter((m) => m.name !== "").length;
    return nstarted >= Math.floor(rest.length / 2) + 1;
  }

  /** etcd's IsReadyToPromoteMember: the learner counts as a started future voter. */
  private isReadyToPromoteMember(): boolean {
    const voters = this.deps.membership.voters();
    const nmembers = voters.length + 1;
    const nstarted = voters.filter((m) => m.name !== "").length + 1;
    return nstarted >= Math.floor(nmembers / 2) + 1;
  }

  /** etcd's numConnectedSince(now - HealthInterval): this member, plus peers connected strictly before then. */
  private numConnectedSince(members: MemberInfo[]): number {
    const since = this.deps.now() - HEALTH_INTERVAL_MS;
    let n = 0;
    for (const m of members) {
      if (m.id === this.deps.selfId) {
        n++;
        continue;
      }
      const t = this.deps.activeSince(m.id);
      if (t !== undefined && t < since) n++;
    }
    return n;
  }
}
