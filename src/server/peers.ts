// The member's peers (etcd's cluster view over rafthttp): the transport knows
// the members of the applied membership minus this one; peer-port requests
// besides Raft traffic are routed to what serves them (the member list for
// joiners, promotions forwarded to the leader, forwarded lease calls); a
// member that applied its own removal stops once the cluster had a moment to
// learn it.
//
// Unlike etcd, a member also talks to members its log has not brought yet: one
// restarted after being down while others were added cannot answer a leader
// (or a candidate) it never heard of, so it would never catch up, and a
// cluster whose quorum needs it could stall for good. Every peer stream names
// its sender's advertised URLs, and a member that does not know the sender
// adds it until its own membership catches up. Found by the simulator.
import { ConfChangeType, type ConfState } from "../raft/types.js";
import { log } from "../log.js";
import type { Clock } from "../runtime/time.js";
import type { PeerRequest, PeerResponse } from "../transport/types.js";
import type { PeerCaller } from "./peer-network.js";
import type { ClusterOps } from "./cluster-ops.js";
import { decodeMembersResponse, encodeMembersResponse, MEMBERS_PATH } from "./join.js";
import { LEASE_RENEW_PATH, LEASE_TTL_PATH, type LeaseDriver } from "./lease-driver.js";
import type { MemberInfo } from "./member-info.js";
import { encodeMemberContext, type Membership } from "./membership.js";
import { encodePromoteResponse, parsePromotePath, PROMOTE_PREFIX, promoteBadPathResponse } from "./promote.js";

/** What the peers part needs of the network: which peers it talks to, and requests to their ports. */
export interface PeerSet {
  addPeer(id: bigint, urls: string[]): void;
  removePeer(id: bigint): void;
  request: PeerCaller;
}

export const REMOVED_REASON = "the member has been permanently removed from the cluster";

export class Peers {
  /** Peers added to the network from the membership (or a joiner's first view), with their URLs. */
  private known = new Map<bigint, string[]>();
  private dirty = true;
  /** When this member applied its own removal (clock ms), if it did. */
  private removedAt: number | undefined;
  /** Another member applied this member's removal too (its member list lacks this one). */
  private removalConfirmed = false;
  /** When this removed member last asked its peers for their member lists (clock ms). */
  private askedAt = Number.NEGATIVE_INFINITY;
  /** Members learned from peers' member lists, not (yet) in the applied membership. */
  private readonly discovered = new Set<bigint>();

  constructor(
    private readonly selfId: bigint,
    private readonly clusterId: bigint,
    private readonly membership: Membership,
    private readonly net: PeerSet,
    private readonly clock: Clock,
    private readonly opts: { electionTimeoutMs: number; isLeader(): boolean; stop(reason: string): void },
  ) {}

  /** Whether this member talks to `id`. */
  knows(id: bigint): boolean {
    return id === this.selfId || this.known.has(id) || this.discovered.has(id);
  }

  /**
   * A peer's stream named its URLs. One this member does not know (its log has not brought it:
   * it was added while this member was down) is talked to from now on, until the log brings it
   * or removes it.
   */
  heardFrom(id: bigint, urls: string[]): void {
    if (this.knows(id) || this.membership.isRemoved(id)) return;
    log.info("talking to a member the log has not brought yet", { "local-member-id": hex(this.selfId), "remote-peer-id": hex(id), "remote-peer-urls": urls });
    this.discovered.add(id);
    this.net.addPeer(id, urls);
  }

  /** A joining member's peers, from the cluster it read, until the log brings the membership. */
  seed(members: readonly MemberInfo[]): void {
    for (const m of members) {
      if (m.id === this.selfId) continue;
      this.net.addPeer(m.id, m.peerURLs);
      this.known.set(m.id, m.peerURLs);
    }
  }

  /** The membership changed (a conf change or a snapshot): sync at the next chance. */
  changed(): void {
    this.dirty = true;
  }

