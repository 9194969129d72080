// Hand-written protobuf codec for the Raft messages members send each other
// (tsetcdpb.Message, with the entries and snapshot metadata inside it). It is
// the only encoder and decoder of that message in the server; the data of a
// ConfChange entry is opaque bytes here (src/raft/confchange.ts encodes and
// decodes it), and storage keeps the hard state and snapshot metadata in
// SQLite rows, not as protobuf.
//
// The wire format is proto/tsetcdpb/raft.proto (etcd's raftpb field numbers,
// proto3 rules): the encoder writes exactly the bytes protobuf-es writes for
// the generated schemas (fields in number order, zero values omitted, repeated
// ids packed); the decoder reads anything a conforming encoder may write
// (fields in any order, repeated ids packed or not, unknown fields skipped,
// last value wins, a repeated sub-message merged).
//
// Why not the generated code: this runs for every message between members.
// Encoding sizes the message first and writes into one exact-size Uint8Array;
// decoding builds the src/raft/types.ts objects directly. term/index/commit are
// JS numbers (no bigint arithmetic); only member ids are bigint.
//
// Decoding is strict on hostile input: truncation, a varint longer than 10
// bytes or above 2^64-1, a length past the end, a wrong or unknown wire type,
// field number 0, an unknown enum value, a uint64 number above
// Number.MAX_SAFE_INTEGER, or more entries than allowed all throw CodecError.
// It never reads outside the input and allocates at most in proportion to it
// (every entry or id costs at least one input byte).
//
// Entry data, snapshot data and context returned by the decoder are SUBARRAY
// VIEWS of the input, not copies: the caller owns the input buffer and must not
// reuse or mutate it while the decoded message is in use (copy with .slice()
// to keep one past that).

import { type ConfState, type Entry, EntryType, type Message, MessageType, type NodeId, type Snapshot, type SnapshotMeta } from "../raft/types.ts";

/** Malformed input to a decoder, or a value an encoder cannot represent. */
export class CodecError extends Error {
  override name = "CodecError";
}

export interface DecodeLimits {
  /** Most entries one message may carry (default: unlimited, i.e. bounded by the input size). */
  maxEntries?: number;
}

const EMPTY_BYTES: Uint8Array = new Uint8Array(0);
const TWO32 = 4294967296;
const U64_MAX = 0xffffffffffffffffn;

// ---------------------------------------------------------------------------
// MessageType <-> etcd's numbers

/** MessageType by etcd's number (raftpb.MessageType). */
const TYPE_BY_NUM: readonly MessageType[] = [
  MessageType.Hup, // 0
  MessageType.Beat, // 1
  MessageType.Prop, // 2
  MessageType.App, // 3
  MessageType.AppResp, // 4
  MessageType.Vote, // 5
  MessageType.VoteResp, // 6
  MessageType.Snap, // 7
  MessageType.Heartbeat, // 8
  MessageType.HeartbeatResp, // 9
  MessageType.Unreachable, // 10
  MessageType.SnapStatus, // 11
  MessageType.CheckQuorum, // 12
  MessageType.TransferLeader, // 13
  MessageType.TimeoutNow, // 14
  MessageType.ReadIndex, // 15
  MessageType.ReadIndexResp, // 16
  MessageType.PreVote, // 17
  MessageType.PreVoteResp, // 18
];
const NUM_BY_TYPE: Record<string, number> = Object.create(null);
for (let i = 0; i < TYPE_BY_NUM.length; i++) NUM_BY_TYPE[TYPE_BY_NUM[i]] = i;

/** etcd's number for a message type. */
export function messageTypeToNumber(t: MessageType): number {
  const n = NUM_BY_TYPE[t];
  if (n === undefined) throw new CodecError(`unknown message type ${String(t)}`);
  return n;
}

/** The message type for etcd's number. */
export function messageTypeFromNumber(n: number): MessageType {
  const t = TYPE_BY_NUM[n];
  if (t === undefined) throw new CodecError(`unknown message type number ${n}`);
  return t;
}

// ---------------------------------------------------------------------------
// Sizes

