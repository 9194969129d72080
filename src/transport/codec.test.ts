import { describe, expect, test } from "bun:test";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { ConfChangeSchema, MessageSchema as PbMessageSchema } from "../gen/tsetcdpb/raft_pb.ts";
import { ConfChangeDecodeError, decodeConfChange, encodeConfChange } from "../raft/confchange.ts";
import { Harness } from "../raft/sim/harness.ts";
import {
  type ConfChange,
  ConfChangeType,
  type ConfState,
  type Entry,
  EntryType,
  type Message,
  MessageType,
  type Snapshot,
  type SnapshotMeta,
  msg,
} from "../raft/types.ts";
import { mulberry32, randInt } from "../testing/prng.ts";
import { CodecError, decodeMessage, encodeMessage, messageTypeFromNumber, messageTypeToNumber } from "./codec.ts";
import { fromPb, toPb } from "./codec-pb.ts";

const U64_MAX = 0xffffffffffffffffn;
const ALL_TYPES = Object.values(MessageType) as MessageType[];

const bytes = (...b: number[]) => new Uint8Array(b);
const fill = (n: number, seed: number) => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff);

/** Varint bytes of a bigint, for hand-built inputs. */
function varint(v: bigint): number[] {
  const out: number[] = [];
  while (v > 0x7fn) {
    out.push(Number(v & 0x7fn) | 0x80);
    v >>= 7n;
  }
  out.push(Number(v));
  return out;
}

// Hand-built sub-messages reach the decoder the only way they can: inside a
// Message (the codec decodes nothing else).

/** A length-delimited field: tag, length, body. */
const field = (tag: number, body: number[]): number[] => [tag, ...varint(BigInt(body.length)), ...body];
/** A message whose snapshot (field 9) has metadata (field 2) of the given bytes. */
const inSnapMeta = (meta: number[]) => new Uint8Array(field(0x4a, field(0x12, meta)));
/** A message whose snapshot metadata has a conf state (field 1) of the given bytes. */
const inConfState = (cs: number[]) => inSnapMeta(field(0x0a, cs));
/** A message with one entry (field 7) of the given bytes. */
const inEntry = (e: number[]) => new Uint8Array(field(0x3a, e));
/** A Snap message carrying only snapshot metadata. */
const snapOf = (meta: SnapshotMeta) => msg({ type: MessageType.Snap, snapshot: { data: new Uint8Array(0), meta } });

// --- random messages from the seeded PRNG ---

function randId(r: () => number): bigint {
  switch (randInt(r, 5)) {
    case 0:
      return 0n;
    case 1:
      return BigInt(1 + randInt(r, 9));
    case 2:
      return U64_MAX - BigInt(randInt(r, 3));
    default:
      return (BigInt(randInt(r, 2 ** 32)) << 32n) | BigInt(randInt(r, 2 ** 32));
  }
}

function randNum(r: () => number): number {
  switch (randInt(r, 6)) {
    case 0:
      return 0;
    case 1:
      return randInt(r, 128);
    case 2:
      return randInt(r, 2 ** 21);
    case 3:
      return randInt(r, 2 ** 32);
    case 4:
      return Number.MAX_SAFE_INTEGER - randInt(r, 3);
    default:
      return randInt(r, 2 ** 21) * 2 ** 32 + randInt(r, 2 ** 32);
  }
}

function randBytes(r: () => number, max: number): Uint8Array {
  const n = randInt(r, 3) === 0 ? 0 : randInt(r, max + 1);
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = randInt(r, 256);
  return b;
}

function randIds(r: () => number): bigint[] {
  return Array.from({ length: randInt(r, 6) }, () => randId(r));
}

function randMessage(r: () => number): Message {
  const m = msg({
    type: ALL_TYPES[randInt(r, ALL_TYPES.length)],
    to: randId(r),
    from: randId(r),
    term: randNum(r),
    logTerm: randNum(r),
    index: randNum(r),
    entries: Array.from({ length: randInt(r, 3) === 0 ? 0 : randInt(r, 6) }, () => ({
      type: randInt(r, 4) === 0 ? EntryType.ConfChange : EntryType.Normal,
      term: randNum(r),
      index: randNum(r),
      data: randBytes(r, 300),
    })),
    commit: randNum(r),
    reject: randInt(r, 2) === 0,
    rejectHint: randNum(r),
    context: randBytes(r, 40),
  });
  if (randInt(r, 4) === 0) {
    m.snapshot = {
      data: randBytes(r, 200),
      meta: { index: randNum(r), term: randNum(r), confState: { voters: randIds(r), learners: randIds(r) } },
    };
  }
  return m;
}

