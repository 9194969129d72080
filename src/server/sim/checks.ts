// What must hold in every simulated run, checked as it goes and at the end:
// - every revision carries the same events on every member that applies it,
//   and each member publishes revisions in increasing order, never twice;
// - members at the same applied index have the same hashKV and the same users and roles;
// - every watch receives exactly the committed events after its start
//   revision, in order, once (a prefix of them if its member died);
// - a lease's keys go at one revision (the first rule), never before the
//   lease's TTL from its last acknowledged renewal, and surely once it is
//   left to expire;
// - the clients' key-value history is linearizable (an acknowledged write that
//   a crash lost shows up there).
import { create } from "@bufbuild/protobuf";
import { RangeRequestSchema } from "../../gen/etcdserverpb/rpc_pb.js";
import { Event_EventType, type Event } from "../../gen/mvccpb/kv_pb.js";
import { checkLinearizable } from "../../testing/linearizability/check.js";
import { kvModel } from "../../testing/linearizability/model.js";
import type { Member } from "../member.js";
import type { Slot } from "./cluster.js";
import { KV_PREFIX, LEASE_PREFIX, type Workload } from "./workload.js";

const dec = (b: Uint8Array) => new TextDecoder().decode(b);

interface RevisionRecord {
  /** The events as the first member published them. */
  digest: string;
  /** Checked-range events, for the watch check. */
  watched: string[];
  /** Simulated ms of its first publication anywhere. */
  at: number;
  by: string;
}

export class Invariants {
  readonly failures: string[] = [];
  private readonly revisions = new Map<number, RevisionRecord>();
  /** Last revision each member incarnation published. */
  private readonly lastRev = new Map<number, number>();
  /** Lease id → simulated ms its key was first deleted. */
  private readonly leaseGone = new Map<bigint, number>();
  hashChecks = 0;

  fail(what: string): void {
    if (this.failures.length < 20) this.failures.push(what);
  }

  /** A member published revision `rev` (its transaction committed) at simulated time `now`. */
  published(slot: Slot, rev: number, events: Event[], now: number): void {
    const last = this.lastRev.get(slot.owner!) ?? 0;
    if (rev <= last) this.fail(`${slot.name} published revision ${rev} after ${last}`);
    this.lastRev.set(slot.owner!, rev);
    const digest = events.map((e) => eventKey(e, true)).join(";");
    const seen = this.revisions.get(rev);
    if (seen === undefined) {
      const watched = events.filter((e) => dec(e.kv!.key).startsWith(KV_PREFIX)).map((e) => eventKey(e, false));
      this.revisions.set(rev, { digest, watched, at: now, by: slot.name });
    } else if (seen.digest !== digest) {
      this.fail(`revision ${rev}: ${slot.name} applied [${digest}], ${seen.by} applied [${seen.digest}]`);
    }
    for (const e of events) {
      const key = dec(e.kv!.key);
      if (e.type === Event_EventType.DELETE && key.startsWith(LEASE_PREFIX)) {
        const id = BigInt(key.slice(LEASE_PREFIX.length));
        if (!this.leaseGone.has(id)) this.leaseGone.set(id, now);
      }
    }
  }

  /** Members at the same applied index must hold the same key space and the same users and roles. */
  checkHashes(live: Slot[]): void {
    const byIndex = new Map<number, { hash: number; auth: string; by: string }>();
    for (const s of live) {
      const m = s.member!;
      const index = m.appliedIndex;
      const hash = m.maintenance.hashKV(0).hash;
      const auth = authDigest(m);
      const seen = byIndex.get(index);
      if (seen === undefined) byIndex.set(index, { hash, auth, by: s.name });
      else if (seen.hash !== hash) this.fail(`applied index ${index}: hashKV ${hash} on ${s.name}, ${seen.hash} on ${seen.by}`);
      else if (seen.auth !== auth) this.fail(`applied index ${index}: auth store ${auth} on ${s.name}, ${seen.auth} on ${seen.by}`);
    }
    this.hashChecks++;
  }

  /**
   * Every watch got the committed events after its start revision, in order, once: all of them
   * up to `finalRev` if it is still open, a prefix of them if its member died or compaction
   * canceled it. Returns how many watches could not be checked (a revision nobody published).
   */
  checkWatches(w: Workload, finalRev: number, counted: Set<string>): number {
    let unknown = 0;
    for (const rec of w.watches) {
      const got: string[] = [];
      let canceled = false;
      for (const m of rec.messages) {
        if (m.compactRevision !== 0) canceled = true;
        if (canceled) break;
        for (const e of m.events) got.push(eventKey(e, false));
      }
      // A watch on a member the cluster no longer counts (removed, lingering until it may stop) owes a prefix only.
      const complete = rec.endedAt === undefined && !canceled && counted.has(rec.slot);
      const { events: want, whole } = this.watchedEvents(rec.startRevision, finalRev);
      const problem = compareWatch(got, want, complete, w.compactedAt);
      // Past a revision nobody published, the watch cannot be judged.
      if (problem !== undefined && !whole && (complete || problem.endsWith("want nothing more"))) unknown++;
      else if (problem !== undefined) this.fail(`watch on ${rec.slot} from revision ${rec.startRevision}: ${problem}`);
    }
    return unknown;
  }