/** Bytes of the varint of a non-negative safe integer (validated). */
function numSize(v: number): number {
  if (v >>> 0 === v) return u32Size(v); // an integer in [0, 2^32)
  if (!(v >= 0 && v <= Number.MAX_SAFE_INTEGER && Number.isInteger(v))) {
    throw new CodecError(`not a uint64 number: ${String(v)}`);
  }
  if (v < 0x800000000) return 5;
  if (v < 0x40000000000) return 6;
  if (v < 0x2000000000000) return 7;
  return 8; // < 2^56, and safe integers are < 2^53
}

/** Bytes of the varint of a 32-bit unsigned value. */
function u32Size(v: number): number {
  return v < 0x80 ? 1 : v < 0x4000 ? 2 : v < 0x200000 ? 3 : v < 0x10000000 ? 4 : 5;
}

// 64-bit scratch shared by a BigUint64Array and its two 32-bit halves: moves a
// member id between bigint and (lo, hi) numbers without bigint arithmetic.
const scratch64 = new BigUint64Array(1);
const scratch32 = new Uint32Array(scratch64.buffer);
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
const LO = LITTLE_ENDIAN ? 0 : 1;
const HI = LITTLE_ENDIAN ? 1 : 0;

// A member id split into 32-bit halves by splitId (module state: no allocation).
let idLo = 0;
let idHi = 0;

function splitId(id: NodeId): void {
  if (typeof id !== "bigint" || id < 0n || id > U64_MAX) {
    throw new CodecError(`not a uint64 member id: ${String(id)}`);
  }
  scratch64[0] = id;
  idLo = scratch32[LO];
  idHi = scratch32[HI];
}

/** Bytes of the varint of (idLo, idHi). */
function splitSize(): number {
  if (idHi === 0) return u32Size(idLo);
  const bits = 64 - Math.clz32(idHi); // 33..64
  return ((bits + 6) / 7) | 0;
}

/** Bytes of the varint of a member id (validated). */
function idSize(id: NodeId): number {
  splitId(id);
  return splitSize();
}

/** Bytes of a length-delimited field's length prefix and body, without the tag. */
function lenField(len: number): number {
  return u32Size(len) + len;
}

function entryBodySize(e: Entry): number {
  let n = 0;
  const t = e.type;
  if (t !== EntryType.Normal) {
    if (t !== EntryType.ConfChange) throw new CodecError(`unknown entry type ${String(t)}`);
    n += 2;
  }
  if (e.term !== 0) n += 1 + numSize(e.term);
  if (e.index !== 0) n += 1 + numSize(e.index);
  const d = e.data.length;
  if (d !== 0) n += 1 + u32Size(d) + d;
  return n;
}

function idsPackedSize(ids: readonly NodeId[]): number {
  let n = 0;
  for (let i = 0; i < ids.length; i++) n += idSize(ids[i]);
  return n;
}

function confStateBodySize(c: ConfState): number {
  let n = 0;
  if (c.voters.length !== 0) n += 1 + lenField(idsPackedSize(c.voters));
  if (c.learners.length !== 0) n += 1 + lenField(idsPackedSize(c.learners));
  return n;
}

function snapshotMetaBodySize(m: SnapshotMeta): number {
  let n = 1 + lenField(confStateBodySize(m.confState)); // always present, like protobuf-es with a set field
  if (m.index !== 0) n += 1 + numSize(m.index);
  if (m.term !== 0) n += 1 + numSize(m.term);
  return n;
}

function snapshotBodySize(s: Snapshot): number {
  let n = 0;
  const d = s.data.length;
  if (d !== 0) n += 1 + u32Size(d) + d;
  n += 1 + lenField(snapshotMetaBodySize(s.meta));
  return n;
}

let toLo = 0;
let toHi = 0;
let fromLo = 0;
let fromHi = 0;