// --- hand-picked messages ---

const FULL_SNAPSHOT: Snapshot = {
  data: fill(100, 7),
  meta: { index: 1000, term: 7, confState: { voters: [1n, 2n, U64_MAX], learners: [0x8e9e05c52164694dn] } },
};

function handPicked(): Message[] {
  const out: Message[] = [];
  for (const type of ALL_TYPES) {
    out.push(msg({ type })); // every field empty
    out.push(
      msg({
        type,
        from: U64_MAX,
        to: 0x8e9e05c52164694dn,
        term: Number.MAX_SAFE_INTEGER,
        logTerm: 2 ** 32,
        index: 2 ** 31,
        commit: 127,
        reject: true,
        rejectHint: 128,
        context: fill(16, 3),
        entries: [
          { type: EntryType.Normal, term: 0, index: 0, data: new Uint8Array(0) },
          { type: EntryType.ConfChange, term: 5, index: 6, data: fill(1024, 1) },
          { type: EntryType.Normal, term: 2 ** 40, index: 2 ** 50, data: fill(3, 9) },
        ],
        snapshot: type === MessageType.Snap ? FULL_SNAPSHOT : undefined,
      }),
    );
  }
  // A snapshot with nothing in it, and one with an empty conf state.
  out.push(msg({ type: MessageType.Snap, snapshot: { data: new Uint8Array(0), meta: { index: 0, term: 0, confState: { voters: [], learners: [] } } } }));
  out.push(msg({ type: MessageType.Snap, snapshot: { data: fill(5, 1), meta: { index: 3, term: 1, confState: { voters: [], learners: [1n] } } } }));
  return out.map((m) => {
    if (m.snapshot === undefined) delete m.snapshot;
    return m;
  });
}

/** Compare ignoring Buffer-vs-Uint8Array class differences. */
function norm(m: Message) {
  const o: Record<string, unknown> = { ...m, context: Array.from(m.context), entries: m.entries.map((e) => ({ ...e, data: Array.from(e.data) })) };
  if (m.snapshot) o.snapshot = { meta: m.snapshot.meta, data: Array.from(m.snapshot.data) };
  else delete o.snapshot;
  return o;
}

