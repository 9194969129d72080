// The cluster's membership as applied from the log: who is a member (voter or
// learner), with which URLs, which ids were removed for good, and the cluster
// version. etcd's membership.RaftCluster, minus everything that is not state.
//
// Writes are APPLY functions: the member calls them while applying a committed
// entry, inside the SQLite transaction it owns for that entry, so the tables
// always agree with the applied index. They must be deterministic: every
// member applies the same entries to the same state and must decide the same.
//
// A small in-memory copy serves reads (list() is called per MemberList and by
// the transport). It is updated with every write; when the tables change
// under it (a snapshot installed, a transaction rolled back) call reload().
import type { Database, Statement } from "bun:sqlite";
import { type EtcdError, Errors } from "../errors.ts";
import { type ConfChange, ConfChangeType, type ConfState } from "../raft/types.ts";
import { MetaStore } from "../storage/meta-store.ts";
import { MetaKey, type members, type membersRemoved } from "../storage/schema.ts";
import type { SqlRow } from "../storage/sql-table.ts";
import type { MemberInfo } from "./member-info.ts";

/** etcd's maxLearners: at most this many learners at a time. */
export const MAX_LEARNERS = 1;

/**
 * What applyConfChange decided: the change raft must apply (RawNode.applyConfChange)
 * — the entry's change itself, or a copy with nodeId 0n ("neutralized": raft
 * applies nothing) when the membership refused it — and, when refused, why:
 * the error for the waiting proposer (etcd's configure() returns it).
 */
export type AppliedConfChange = ConfChange & { error?: EtcdError };

/** The decoded ConfChange context. */
export interface MemberContext {
  member: MemberInfo;
  /** An AddNode that promotes an existing learner (etcd's ConfigChangeContext.IsPromote). */
  promote: boolean;
}

// ---- ConfChange context: our own JSON, read only by tsetcd members ----------

/**
 * The ConfChange context for adding `m` (or, with `promote`, for promoting the
 * learner `m.id`; only the id matters then). Ids travel as decimal strings:
 * JSON numbers lose precision above 2^53.
 */
export function encodeMemberContext(m: MemberInfo, promote = false): Uint8Array {
  const json = {
    id: m.id.toString(),
    name: m.name,
    peerURLs: m.peerURLs,
    clientURLs: m.clientURLs,
    isLearner: m.isLearner,
    isPromote: promote,
  };
  return new TextEncoder().encode(JSON.stringify(json));
}

/** Decodes a context written by encodeMemberContext; throws on anything else. */
export function decodeContext(b: Uint8Array): MemberContext {
  if (b.byteLength === 0) throw new Error("conf change context is empty: want a member");
  let v: unknown;
  try {
    v = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(b));
  } catch (e) {
    throw new Error(`conf change context is not JSON: ${(e as Error).message}`);
  }
  const o = v as Record<string, unknown>;
  if (typeof o !== "object" || o === null || Array.isArray(o)) throw new Error("conf change context: want an object");
  if (typeof o.id !== "string" || !/^[0-9]{1,20}$/.test(o.id)) throw new Error("conf change context: bad id");
  const id = BigInt(o.id);
  if (id === 0n || id >= 1n << 64n) throw new Error("conf change context: id out of range");
  const strings = (x: unknown, what: string): string[] => {
    if (!Array.isArray(x) || !x.every((s) => typeof s === "string")) throw new Error(`conf change context: bad ${what}`);
    return [...x];
  };
  if (typeof o.name !== "string") throw new Error("conf change context: bad name");
  if (typeof o.isLearner !== "boolean") throw new Error("conf change context: bad isLearner");
  if (o.isPromote !== undefined && typeof o.isPromote !== "boolean") throw new Error("conf change context: bad isPromote");
  return {
    member: {
      id,
      name: o.name,
      peerURLs: strings(o.peerURLs, "peerURLs"),
      clientURLs: strings(o.clientURLs, "clientURLs"),
      isLearner: o.isLearner,
    },
    promote: o.isPromote === true,
  };
}

export function decodeMemberContext(b: Uint8Array): MemberInfo {
  return decodeContext(b).member;
}

// ---- the store ---------------------------------------------------------------

type MemberRow = SqlRow<typeof members>;

function cloneMember(m: MemberInfo): MemberInfo {
  return { ...m, peerURLs: [...m.peerURLs], clientURLs: [...m.clientURLs] };
}

function neutralized(cc: ConfChange, error?: EtcdError): AppliedConfChange {
  return error ? { type: cc.type, nodeId: 0n, context: cc.context, error } : { type: cc.type, nodeId: 0n, context: cc.context };
}

export class Membership {
  private readonly meta: MetaStore;
  private readonly selectMembers: Statement;
  private readonly selectRemoved: Statement;
  private readonly upsertMember: Statement;
  private readonly deleteMember: Statement;
  private readonly insertRemoved: Statement;