function messageSize(m: Message): number {
  let n = 0;
  const t = NUM_BY_TYPE[m.type];
  if (t === undefined) throw new CodecError(`unknown message type ${String(m.type)}`);
  if (t !== 0) n += 2;
  // The ids' halves are kept for writeMessage, which always follows messageSize.
  if (m.to !== 0n) {
    n += 1 + idSize(m.to);
    toLo = idLo;
    toHi = idHi;
  }
  if (m.from !== 0n) {
    n += 1 + idSize(m.from);
    fromLo = idLo;
    fromHi = idHi;
  }
  if (m.term !== 0) n += 1 + numSize(m.term);
  if (m.logTerm !== 0) n += 1 + numSize(m.logTerm);
  if (m.index !== 0) n += 1 + numSize(m.index);
  const es = m.entries;
  for (let i = 0; i < es.length; i++) n += 1 + lenField(entryBodySize(es[i]));
  if (m.commit !== 0) n += 1 + numSize(m.commit);
  if (m.snapshot !== undefined) n += 1 + lenField(snapshotBodySize(m.snapshot));
  if (m.reject) n += 2;
  if (m.rejectHint !== 0) n += 1 + numSize(m.rejectHint);
  const c = m.context.length;
  if (c !== 0) n += 1 + u32Size(c) + c;
  return n;
}

// ---------------------------------------------------------------------------
// Writer (module state: the output buffer and position; the encoder is synchronous)

let out: Uint8Array = EMPTY_BYTES;
let op = 0;

/** Write the varint of a non-negative safe integer already validated by numSize. */
function writeNum(v: number): void {
  if (v < 0x80000000) {
    while (v > 0x7f) {
      out[op++] = (v & 0x7f) | 0x80;
      v >>>= 7;
    }
    out[op++] = v;
  } else {
    const lo = v >>> 0;
    writeLoHi(lo, (v - lo) / TWO32);
  }
}

function writeLoHi(lo: number, hi: number): void {
  while (hi !== 0 || lo > 0x7f) {
    out[op++] = (lo & 0x7f) | 0x80;
    lo = ((lo >>> 7) | (hi << 25)) >>> 0;
    hi >>>= 7;
  }
  out[op++] = lo;
}

function writeId(id: NodeId): void {
  splitId(id);
  writeLoHi(idLo, idHi);
}

function writeBytesField(tag: number, b: Uint8Array): void {
  out[op++] = tag;
  writeNum(b.length);
  out.set(b, op);
  op += b.length;
}

function writeEntry(e: Entry): void {
  const t = e.type;
  if (t !== EntryType.Normal) {
    out[op++] = 0x08;
    out[op++] = t;
  }
  if (e.term !== 0) {
    out[op++] = 0x10;
    writeNum(e.term);
  }
  if (e.index !== 0) {
    out[op++] = 0x18;
    writeNum(e.index);
  }
  if (e.data.length !== 0) writeBytesField(0x22, e.data);
}

function writeIdsPacked(tag: number, ids: readonly NodeId[]): void {
  if (ids.length === 0) return;
  out[op++] = tag;
  writeNum(idsPackedSize(ids));
  for (let i = 0; i < ids.length; i++) writeId(ids[i]);
}

function writeConfState(c: ConfState): void {
  writeIdsPacked(0x0a, c.voters);
  writeIdsPacked(0x12, c.learners);
}

function writeSnapshotMeta(m: SnapshotMeta): void {
  out[op++] = 0x0a;
  writeNum(confStateBodySize(m.confState));
  writeConfState(m.confState);
  if (m.index !== 0) {
    out[op++] = 0x10;
    writeNum(m.index);
  }
  if (m.term !== 0) {
    out[op++] = 0x18;
    writeNum(m.term);
  }
}

function writeSnapshot(s: Snapshot): void {
  if (s.data.length !== 0) writeBytesField(0x0a, s.data);
  out[op++] = 0x12;
  writeNum(snapshotMetaBodySize(s.meta));
  writeSnapshotMeta(s.meta);
}