describe("round trip", () => {
  test("hand-picked messages of every type, empty and full", () => {
    for (const m of handPicked()) {
      const b = encodeMessage(m);
      expect(norm(decodeMessage(b))).toEqual(norm(m));
      // Byte-identical to the generated code.
      expect(b).toEqual(toBinary(PbMessageSchema, toPb(m)));
    }
  });

  test("an empty Hup is zero bytes; a Snap always carries metadata", () => {
    expect(encodeMessage(msg({ type: MessageType.Hup })).length).toBe(0);
    expect(decodeMessage(new Uint8Array(0))).toEqual(msg({ type: MessageType.Hup }));
    const s = decodeMessage(encodeMessage(msg({ type: MessageType.Snap, snapshot: FULL_SNAPSHOT })));
    expect(s.snapshot?.meta).toEqual(FULL_SNAPSHOT.meta);
    // A snapshot field with no metadata decodes to the empty metadata.
    expect(decodeMessage(bytes(0x4a, 0x00)).snapshot).toEqual({
      data: new Uint8Array(0),
      meta: { index: 0, term: 0, confState: { voters: [], learners: [] } },
    });
  });

  test("message type numbers are etcd's", () => {
    const etcd: Record<string, number> = {
      Hup: 0,
      Beat: 1,
      Prop: 2,
      App: 3,
      AppResp: 4,
      Vote: 5,
      VoteResp: 6,
      Snap: 7,
      Heartbeat: 8,
      HeartbeatResp: 9,
      Unreachable: 10,
      SnapStatus: 11,
      CheckQuorum: 12,
      TransferLeader: 13,
      TimeoutNow: 14,
      ReadIndex: 15,
      ReadIndexResp: 16,
      PreVote: 17,
      PreVoteResp: 18,
    };
    for (const t of ALL_TYPES) {
      expect(messageTypeToNumber(t)).toBe(etcd[t]);
      expect(messageTypeFromNumber(etcd[t])).toBe(t);
    }
    expect(Object.keys(etcd).length).toBe(ALL_TYPES.length);
  });

  test("conf state, snapshot metadata, snapshot, entry inside a message", () => {
    const cs: ConfState[] = [
      { voters: [], learners: [] },
      { voters: [1n, 2n, 3n], learners: [] },
      { voters: [U64_MAX, 0n, 0x8e9e05c52164694dn], learners: [2n ** 32n, 2n ** 63n] },
    ];
    for (const c of cs) {
      const meta: SnapshotMeta = { index: 99, term: 3, confState: c };
      const b = encodeMessage(snapOf(meta));
      expect(decodeMessage(b).snapshot?.meta).toEqual(meta);
      expect(b).toEqual(toBinary(PbMessageSchema, toPb(snapOf(meta))));
    }
    const snap = decodeMessage(encodeMessage(msg({ type: MessageType.Snap, snapshot: FULL_SNAPSHOT }))).snapshot!;
    expect(snap.meta).toEqual(FULL_SNAPSHOT.meta);
    expect(Array.from(snap.data)).toEqual(Array.from(FULL_SNAPSHOT.data));
    const e: Entry = { term: 3, index: 2 ** 52, type: EntryType.ConfChange, data: fill(10, 2) };
    const [got] = decodeMessage(encodeMessage(msg({ type: MessageType.App, entries: [e] }))).entries;
    expect({ ...got, data: Array.from(got.data) }).toEqual({ ...e, data: Array.from(e.data) });
  });

  // The data of a ConfChange entry has one codec, src/raft/confchange.ts (the
  // member proposes with its encoder and applies with its decoder); this codec
  // carries it as opaque entry data.
  test("conf change: the live codec, against protobuf-es and through this codec", () => {
    const ccs: ConfChange[] = [
      { type: ConfChangeType.AddNode, nodeId: 0n, context: new Uint8Array(0) },
      { type: ConfChangeType.RemoveNode, nodeId: U64_MAX, context: fill(30, 4) },
      { type: ConfChangeType.UpdateNode, nodeId: 0x8e9e05c52164694dn, context: new TextEncoder().encode('{"peerURLs":["https://10.0.0.2:2380"]}') },
      { type: ConfChangeType.AddLearnerNode, nodeId: 0x8e9e05c52164694dn, context: new TextEncoder().encode('{"name":"m2"}') },
    ];
    for (const c of ccs) {
      const data = encodeConfChange(c);
      expect(decodeConfChange(data)).toEqual(c);
      // Any protobuf decoder reads the entry as the same change...
      const pb = fromBinary(ConfChangeSchema, data);
      expect([pb.type as number, pb.nodeId, Array.from(pb.context)]).toEqual([c.type, c.nodeId, Array.from(c.context)]);
      // ...and the live decoder reads protobuf-es's encoding (which omits zero fields).
      expect(decodeConfChange(toBinary(ConfChangeSchema, create(ConfChangeSchema, { type: c.type as number, nodeId: c.nodeId, context: c.context })))).toEqual(
        c,
      );
      // The entry crosses the wire in an App message and still decodes.
      const [e] = decodeMessage(encodeMessage(msg({ type: MessageType.App, entries: [{ type: EntryType.ConfChange, term: 2, index: 7, data }] }))).entries;
      expect(e.type).toBe(EntryType.ConfChange);
      expect(decodeConfChange(e.data)).toEqual(c);
    }
    // etcd's id (field 1) is skipped.
    expect(decodeConfChange(bytes(0x08, 42, 0x10, 1, 0x18, 2))).toEqual({ type: ConfChangeType.RemoveNode, nodeId: 2n, context: new Uint8Array(0) });
    // etcd's UpdateNode (MemberUpdate proposes it) is accepted; an unknown type is not.
    expect(decodeConfChange(bytes(0x10, 2, 0x18, 5))).toEqual({ type: ConfChangeType.UpdateNode, nodeId: 5n, context: new Uint8Array(0) });
    expect(() => decodeConfChange(bytes(0x10, 4))).toThrow(ConfChangeDecodeError);
    expect(() => decodeConfChange(bytes(0x22, 3, 1))).toThrow(ConfChangeDecodeError);
  });

  test("an UpdateNode proposal is replicated through this codec and applied as UpdateNode", () => {
    const h = new Harness([1n, 2n, 3n]);
    // Every message between the nodes goes through the wire encoding, as between members.
    h.intercept = (m) => decodeMessage(encodeMessage(m));
    h.elect(1n);
    const context = new TextEncoder().encode('{"peerURLs":["https://10.0.0.3:2380"]}');
    expect(h.get(1n).proposeConfChange({ type: ConfChangeType.UpdateNode, nodeId: 3n, context }).ok).toBe(true);
    h.settle();
    for (const id of [1n, 2n, 3n]) {
      const n = h.nodes.get(id)!;
      const applied = n.applied.filter((e) => e.type === EntryType.ConfChange).map((e) => decodeConfChange(e.data));
      expect(applied).toEqual([{ type: ConfChangeType.UpdateNode, nodeId: 3n, context }]);
      expect(n.conf).toEqual({ voters: [1n, 2n, 3n], learners: [] });
    }
  });

  test("decoded byte fields are views of the input", () => {
    const m = msg({ type: MessageType.App, context: fill(4, 1), entries: [{ type: EntryType.Normal, term: 1, index: 1, data: fill(8, 2) }] });
    const b = encodeMessage(m);
    const d = decodeMessage(b);
    expect(d.entries[0].data.buffer).toBe(b.buffer);
    expect(d.context.buffer).toBe(b.buffer);
  });
});