  private members = new Map<bigint, MemberInfo>();
  private removed = new Set<bigint>();
  private version = "";

  constructor(db: Database) {
    this.meta = new MetaStore(db);
    this.selectMembers = db.prepare("SELECT id, name, peer_urls, client_urls, is_learner FROM members");
    this.selectRemoved = db.prepare("SELECT id FROM members_removed");
    this.upsertMember = db.prepare(
      `INSERT INTO members (id, name, peer_urls, client_urls, is_learner) VALUES (?1, ?2, ?3, ?4, ?5)
       ON CONFLICT(id) DO UPDATE SET name = excluded.name, peer_urls = excluded.peer_urls,
         client_urls = excluded.client_urls, is_learner = excluded.is_learner`,
    );
    this.deleteMember = db.prepare("DELETE FROM members WHERE id = ?1");
    this.insertRemoved = db.prepare("INSERT OR IGNORE INTO members_removed (id) VALUES (?1)");
    this.reload();
  }

  /** Re-reads the tables: after installing a snapshot that replaced them, or after a rolled-back transaction. */
  reload(): void {
    const members = new Map<bigint, MemberInfo>();
    for (const r of this.selectMembers.all() as MemberRow[]) {
      const id = BigInt(r.id);
      members.set(id, {
        id,
        name: r.name,
        peerURLs: JSON.parse(r.peer_urls) as string[],
        clientURLs: JSON.parse(r.client_urls) as string[],
        isLearner: r.is_learner !== 0,
      });
    }
    const removed = new Set<bigint>();
    for (const r of this.selectRemoved.all() as SqlRow<typeof membersRemoved>[]) removed.add(BigInt(r.id));
    this.members = members;
    this.removed = removed;
    this.version = this.meta.getText(MetaKey.clusterVersion) ?? "";
  }

  // ---- reads -------------------------------------------------------------------

