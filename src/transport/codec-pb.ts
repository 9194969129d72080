// The reference mapping between src/raft/types.ts shapes and the protobuf-es
// types generated from proto/tsetcdpb/raft.proto. Not used on any hot path:
// the codec tests compare codec.ts byte for byte against protobuf-es through
// it, and bench/codec.ts times protobuf-es on the same messages.
import { create } from "@bufbuild/protobuf";
import {
  ConfStateSchema,
  EntrySchema,
  MessageSchema as PbMessageSchema,
  type Message as PbMessage,
  SnapshotMetadataSchema,
  SnapshotSchema,
} from "../gen/tsetcdpb/raft_pb.ts";
import { type ConfState, type Message, type SnapshotMeta, msg } from "../raft/types.ts";
import { messageTypeFromNumber, messageTypeToNumber } from "./codec.ts";

function confToPb(c: ConfState) {
  return create(ConfStateSchema, { voters: c.voters, learners: c.learners });
}

function metaToPb(m: SnapshotMeta) {
  return create(SnapshotMetadataSchema, {
    confState: confToPb(m.confState),
    index: BigInt(m.index),
    term: BigInt(m.term),
  });
}

export function toPb(m: Message): PbMessage {
  return create(PbMessageSchema, {
    type: messageTypeToNumber(m.type),
    to: m.to,
    from: m.from,
    term: BigInt(m.term),
    logTerm: BigInt(m.logTerm),
    index: BigInt(m.index),
    entries: m.entries.map((e) => create(EntrySchema, { type: e.type as number, term: BigInt(e.term), index: BigInt(e.index), data: e.data })),
    commit: BigInt(m.commit),
    snapshot: m.snapshot && create(SnapshotSchema, { data: m.snapshot.data, metadata: metaToPb(m.snapshot.meta) }),
    reject: m.reject,
    rejectHint: BigInt(m.rejectHint),
    context: m.context,
  });
}

export function fromPb(p: PbMessage): Message {
  const m: Message = msg({
    type: messageTypeFromNumber(p.type),
    to: p.to,
    from: p.from,
    term: Number(p.term),
    logTerm: Number(p.logTerm),
    index: Number(p.index),
    entries: p.entries.map((e) => ({ type: e.type as number, term: Number(e.term), index: Number(e.index), data: e.data })),
    commit: Number(p.commit),
    reject: p.reject,
    rejectHint: Number(p.rejectHint),
    context: p.context,
  });
  if (p.snapshot) {
    const md = p.snapshot.metadata;
    m.snapshot = {
      data: p.snapshot.data,
      meta: {
        index: Number(md?.index ?? 0n),
        term: Number(md?.term ?? 0n),
        confState: { voters: md?.confState?.voters ?? [], learners: md?.confState?.learners ?? [] },
      },
    };
  }
  return m;
}