  /** Peers in the network = members in the membership, minus this one. */
  sync(): void {
    if (!this.dirty) return;
    this.dirty = false;
    const members = this.membership.list();
    // A joining member knows nobody until the log brings the membership: keep the peers it was given.
    if (members.length === 0) return;
    const want = new Map<bigint, string[]>();
    for (const m of members) if (m.id !== this.selfId) want.set(m.id, m.peerURLs);
    for (const [id, urls] of want) this.net.addPeer(id, urls);
    for (const id of this.known.keys()) if (!want.has(id) && !this.discovered.has(id)) this.net.removePeer(id);
    this.known = want;
    // A discovered member stays until the log brings it (it is known then) or its removal.
    for (const id of this.discovered) {
      if (want.has(id)) this.discovered.delete(id);
      else if (this.membership.isRemoved(id)) {
        this.discovered.delete(id);
        this.net.removePeer(id);
      }
    }
  }

  /** This member applied its own removal. */
  selfRemoved(): void {
    this.removedAt = this.clock.now();
  }

  /**
   * The clock: a removed member stops once the cluster had a moment to learn it (etcd waits
   * likewise; a removed leader first hands over, which the Raft core does on its own), and only
   * once another member applied the removal too. Stopping before that could leave the others
   * unable to learn that the removal committed: the survivor of a two-member cluster would count
   * the removed member in its quorum forever (found by the simulator, seed 4191). A member whose
   * removal was applied elsewhere has a survivor that knows; the rest learn from it.
   */
  tick(): void {
    if (this.removedAt === undefined) return;
    const now = this.clock.now();
    const waited = now - this.removedAt;
    if ((this.opts.isLeader() && waited < 2 * this.opts.electionTimeoutMs) || waited < 1000) return;
    if (this.removalConfirmed) {
      this.opts.stop(REMOVED_REASON);
      return;
    }
    if (now - this.askedAt < this.opts.electionTimeoutMs) return;
    this.askedAt = now;
    for (const [id, urls] of this.known) {
      this.net.request(urls, { method: "GET", path: MEMBERS_PATH, timeoutMs: this.opts.electionTimeoutMs }).then(
        (reply) => {
          if (reply.status !== 200) return;
          const cluster = decodeMembersResponse(reply.body);
          if (cluster.clusterId === this.clusterId && !cluster.members.some((m) => m.id === this.selfId)) this.removalConfirmed = true;
        },
        (err) => log.debug("failed to read a peer's member list", { "remote-peer-id": hex(id), error: String((err as Error)?.message ?? err) }),
      );
    }
  }

  /** A data dir migrated from the single-member format has no membership rows: this member is the cluster. */
  ensureSelf(conf: ConfState, self: { name: string; peerURLs: string[] }, inTransaction: (fn: () => void) => void): void {
    if (this.membership.list().length > 0 || !(conf.voters.length === 1 && conf.voters[0] === this.selfId)) return;
    const context = encodeMemberContext({ id: this.selfId, name: self.name, peerURLs: self.peerURLs, clientURLs: [], isLearner: false });
    inTransaction(() => void this.membership.applyConfChange({ type: ConfChangeType.AddNode, nodeId: this.selfId, context }, false));
  }

  /** The peer port's requests besides Raft traffic. */
  async request(req: PeerRequest, serve: { clusterOps: ClusterOps; leases: LeaseDriver }): Promise<PeerResponse> {
    if (req.path === LEASE_RENEW_PATH || req.path === LEASE_TTL_PATH) return serve.leases.peerRequest(req);
    if (req.method === "GET" && req.path === MEMBERS_PATH) return encodeMembersResponse(this.clusterId, this.membership.list());
    if (req.method === "POST" && req.path.startsWith(PROMOTE_PREFIX)) {
      const id = parsePromotePath(req.path);
      if (id === undefined) return promoteBadPathResponse(req.path);
      try {
        return encodePromoteResponse(await serve.clusterOps.promoteOnLeader(id));
      } catch (err) {
        return encodePromoteResponse(err);
      }
    }
    return { status: 404, body: "404 page not found\n" };
  }
}

const hex = (id: bigint) => id.toString(16);

/** Logs why the member stops serving for good. */
export function logRemoved(selfId: bigint, reason: string): void {
  log.warn(reason, { "local-member-id": selfId.toString(16) });
}