describe("cross-compatibility with the protobuf-es generated code", () => {
  test("random messages: ours -> protobuf-es, protobuf-es -> ours, identical bytes", () => {
    const seed = 0xc0dec;
    const r = mulberry32(seed);
    for (let i = 0; i < 3000; i++) {
      const m = randMessage(r);
      const ours = encodeMessage(m);
      const pb = toPb(m);
      const theirs = toBinary(PbMessageSchema, pb);
      if (!Bun.deepEquals(ours, theirs)) throw new Error(`seed ${seed} message ${i}: encodings differ`);
      expect(norm(fromPb(fromBinary(PbMessageSchema, ours)))).toEqual(norm(m));
      expect(norm(decodeMessage(theirs))).toEqual(norm(m));
    }
  });

  test("random snapshot metadata", () => {
    const r = mulberry32(77);
    for (let i = 0; i < 1000; i++) {
      const meta: SnapshotMeta = { index: randNum(r), term: randNum(r), confState: { voters: randIds(r), learners: randIds(r) } };
      const pbm = toBinary(PbMessageSchema, toPb(snapOf(meta)));
      expect(encodeMessage(snapOf(meta))).toEqual(pbm);
      expect(decodeMessage(pbm).snapshot?.meta).toEqual(meta);
    }
  });

  test("unpacked repeated ids (etcd's proto2 encoding) decode too", () => {
    // voters 1, 2 unpacked; learners 3 unpacked; then voters 4 packed.
    const b = inConfState([0x08, 1, 0x08, 2, 0x10, 3, 0x0a, 1, 4]);
    expect(decodeMessage(b).snapshot?.meta.confState).toEqual({ voters: [1n, 2n, 4n], learners: [3n] });
  });

  test("etcd's always-written zero fields and out-of-order fields decode", () => {
    // Entry as gogoproto writes it: Type=0 first, then Term, Index, no data.
    expect(decodeMessage(inEntry([0x08, 0, 0x10, 0, 0x18, 0])).entries).toEqual([{ type: 0, term: 0, index: 0, data: new Uint8Array(0) }]);
    // Message fields in reverse order.
    expect(decodeMessage(bytes(0x20, 5, 0x18, 2, 0x10, 1, 0x08, 3))).toEqual(msg({ type: MessageType.App, to: 1n, from: 2n, term: 5 }));
  });

  test("unknown fields of every known wire type are skipped", () => {
    const base = encodeMessage(handPicked()[5]);
    const unknown = [
      ...[0x98, 0x06, ...varint(U64_MAX)], // field 99, varint
      ...[0x99, 0x06, 1, 2, 3, 4, 5, 6, 7, 8], // field 99, fixed64
      ...[0x9a, 0x06, 3, 9, 9, 9], // field 99, bytes
      ...[0x9d, 0x06, 1, 2, 3, 4], // field 99, fixed32
      ...[0x68, 1], // field 13 (unused in Message), varint
    ];
    const b = new Uint8Array([...unknown, ...base, ...unknown]);
    expect(norm(decodeMessage(b))).toEqual(norm(decodeMessage(base)));
  });

  test("a repeated field's last value wins; a repeated snapshot is merged", () => {
    expect(decodeMessage(bytes(0x20, 1, 0x20, 2)).term).toBe(2);
    const m = decodeMessage(bytes(0x4a, 4, 0x12, 2, 0x10, 5, 0x4a, 6, 0x12, 4, 0x0a, 2, 0x08, 7));
    expect(m.snapshot?.meta).toEqual({ index: 5, term: 0, confState: { voters: [7n], learners: [] } });
  });
});