  /** The checked-range events of revisions from..to, up to the first revision nobody published (`whole` is false then). */
  private watchedEvents(from: number, to: number): { events: string[]; whole: boolean } {
    const events: string[] = [];
    // Revision 1 is a new store's own, with no events.
    for (let r = Math.max(from, 2); r <= to; r++) {
      const rr = this.revisions.get(r);
      if (rr === undefined) return { events, whole: false };
      events.push(...rr.watched);
    }
    return { events, whole: true };
  }

  /**
   * Lease keys never go before TTL after the last acknowledged renewal; abandoned leases are gone
   * by `end` if they had their TTL since being abandoned and since the last leader change (a new
   * leader gives every lease its TTL again, as etcd's does).
   */
  checkLeases(w: Workload, live: Slot[], end: number, leaderChangedAt: number, electionMs: number): void {
    for (const l of w.leases) {
      if (!l.keyPut) continue;
      const goneAt = this.leaseGone.get(l.id);
      const lastRenewal = Math.max(l.grantCalledAt, ...l.renewedAt);
      if (goneAt !== undefined && goneAt < lastRenewal + l.ttlSeconds * 1000) {
        this.fail(`lease ${l.id} (TTL ${l.ttlSeconds}s): its key went at ${goneAt} ms, before ${lastRenewal} + TTL (last acknowledged renewal sent then)`);
      }
      // Left alone long enough: its TTL, the promotion's extension and the revoke's round trip.
      const due = Math.max(l.abandonedAt ?? Infinity, leaderChangedAt) + l.ttlSeconds * 1000 + 5 * electionMs;
      if (goneAt === undefined && due < end) {
        for (const s of live) {
          const key = new TextEncoder().encode(`${LEASE_PREFIX}${l.id}`);
          if (s.member!.state.store.range(create(RangeRequestSchema, { key })).kvs.length > 0) {
            this.fail(`lease ${l.id} (TTL ${l.ttlSeconds}s) abandoned at ${l.abandonedAt} ms still holds its key on ${s.name} at ${end} ms`);
            break;
          }
        }
      }
    }
  }

  /** The clients' history; "unknown" when the checker ran out of budget. */
  checkHistory(w: Workload, seed: number): "ok" | "unknown" {
    const r = checkLinearizable(kvModel, w.history, { timeoutMs: 5000 });
    if (r.ok === false) this.fail(`seed ${seed}: the clients' history is not linearizable\n${r.explanation}`);
    return r.ok === "unknown" ? "unknown" : "ok";
  }
}

/**
 * Where a watch's events differ from the committed ones, if they do. As in etcd, a compaction at
 * revision C removes the tombstones at C, so a watcher catching up from C (allowed: only a start
 * below C is refused) does not see a delete at C: such events may be missing.
 */
function compareWatch(got: string[], want: string[], complete: boolean, compactedAt: Set<number>): string | undefined {
  let j = 0;
  for (let i = 0; i < want.length && (complete || j < got.length); i++) {
    if (got[j] === want[i]) {
      j++;
      continue;
    }
    const m = /^D .*@(\d+)\//.exec(want[i]);
    if (m !== null && compactedAt.has(Number(m[1]))) continue;
    return `event ${j} is ${got[j] ?? "missing"}, want ${want[i]}`;
  }
  return j < got.length ? `event ${j} is ${got[j]}, want nothing more` : undefined;
}

/** An event as text; `full` adds what only the cross-member check compares (lease, previous value). */
function eventKey(e: Event, full: boolean): string {
  const kv = e.kv!;
  const base = `${e.type === Event_EventType.DELETE ? "D" : "P"} ${dec(kv.key)}=${dec(kv.value)}@${kv.modRevision}/${kv.createRevision}/${kv.version}`;
  if (!full) return base;
  return `${base} l${kv.lease}${e.prevKv ? ` prev@${e.prevKv.modRevision}` : ""}`;
}

/** The member's users (with roles), roles (with permissions) and auth revision, as text. */
function authDigest(m: Member): string {
  const auth = m.state.auth;
  const users = auth.userList().map((u) => [u, auth.userGet(u)]);
  const roles = auth.roleList().map((r) => [r, auth.roleGet(r).map((p) => [p.permType, [...p.key], [...p.rangeEnd]])]);
  return JSON.stringify({ rev: auth.revision, users, roles });
}
