// Membership changes: the encoding of a ConfChange inside a log entry, and
// the pure function that applies one change to a configuration.
//
// One change at a time (etcd's ConfChange v1): the leader accepts a change
// only once the previous one is applied, and a change takes effect on each
// node when that node applies it. Any two configurations in effect at once
// are then consecutive, differ by one voter, and their majorities overlap.
import { type ConfChange, ConfChangeType, type ConfState, type Entry, EntryType, type NodeId, invariant } from "./types.ts";

// Protobuf wire format of etcd's raftpb.ConfChange (type = 2, node_id = 3,
// context = 4), so a log entry reads the same in any protobuf tool. This is
// the only ConfChange codec: the transport's message codec carries the entry
// data as opaque bytes. The encoder always writes type and node_id, zero or
// not (protobuf-es would omit zeros): logs already hold entries in this form.

function varintSize(v: bigint): number {
  let n = 1;
  while (v >= 0x80n) {
    v >>= 7n;
    n++;
  }
  return n;
}

function putVarint(out: Uint8Array, at: number, v: bigint): number {
  while (v >= 0x80n) {
    out[at++] = Number(v & 0x7fn) | 0x80;
    v >>= 7n;
  }
  out[at++] = Number(v);
  return at;
}

export function encodeConfChange(cc: ConfChange): Uint8Array {
  invariant(cc.nodeId >= 0n && cc.nodeId < 1n << 64n, "conf change node id out of range");
  const type = BigInt(cc.type);
  const ctxLen = BigInt(cc.context.byteLength);
  const size = 1 + varintSize(type) + 1 + varintSize(cc.nodeId) + (cc.context.byteLength > 0 ? 1 + varintSize(ctxLen) + cc.context.byteLength : 0);
  const out = new Uint8Array(size);
  let at = 0;
  out[at++] = (2 << 3) | 0;
  at = putVarint(out, at, type);
  out[at++] = (3 << 3) | 0;
  at = putVarint(out, at, cc.nodeId);
  if (cc.context.byteLength > 0) {
    out[at++] = (4 << 3) | 2;
    at = putVarint(out, at, ctxLen);
    out.set(cc.context, at);
    at += cc.context.byteLength;
  }
  invariant(at === size, "conf change size mismatch");
  return out;
}

export class ConfChangeDecodeError extends Error {}

/** Decode a ConfChange entry's data; throws ConfChangeDecodeError on malformed input. */
export function decodeConfChange(b: Uint8Array): ConfChange {
  let at = 0;
  const varint = (): bigint => {
    let v = 0n;
    for (let shift = 0n; shift < 70n; shift += 7n) {
      if (at >= b.length) throw new ConfChangeDecodeError("truncated varint");
      const x = b[at++];
      v |= BigInt(x & 0x7f) << shift;
      if (x < 0x80) return v;
    }
    throw new ConfChangeDecodeError("varint too long");
  };
  const cc: ConfChange = { type: ConfChangeType.AddNode, nodeId: 0n, context: new Uint8Array(0) };
  while (at < b.length) {
    const key = Number(varint());
    const field = key >>> 3;
    const wire = key & 7;
    if (wire === 0) {
      const v = varint();
      if (field === 2) {
        const t = Number(v);
        if (t !== ConfChangeType.AddNode && t !== ConfChangeType.RemoveNode && t !== ConfChangeType.UpdateNode && t !== ConfChangeType.AddLearnerNode) {
          throw new ConfChangeDecodeError(`unsupported conf change type ${t}`);
        }
        cc.type = t;
      } else if (field === 3) {
        if (v >= 1n << 64n) throw new ConfChangeDecodeError("node id out of range");
        cc.nodeId = v;
      }
    } else if (wire === 2) {
      const len = Number(varint());
      if (len > b.length - at) throw new ConfChangeDecodeError("length past end");
      if (field === 4) cc.context = b.slice(at, at + len);
      at += len;
    } else if (wire === 1) {
      at += 8;
    } else if (wire === 5) {
      at += 4;
    } else {
      throw new ConfChangeDecodeError(`bad wire type ${wire}`);
    }
    if (at > b.length) throw new ConfChangeDecodeError("truncated field");
  }
  return cc;
}

/**
 * The configuration after applying `cc` to `cs`; unchanged when the change is
 * neutralized (node id 0), redundant (re-applied after a restart), a demotion (needs joint consensus),
 * or would leave no voter. Deterministic, so every node reaches the same result.
 */
export function applyChange(cs: ConfState, cc: ConfChange): ConfState {
  const id: NodeId = cc.nodeId;
  // The application neutralizes a change it refuses at apply time (e.g. re-adding a
  // removed member, as etcd does) by clearing the id: every node then applies nothing.
  if (id === 0n) return cs;
  const voters = cs.voters.filter((v) => v !== id);
  const learners = cs.learners.filter((v) => v !== id);
  const isVoter = voters.length !== cs.voters.length;
  switch (cc.type) {
    case ConfChangeType.AddNode:
      if (isVoter) return cs;
      return { voters: [...voters, id], learners };
    case ConfChangeType.AddLearnerNode:
      if (isVoter) return cs; // a demotion: refused
      if (learners.length !== cs.learners.length) return cs;
      return { voters, learners: [...learners, id] };
    case ConfChangeType.RemoveNode:
      if (isVoter && voters.length === 0) return cs; // never remove the last voter
      return { voters, learners };
    case ConfChangeType.UpdateNode:
      return cs;
  }
}

/**
 * The log a brand-new cluster starts from (etcd's bootstrap): one committed
 * ConfChange entry per initial member at term 1, indexes 1..n. Every initial
 * member writes the same entries, so a node that joins later learns the
 * whole membership history by replaying the log (or from a snapshot).
 * The driver appends them and persists HardState { term: 1, commit: n }.
 */
export function bootstrapEntries(cs: ConfState): Entry[] {
  const changes: ConfChange[] = [
    ...cs.voters.map((nodeId) => ({ type: ConfChangeType.AddNode, nodeId, context: new Uint8Array(0) })),
    ...cs.learners.map((nodeId) => ({ type: ConfChangeType.AddLearnerNode, nodeId, context: new Uint8Array(0) })),
  ];
  return changes.map((cc, i) => ({ term: 1, index: i + 1, type: EntryType.ConfChange, data: encodeConfChange(cc) }));
}