describe("malformed input throws CodecError", () => {
  const bad: [string, number[]][] = [
    ["tag without value", [0x20]],
    ["truncated varint", [0x20, 0x80]],
    ["truncated tag", [0x80]],
    ["varint longer than 10 bytes", [0x20, ...Array(10).fill(0xff), 0x01]],
    ["varint above 2^64-1", [0x10, ...Array(9).fill(0xff), 0x02]],
    ["term above MAX_SAFE_INTEGER", [0x20, ...varint(2n ** 53n)]],
    ["commit of 2^64-1", [0x40, ...varint(U64_MAX)]],
    ["length past the end", [0x62, 5, 1, 2]],
    ["huge length", [0x62, ...varint(U64_MAX)]],
    ["entry length past the end", [0x3a, 3, 0x10, 1]],
    ["entry field truncated inside its length", [0x3a, 1, 0x10, 1]],
    ["field number 0", [0x00, 0x00]],
    ["start group wire type", [0x0b]],
    ["end group wire type", [0x0c]],
    ["wire type 6", [0x0e]],
    ["unknown field, start group wire type", [0x9b, 0x06, 0x9c, 0x06]],
    ["unknown field, wire type 6", [0x9e, 0x06]],
    ["wire type 7", [0x9f, 0x06]],
    ["wrong wire type for term (fixed64)", [0x21, 1, 2, 3, 4, 5, 6, 7, 8]],
    ["wrong wire type for entries (varint)", [0x38, 1]],
    ["wrong wire type for context (varint)", [0x60, 1]],
    ["unknown message type 19", [0x08, 19]],
    ["negative message type", [0x08, ...Array(9).fill(0xff), 0x01]],
    ["unknown entry type 2 (ConfChangeV2)", [0x3a, 2, 0x08, 2]],
    ["snapshot term above MAX_SAFE_INTEGER", [0x4a, 12, 0x12, 10, 0x18, ...varint(2n ** 60n)]],
    ["snapshot conf state truncated", [0x4a, 6, 0x12, 4, 0x0a, 2, 0x0a, 5]],
    ["unknown field bytes past the end", [0x9a, 0x06, 5, 1]],
    ["unknown fixed64 truncated", [0x99, 0x06, 1, 2, 3]],
    ["unknown fixed32 truncated", [0x9d, 0x06, 1]],
    ["tag above 32 bits", [...varint(2n ** 40n), 0]],
  ];
  for (const [what, b] of bad) {
    test(what, () => {
      expect(() => decodeMessage(new Uint8Array(b))).toThrow(CodecError);
    });
  }

  test("sub-messages and the input type", () => {
    expect(() => decodeMessage(inConfState([0x0a, 3, 1, 2]))).toThrow(CodecError);
    expect(() => decodeMessage(inConfState([0x0a, 1, 0x80]))).toThrow(CodecError); // packed varint cut by its length
    expect(() => decodeMessage(inConfState([0x09, 1, 2, 3, 4, 5, 6, 7, 8]))).toThrow(CodecError);
    expect(() => decodeMessage(inSnapMeta([0x0a, 1]))).toThrow(CodecError);
    expect(() => decodeMessage(new Uint8Array(field(0x4a, [0x12, 2, 0x10])))).toThrow(CodecError);
    expect(() => decodeMessage(inEntry([0x08, 5]))).toThrow(CodecError);
    expect(() => decodeMessage("nope" as unknown as Uint8Array)).toThrow(CodecError);
  });

  test("maxEntries", () => {
    const m = msg({
      type: MessageType.App,
      entries: Array.from({ length: 5 }, (_, i) => ({ type: EntryType.Normal, term: 1, index: i + 1, data: fill(2, i) })),
    });
    const b = encodeMessage(m);
    expect(decodeMessage(b, { maxEntries: 5 }).entries.length).toBe(5);
    expect(() => decodeMessage(b, { maxEntries: 4 })).toThrow(CodecError);
  });

  test("unrepresentable values throw CodecError when encoding", () => {
    const cases: Partial<Message>[] = [
      { term: -1 },
      { index: 1.5 },
      { commit: Number.NaN },
      { logTerm: 2 ** 53 },
      { rejectHint: Infinity },
      { to: -1n },
      { from: 2n ** 64n },
      { type: "Bogus" as MessageType },
      { entries: [{ type: 2 as EntryType, term: 1, index: 1, data: new Uint8Array(0) }] },
      { entries: [{ type: EntryType.Normal, term: -5, index: 1, data: new Uint8Array(0) }] },
      { snapshot: { data: new Uint8Array(0), meta: { index: 1, term: 1, confState: { voters: [-2n], learners: [] } } } },
      { snapshot: { data: new Uint8Array(0), meta: { index: 1, term: 1, confState: { voters: [], learners: [2n ** 64n] } } } },
    ];
    for (const c of cases) {
      expect(() => encodeMessage(msg({ type: MessageType.App, ...c }))).toThrow(CodecError);
    }
  });
});