/** Write m; messageSize(m) must have been called just before (it validates and splits the ids). */
function writeMessage(m: Message): void {
  const t = NUM_BY_TYPE[m.type];
  if (t !== 0) {
    out[op++] = 0x08;
    out[op++] = t;
  }
  if (m.to !== 0n) {
    out[op++] = 0x10;
    writeLoHi(toLo, toHi);
  }
  if (m.from !== 0n) {
    out[op++] = 0x18;
    writeLoHi(fromLo, fromHi);
  }
  if (m.term !== 0) {
    out[op++] = 0x20;
    writeNum(m.term);
  }
  if (m.logTerm !== 0) {
    out[op++] = 0x28;
    writeNum(m.logTerm);
  }
  if (m.index !== 0) {
    out[op++] = 0x30;
    writeNum(m.index);
  }
  const es = m.entries;
  for (let i = 0; i < es.length; i++) {
    const e = es[i];
    out[op++] = 0x3a;
    writeNum(entryBodySize(e));
    writeEntry(e);
  }
  if (m.commit !== 0) {
    out[op++] = 0x40;
    writeNum(m.commit);
  }
  if (m.snapshot !== undefined) {
    out[op++] = 0x4a;
    writeNum(snapshotBodySize(m.snapshot));
    writeSnapshot(m.snapshot);
  }
  if (m.reject) {
    out[op++] = 0x50;
    out[op++] = 1;
  }
  if (m.rejectHint !== 0) {
    out[op++] = 0x58;
    writeNum(m.rejectHint);
  }
  if (m.context.length !== 0) writeBytesField(0x62, m.context);
}

/**
 * A fresh buffer of exactly `size` bytes. Large ones skip zero-filling (a third
 * of the cost of encoding an App message): safe because the writers append
 * sequentially and encodeMessage checks that exactly `size` bytes were written.
 */
function alloc(size: number): Uint8Array<ArrayBuffer> {
  if (size < 4096) return new Uint8Array(size);
  const b = Buffer.allocUnsafeSlow(size);
  // A plain Uint8Array over the Buffer's own (unpooled) memory.
  return new Uint8Array(b.buffer as ArrayBuffer, b.byteOffset, size);
}

// ---------------------------------------------------------------------------
// Public encoder

/** Encode a Raft message (tsetcdpb.Message). Throws CodecError on an unrepresentable value. */
export function encodeMessage(m: Message): Uint8Array<ArrayBuffer> {
  const size = messageSize(m);
  const buf = alloc(size);
  out = buf;
  op = 0;
  try {
    writeMessage(m);
  } finally {
    out = EMPTY_BYTES;
  }
  if (op !== size) throw new Error(`codec: wrote ${op} bytes, sized ${size}`);
  return buf;
}

// ---------------------------------------------------------------------------
// Reader (module state: input buffer and position; the decoder is synchronous
// and never re-entered)

let inp: Uint8Array = EMPTY_BYTES;
let ip = 0;
// The last varint read by readVarint, as 32-bit halves.
let vLo = 0;
let vHi = 0;

function truncated(): never {
  throw new CodecError("truncated input");
}

/** Read a varint of up to 64 bits ending before `end` into vLo/vHi. */
function readVarint(end: number): void {
  let b: number;
  let lo = 0;
  // Bytes 1-4: bits 0..27.
  for (let shift = 0; shift < 28; shift += 7) {
    if (ip >= end) truncated();
    b = inp[ip++];
    lo |= (b & 0x7f) << shift;
    if (b < 0x80) {
      vLo = lo;
      vHi = 0;
      return;
    }
  }
  // Byte 5: bits 28..34.
  if (ip >= end) truncated();
  b = inp[ip++];
  lo = (lo | ((b & 0x0f) << 28)) >>> 0;
  let hi = (b & 0x7f) >>> 4;
  if (b < 0x80) {
    vLo = lo;
    vHi = hi;
    return;
  }
  // Bytes 6-9: bits 35..62.
  for (let shift = 3; shift < 31; shift += 7) {
    if (ip >= end) truncated();
    b = inp[ip++];
    hi |= (b & 0x7f) << shift;
    if (b < 0x80) {
      vLo = lo;
      vHi = hi >>> 0;
      return;
    }
  }
  // Byte 10: bit 63 only.
  if (ip >= end) truncated();
  b = inp[ip++];
  if (b > 1) throw new CodecError("varint longer than 10 bytes or above 2^64-1");
  vLo = lo;
  vHi = (hi | (b << 31)) >>> 0;
}

