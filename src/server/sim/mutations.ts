// Planted bugs: each turns a member into one with a driver bug of the kind a
// review would miss, by replacing one method of one of its parts. The
// simulator must catch every one of them (sim.test.ts names a seed that does),
// which shows it bites. Test code only; it reaches into the member's parts.
import type { Member } from "../member.js";
import type { Parts } from "../member-parts.js";
import type { SendPlan } from "../raft-loop.js";
import type { Ready, ReadState } from "../../raft/types.js";

export type Mutation = (m: Member) => void;

function partsOf(m: Member): Parts {
  return (m as unknown as { parts: Parts }).parts;
}

export const MUTATIONS = {
  /**
   * A follower acknowledges appended entries before its transaction commits: its messages leave
   * first and it yields before persisting, so a crash in between loses entries the leader already
   * counted toward a quorum.
   */
  "ack-before-fsync": (m) => {
    const loop = partsOf(m).loop as unknown as { begin(rd: Ready): SendPlan; net: { send(msgs: unknown[]): void } };
    const begin = loop.begin.bind(loop);
    loop.begin = (rd) => {
      const plan = begin(rd);
      if (plan.early || rd.messages.length === 0) return plan;
      loop.net.send(rd.messages);
      return { early: true, yieldBeforePersist: rd.entries.length > 0 };
    };
  },

  /** A snapshot whose data is ahead of its metadata is taken as applied only up to the metadata: the entries in between are applied twice. */
  "apply-twice-after-install": (m) => {
    const applier = partsOf(m).applier;
    const reset = applier.reset.bind(applier);
    applier.reset = (snapshot) => reset(snapshot, snapshot.index);
  },

  /** A linearizable read is served as soon as the leader confirms its read index, before this member applied up to it. */
  "read-before-apply": (m) => {
    const reads = partsOf(m).reads;
    const onReadState = reads.onReadState.bind(reads);
    reads.onReadState = (rs: ReadState) => onReadState({ ...rs, index: 0 });
  },

  /**
   * The member passes proposals on without their options (a bug an earlier review found): the
   * lease driver's expiry revokes are no longer leader-only, so one decided by a leader that lost
   * its leadership is queued, reaches the next leader and revokes a lease it renewed meanwhile.
   */
  "expire-on-deposed-leader": (m) => {
    const propose = m.propose.bind(m);
    m.propose = ((request) => propose(request)) as Member["propose"];
  },
} satisfies Record<string, Mutation>;

export type MutationName = keyof typeof MUTATIONS;