describe("fuzz: mutated valid encodings decode or throw CodecError", () => {
  function mutate(r: () => number, b: Uint8Array): Uint8Array {
    let out = b.slice();
    const n = 1 + randInt(r, 4);
    for (let k = 0; k < n; k++) {
      switch (randInt(r, 5)) {
        case 0: // truncate
          out = out.slice(0, randInt(r, out.length + 1));
          break;
        case 1: // flip a bit
          if (out.length) out[randInt(r, out.length)] ^= 1 << randInt(r, 8);
          break;
        case 2: // random byte
          if (out.length) out[randInt(r, out.length)] = randInt(r, 256);
          break;
        case 3: {
          // insert a random byte
          const i = randInt(r, out.length + 1);
          out = new Uint8Array([...out.subarray(0, i), randInt(r, 256), ...out.subarray(i)]);
          break;
        }
        default: // 0xff run (long varints, big lengths)
          if (out.length) {
            const i = randInt(r, out.length);
            out.fill(0xff, i, Math.min(out.length, i + 1 + randInt(r, 12)));
          }
      }
    }
    return out;
  }

  function expectDecodesOrCodecError(f: () => unknown, recheck?: (v: unknown) => void) {
    let v: unknown;
    try {
      v = f();
    } catch (e) {
      if (!(e instanceof CodecError)) throw e;
      return;
    }
    recheck?.(v);
  }

  test("messages", () => {
    const seed = 0xf022;
    const r = mulberry32(seed);
    let decoded = 0;
    for (let i = 0; i < 20000; i++) {
      const m = i % 4 === 0 ? handPicked()[randInt(r, 40)] : randMessage(r);
      const b = mutate(r, encodeMessage(m));
      expectDecodesOrCodecError(
        () => decodeMessage(b),
        (v) => {
          decoded++;
          // Whatever decodes re-encodes, and that encoding is stable and agrees with protobuf-es.
          const d = v as Message;
          const again = encodeMessage(d);
          expect(norm(decodeMessage(again))).toEqual(norm(d));
          expect(again).toEqual(toBinary(PbMessageSchema, toPb(d)));
        },
      );
    }
    expect(decoded).toBeGreaterThan(1000); // the fuzz exercised both outcomes
  });

  test("conf changes (the live decoder): decode or throw ConfChangeDecodeError", () => {
    const r = mulberry32(0x5eed);
    const types = [ConfChangeType.AddNode, ConfChangeType.RemoveNode, ConfChangeType.UpdateNode, ConfChangeType.AddLearnerNode];
    for (let i = 0; i < 5000; i++) {
      const cc = mutate(r, encodeConfChange({ type: types[randInt(r, 4)], nodeId: randId(r), context: randBytes(r, 20) }));
      try {
        const d = decodeConfChange(cc);
        // Whatever decodes re-encodes to the same change.
        expect(decodeConfChange(encodeConfChange(d))).toEqual(d);
      } catch (e) {
        if (!(e instanceof ConfChangeDecodeError)) throw e;
      }
    }
  });

  test("random bytes", () => {
    const r = mulberry32(99);
    for (let i = 0; i < 20000; i++) {
      const b = new Uint8Array(randInt(r, 64));
      for (let j = 0; j < b.length; j++) b[j] = randInt(r, 256);
      expectDecodesOrCodecError(() => decodeMessage(b));
    }
  });
});