/** Read a uint64 varint as a JS number; above Number.MAX_SAFE_INTEGER is an error. */
function readNum(end: number): number {
  if (ip < end) {
    const b = inp[ip];
    if (b < 0x80) {
      ip++;
      return b;
    }
  }
  readVarint(end);
  if (vHi === 0) return vLo;
  if (vHi > 0x1fffff) throw new CodecError("uint64 value above Number.MAX_SAFE_INTEGER");
  return vHi * TWO32 + vLo;
}

/** Read a uint64 varint as a bigint (member ids). */
function readId(end: number): NodeId {
  readVarint(end);
  if (vHi === 0) return BigInt(vLo);
  scratch32[LO] = vLo;
  scratch32[HI] = vHi;
  return scratch64[0];
}

/** Read a tag: returns (field << 3) | wireType, validated. */
function readTag(end: number): number {
  let tag: number;
  const b = inp[ip];
  if (b < 0x80) {
    ip++;
    tag = b;
  } else {
    readVarint(end);
    if (vHi !== 0) throw new CodecError("tag out of range");
    tag = vLo;
  }
  if (tag >>> 3 === 0) throw new CodecError("field number 0");
  return tag;
}

/** Read a length prefix and check the body fits before `end`; returns the body's end. */
function readLen(end: number): number {
  const len = readNum(end);
  const e = ip + len;
  if (e > end) throw new CodecError("length past the end of the input");
  return e;
}

/** Read a length-delimited bytes field as a view of the input. */
function readBytes(end: number): Uint8Array {
  const e = readLen(end);
  if (e === ip) return EMPTY_BYTES;
  const v = inp.subarray(ip, e);
  ip = e;
  return v;
}

function readBool(end: number): boolean {
  readVarint(end);
  return vLo !== 0 || vHi !== 0;
}

/** Skip an unknown field of a known wire type. */
function skipField(tag: number, end: number): void {
  switch (tag & 7) {
    case 0:
      readVarint(end);
      return;
    case 1:
      if (ip + 8 > end) truncated();
      ip += 8;
      return;
    case 2:
      ip = readLen(end);
      return;
    case 5:
      if (ip + 4 > end) truncated();
      ip += 4;
      return;
    default:
      throw new CodecError(`unsupported wire type ${tag & 7} (field ${tag >>> 3})`);
  }
}

function wrongWireType(tag: number): never {
  throw new CodecError(`wrong wire type ${tag & 7} for field ${tag >>> 3}`);
}

/** Field numbers whose tags we recognise by value; any other tag goes to checkOrSkip. */
function checkOrSkip(tag: number, end: number, knownFields: number): void {
  // A known field number (bit set in knownFields) reaching here has the wrong wire type.
  const f = tag >>> 3;
  if (f < 32 && (knownFields & (1 << f)) !== 0) wrongWireType(tag);
  skipField(tag, end);
}

function readEntryType(end: number): EntryType {
  readVarint(end);
  if (vHi !== 0 || vLo > 1) throw new CodecError(`unknown entry type ${vHi !== 0 ? "(large)" : vLo}`);
  return vLo as EntryType;
}

function decodeEntryBody(end: number): Entry {
  let type = EntryType.Normal;
  let term = 0;
  let index = 0;
  let data = EMPTY_BYTES;
  while (ip < end) {
    const tag = readTag(end);
    switch (tag) {
      case 0x08:
        type = readEntryType(end);
        break;
      case 0x10:
        term = readNum(end);
        break;
      case 0x18:
        index = readNum(end);
        break;
      case 0x22:
        data = readBytes(end);
        break;
      default:
        checkOrSkip(tag, end, 0b11110);
    }
  }
  return { term, index, type, data };
}

/** Append ids of a repeated uint64 field, packed (wire type 2) or not (0). */
function readIds(tag: number, end: number, into: NodeId[]): void {
  if ((tag & 7) === 0) {
    into.push(readId(end));
  } else {
    const e = readLen(end);
    while (ip < e) into.push(readId(e));
  }
}