  /** All members sorted by id (etcd's Members(): MembersByID, unsigned order). Copies. */
  list(): MemberInfo[] {
    return [...this.members.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)).map(cloneMember);
  }

  get(id: bigint): MemberInfo | undefined {
    const m = this.members.get(id);
    return m && cloneMember(m);
  }

  /** Voting members sorted by id (etcd's VotingMembers()). */
  voters(): MemberInfo[] {
    return this.list().filter((m) => !m.isLearner);
  }

  isRemoved(id: bigint): boolean {
    return this.removed.has(id);
  }

  /** The raft configuration this membership implies (raft's must equal it once the same entries are applied). */
  confState(): ConfState {
    const l = this.list();
    return { voters: l.filter((m) => !m.isLearner).map((m) => m.id), learners: l.filter((m) => m.isLearner).map((m) => m.id) };
  }

  /** "" until a leader proposed one (etcd's nil cluster version). */
  clusterVersion(): string {
    return this.version;
  }

  // ---- apply -------------------------------------------------------------------

  /**
   * Applies a committed ConfChange entry to the membership and returns what
   * raft must apply. `replay` is for entries the database already reflects
   * (index <= the applied index after a restart), re-delivered only to rebuild
   * raft's configuration: they change nothing here (see replayDecision).
   *
   * Otherwise etcd's ValidateConfigurationChange decides, against the current
   * membership; a refused change is neutralized (nodeId 0n, nothing changes,
   * and the error goes to the proposer):
   * - any change for a removed id                           → memberNotFound
   * - AddNode/AddLearnerNode with promote: id unknown        → memberNotFound
   *                                        not a learner     → memberNotLearner
   * - AddNode/AddLearnerNode: id exists                      → memberExist
   *     a peer URL used by any member                        → peerURLExist
   *     a learner when MAX_LEARNERS already exist            → tooManyLearners
   * - RemoveNode, UpdateNode: id unknown                     → memberNotFound
   * - UpdateNode: a peer URL used by another member          → peerURLExist
   * A context that does not decode, or names another id than the change,
   * throws: only tsetcd proposes conf changes, so that is a bug (etcd panics).
   */
  applyConfChange(cc: ConfChange, replay = false): AppliedConfChange {
    if (replay) return this.replayDecision(cc);
    const id = cc.nodeId;
    if (id === 0n) return cc; // already neutral (nothing to validate or apply)
    if (this.removed.has(id)) return neutralized(cc, Errors.memberNotFound());
    switch (cc.type) {
      case ConfChangeType.AddNode:
      case ConfChangeType.AddLearnerNode: {
        const ctx = decodeContext(cc.context);
        if (ctx.member.id !== id) throw new Error(`conf change for ${id} carries member ${ctx.member.id}`);
        const existing = this.members.get(id);
        if (ctx.promote) {
          if (cc.type !== ConfChangeType.AddNode) throw new Error("a promotion must be an AddNode");
          if (!existing) return neutralized(cc, Errors.memberNotFound());
          if (!existing.isLearner) return neutralized(cc, Errors.memberNotLearner());
          this.write({ ...existing, isLearner: false });
          return cc;
        }
        if ((cc.type === ConfChangeType.AddLearnerNode) !== ctx.member.isLearner) {
          throw new Error(`conf change type ${cc.type} disagrees with isLearner=${ctx.member.isLearner}`);
        }
        if (existing) return neutralized(cc, Errors.memberExist());
        if (this.peerURLInUse(ctx.member.peerURLs, undefined)) return neutralized(cc, Errors.peerURLExist());
        if (ctx.member.isLearner && this.learnerCount() + 1 > MAX_LEARNERS) return neutralized(cc, Errors.tooManyLearners());
        this.write(ctx.member);
        return cc;
      }
      case ConfChangeType.RemoveNode: {
        if (!this.members.has(id)) return neutralized(cc, Errors.memberNotFound());
        this.deleteMember.run(id.toString());
        this.insertRemoved.run(id.toString());
        this.members.delete(id);
        this.removed.add(id);
        return cc;
      }
      case ConfChangeType.UpdateNode: {
        const existing = this.members.get(id);
        if (!existing) return neutralized(cc, Errors.memberNotFound());
        const ctx = decodeContext(cc.context);
        if (ctx.member.id !== id) throw new Error(`conf change for ${id} carries member ${ctx.member.id}`);
        if (this.peerURLInUse(ctx.member.peerURLs, id)) return neutralized(cc, Errors.peerURLExist());
        // Only the peer URLs change. etcd replaces all raft attributes, which
        // also clears IsLearner in its member list (the context has it false)
        // while raft keeps the learner: we keep the two in agreement instead.
        this.write({ ...existing, peerURLs: [...ctx.member.peerURLs] });
        return cc;
      }
    }
  }

  /**
   * The change raft must re-apply for an entry the membership already
   * reflects. Raft restarts from its snapshot's configuration and re-applies
   * the entries after it; the membership tables are as of the applied index,
   * i.e. AFTER all of them, so each entry's original decision cannot be
   * re-derived from the state before it. It does not need to be: an id's life
   * is monotonic (learner → voter → removed; never re-added: removed ids and
   * existing ids are refused), so a replayed change is let through exactly
   * when it moves the id toward its final state here:
   *   AddNode        iff the id is now a voter (an add or a promotion)
   *   AddLearnerNode iff the id is now a learner (never: a demotion attempt)
   *   RemoveNode     iff the id is now removed
   *   UpdateNode     iff the id is a member (no effect on the configuration)
   * Starting from any configuration of the history that led here, applying
   * the entries after it with these decisions ends in confState(), because
   * raft's applyChange is idempotent (adding a voter again, removing an
   * absent id are no-ops). Duplicates the first apply refused are let through
   * harmlessly for the same reason.
   */
  private replayDecision(cc: ConfChange): AppliedConfChange {
    const id = cc.nodeId;
    if (id === 0n) return cc;
    const m = this.members.get(id);
    let ok: boolean;
    switch (cc.type) {
      case ConfChangeType.AddNode:
        ok = m !== undefined && !m.isLearner;
        break;
      case ConfChangeType.AddLearnerNode:
        ok = m !== undefined && m.isLearner;
        break;
      case ConfChangeType.RemoveNode:
        ok = this.removed.has(id);
        break;
      case ConfChangeType.UpdateNode:
        ok = m !== undefined;
        break;
    }
    return ok ? cc : neutralized(cc);
  }

  /**
   * A started member publishes its name and client URLs through the log
   * (etcd's publish → UpdateAttributes). Ignored for removed ids, as etcd
   * does, and for unknown ids (etcd panics there; a deterministic no-op is
   * kinder when a request outlives its member).
   */
  applyAttributes(id: bigint, name: string, clientURLs: string[]): void {
    const m = this.members.get(id);
    if (!m) return;
    this.write({ ...m, name, clientURLs: [...clientURLs] });
  }

  applyClusterVersion(v: string): void {
    this.meta.setText(MetaKey.clusterVersion, v);
    this.version = v;
  }

  // ---- helpers -----------------------------------------------------------------

  private write(m: MemberInfo): void {
    const copy = cloneMember(m);
    this.upsertMember.run(copy.id.toString(), copy.name, JSON.stringify(copy.peerURLs), JSON.stringify(copy.clientURLs), copy.isLearner ? 1 : 0);
    this.members.set(copy.id, copy);
  }

  private peerURLInUse(urls: string[], except: bigint | undefined): boolean {
    const used = new Set<string>();
    for (const m of this.members.values()) if (m.id !== except) for (const u of m.peerURLs) used.add(u);
    return urls.some((u) => used.has(u));
  }

  private learnerCount(): number {
    let n = 0;
    for (const m of this.members.values()) if (m.isLearner) n++;
    return n;
  }
}