function decodeConfStateInto(c: ConfState, end: number): void {
  while (ip < end) {
    const tag = readTag(end);
    switch (tag) {
      case 0x08:
      case 0x0a:
        readIds(tag, end, c.voters);
        break;
      case 0x10:
      case 0x12:
        readIds(tag, end, c.learners);
        break;
      default:
        checkOrSkip(tag, end, 0b110);
    }
  }
}

function decodeSnapshotMetaInto(m: SnapshotMeta, end: number): void {
  while (ip < end) {
    const tag = readTag(end);
    switch (tag) {
      case 0x0a:
        decodeConfStateInto(m.confState, readLen(end));
        break;
      case 0x10:
        m.index = readNum(end);
        break;
      case 0x18:
        m.term = readNum(end);
        break;
      default:
        checkOrSkip(tag, end, 0b1110);
    }
  }
}

function emptySnapshot(): Snapshot {
  return { meta: { index: 0, term: 0, confState: { voters: [], learners: [] } }, data: EMPTY_BYTES };
}

function decodeSnapshotInto(s: Snapshot, end: number): void {
  while (ip < end) {
    const tag = readTag(end);
    switch (tag) {
      case 0x0a:
        s.data = readBytes(end);
        break;
      case 0x12:
        decodeSnapshotMetaInto(s.meta, readLen(end));
        break;
      default:
        checkOrSkip(tag, end, 0b110);
    }
  }
}

function decodeMessageBody(end: number, maxEntries: number): Message {
  let type = MessageType.Hup;
  let to = 0n;
  let from = 0n;
  let term = 0;
  let logTerm = 0;
  let index = 0;
  const entries: Entry[] = [];
  let commit = 0;
  let snapshot: Snapshot | undefined;
  let reject = false;
  let rejectHint = 0;
  let context = EMPTY_BYTES;
  while (ip < end) {
    const tag = readTag(end);
    switch (tag) {
      case 0x08: {
        readVarint(end);
        const t = vHi === 0 ? TYPE_BY_NUM[vLo] : undefined;
        if (t === undefined) throw new CodecError(`unknown message type number ${vHi === 0 ? vLo : "(large)"}`);
        type = t;
        break;
      }
      case 0x10:
        to = readId(end);
        break;
      case 0x18:
        from = readId(end);
        break;
      case 0x20:
        term = readNum(end);
        break;
      case 0x28:
        logTerm = readNum(end);
        break;
      case 0x30:
        index = readNum(end);
        break;
      case 0x3a:
        if (entries.length >= maxEntries) throw new CodecError(`more than ${maxEntries} entries`);
        entries.push(decodeEntryBody(readLen(end)));
        break;
      case 0x40:
        commit = readNum(end);
        break;
      case 0x4a:
        if (snapshot === undefined) snapshot = emptySnapshot();
        decodeSnapshotInto(snapshot, readLen(end));
        break;
      case 0x50:
        reject = readBool(end);
        break;
      case 0x58:
        rejectHint = readNum(end);
        break;
      case 0x62:
        context = readBytes(end);
        break;
      default:
        checkOrSkip(tag, end, 0b1111111111110);
    }
  }
  const m: Message = { type, from, to, term, logTerm, index, entries, commit, reject, rejectHint, context };
  if (snapshot !== undefined) m.snapshot = snapshot;
  return m;
}

// ---------------------------------------------------------------------------
// Public decoder. Byte fields in the results are views of `b` (see the top).

/** Decode a Raft message (tsetcdpb.Message). Throws CodecError on malformed input. */
export function decodeMessage(b: Uint8Array, limits?: DecodeLimits): Message {
  if (!(b instanceof Uint8Array)) throw new CodecError("input is not a Uint8Array");
  const maxEntries = limits?.maxEntries ?? Infinity;
  inp = b;
  ip = 0;
  try {
    return decodeMessageBody(b.length, maxEntries);
  } finally {
    inp = EMPTY_BYTES;
  }
}
