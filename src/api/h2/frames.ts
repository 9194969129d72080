// HTTP/2 frame layout (RFC 9113 section 4 and 6): type, flag, error and
// setting numbers, the payload checks that do not need connection state, and
// serialization of every frame a server sends into an Output.
import type { Output } from "./output.js";

export const PREFACE = new TextEncoder().encode("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
export const FRAME_HEADER_BYTES = 9;

export enum FrameType {
  DATA = 0x0,
  HEADERS = 0x1,
  PRIORITY = 0x2,
  RST_STREAM = 0x3,
  SETTINGS = 0x4,
  PUSH_PROMISE = 0x5,
  PING = 0x6,
  GOAWAY = 0x7,
  WINDOW_UPDATE = 0x8,
  CONTINUATION = 0x9,
}

export enum Flag {
  END_STREAM = 0x1,
  ACK = 0x1,
  END_HEADERS = 0x4,
  PADDED = 0x8,
  PRIORITY = 0x20,
}

export enum ErrorCode {
  NO_ERROR = 0x0,
  PROTOCOL_ERROR = 0x1,
  INTERNAL_ERROR = 0x2,
  FLOW_CONTROL_ERROR = 0x3,
  SETTINGS_TIMEOUT = 0x4,
  STREAM_CLOSED = 0x5,
  FRAME_SIZE_ERROR = 0x6,
  REFUSED_STREAM = 0x7,
  CANCEL = 0x8,
  COMPRESSION_ERROR = 0x9,
  CONNECT_ERROR = 0xa,
  ENHANCE_YOUR_CALM = 0xb,
  INADEQUATE_SECURITY = 0xc,
  HTTP_1_1_REQUIRED = 0xd,
}

export enum Setting {
  HEADER_TABLE_SIZE = 0x1,
  ENABLE_PUSH = 0x2,
  MAX_CONCURRENT_STREAMS = 0x3,
  INITIAL_WINDOW_SIZE = 0x4,
  MAX_FRAME_SIZE = 0x5,
  MAX_HEADER_LIST_SIZE = 0x6,
}

export const DEFAULT_WINDOW = 65_535;
export const MAX_WINDOW = 0x7fff_ffff;
export const MIN_MAX_FRAME_SIZE = 16_384;
export const MAX_MAX_FRAME_SIZE = 0xff_ffff;

/**
 * A protocol violation. With `streamId` 0 it ends the connection (GOAWAY);
 * otherwise it resets that one stream (RST_STREAM).
 */
export class H2Error extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly streamId = 0,
  ) {
    super(message);
  }
}

export const connectionError = (code: ErrorCode, message: string) => new H2Error(code, message, 0);
export const streamError = (streamId: number, code: ErrorCode, message: string) => new H2Error(code, message, streamId);

export function readU32(b: Uint8Array, off: number): number {
  return ((b[off] << 24) | (b[off + 1] << 16) | (b[off + 2] << 8) | b[off + 3]) >>> 0;
}

/**
 * The padding a DATA or HEADERS payload `b[start, end)` carries (section 6.1,
 * 6.2), counting the pad-length byte; its content is `[start + (padded ? 1 : 0), end - pad)`.
 */
export function padLength(flags: number, b: Uint8Array, start: number, end: number): number {
  if ((flags & Flag.PADDED) === 0) return 0;
  if (end - start < 1) throw connectionError(ErrorCode.FRAME_SIZE_ERROR, "padded frame without a pad length");
  const pad = b[start];
  if (pad >= end - start) throw connectionError(ErrorCode.PROTOCOL_ERROR, "padding longer than the frame");
  return pad;
}

export interface PeerSettings {
  headerTableSize?: number;
  enablePush?: number;
  maxConcurrentStreams?: number;
  initialWindowSize?: number;
  maxFrameSize?: number;
  maxHeaderListSize?: number;
}

/** Parses and validates a SETTINGS payload (section 6.5.2); unknown settings are ignored. */
export function parseSettings(payload: Uint8Array, start: number, end: number): PeerSettings {
  if ((end - start) % 6 !== 0) throw connectionError(ErrorCode.FRAME_SIZE_ERROR, "SETTINGS length not a multiple of 6");
  const s: PeerSettings = {};
  for (let off = start; off < end; off += 6) {
    const id = (payload[off] << 8) | payload[off + 1];
    const value = readU32(payload, off + 2);
    switch (id) {
      case Setting.HEADER_TABLE_SIZE:
        s.headerTableSize = value;
        break;
      case Setting.ENABLE_PUSH:
        if (value > 1) throw connectionError(ErrorCode.PROTOCOL_ERROR, "ENABLE_PUSH must be 0 or 1");
        s.enablePush = value;
        break;
      case Setting.MAX_CONCURRENT_STREAMS:
        s.maxConcurrentStreams = value;
        break;
      case Setting.INITIAL_WINDOW_SIZE:
        if (value > MAX_WINDOW) throw connectionError(ErrorCode.FLOW_CONTROL_ERROR, "INITIAL_WINDOW_SIZE above 2^31-1");
        s.initialWindowSize = value;
        break;
      case Setting.MAX_FRAME_SIZE:
        if (value < MIN_MAX_FRAME_SIZE || value > MAX_MAX_FRAME_SIZE) throw connectionError(ErrorCode.PROTOCOL_ERROR, "MAX_FRAME_SIZE out of range");
        s.maxFrameSize = value;
        break;
      case Setting.MAX_HEADER_LIST_SIZE:
        s.maxHeaderListSize = value;
        break;
    }
  }
  return s;
}

// --- serialization ---------------------------------------------------------

export function writeSettings(out: Output, settings: ReadonlyArray<readonly [Setting, number]>): void {
  out.frameHeader(6 * settings.length, FrameType.SETTINGS, 0, 0);
  for (const [id, value] of settings) {
    out.u16(id);
    out.u32(value);
  }
}

export function writeSettingsAck(out: Output): void {
  out.frameHeader(0, FrameType.SETTINGS, Flag.ACK, 0);
}

export function writePingAck(out: Output, payload: Uint8Array, start: number): void {
  out.frameHeader(8, FrameType.PING, Flag.ACK, 0);
  out.bytes(payload, start, start + 8);
}

export function writeWindowUpdate(out: Output, streamId: number, increment: number): void {
  if (increment <= 0 || increment > MAX_WINDOW) throw new Error(`h2: bad WINDOW_UPDATE increment ${increment}`);
  out.frameHeader(4, FrameType.WINDOW_UPDATE, 0, streamId);
  out.u32(increment);
}

export function writeRstStream(out: Output, streamId: number, code: ErrorCode): void {
  out.frameHeader(4, FrameType.RST_STREAM, 0, streamId);
  out.u32(code);
}

export function writeGoaway(out: Output, lastStreamId: number, code: ErrorCode, debug: string): void {
  const text = new TextEncoder().encode(debug.slice(0, 256));
  out.frameHeader(8 + text.length, FrameType.GOAWAY, 0, 0);
  out.u32(lastStreamId);
  out.u32(code);
  out.bytes(text, 0, text.length);
}

export function writeData(out: Output, streamId: number, data: Uint8Array, start: number, end: number, endStream: boolean): void {
  out.frameHeader(end - start, FrameType.DATA, endStream ? Flag.END_STREAM : 0, streamId);
  if (end > start) out.bytes(data, start, end);
}

/**
 * Writes a header block as HEADERS plus CONTINUATION frames of at most
 * `maxFrame` bytes each. `prefix` (a table size update) is put before the
 * block when not negative.
 */
export function writeHeaders(out: Output, streamId: number, block: Uint8Array, endStream: boolean, maxFrame: number, prefix: number): void {
  const total = block.length + (prefix >= 0 ? 1 : 0);
  const endFlag = endStream ? Flag.END_STREAM : 0;
  if (total <= maxFrame) {
    out.frameHeader(total, FrameType.HEADERS, endFlag | Flag.END_HEADERS, streamId);
    if (prefix >= 0) out.byte(prefix);
    out.bytes(block, 0, block.length);
    return;
  }
  // Rare (our blocks are small): join the prefix once, then cut.
  const whole = new Uint8Array(total);
  let o = 0;
  if (prefix >= 0) whole[o++] = prefix;
  whole.set(block, o);
  let off = 0;
  let type: number = FrameType.HEADERS;
  while (off < total) {
    const n = Math.min(maxFrame, total - off);
    const last = off + n === total;
    const flags = (type === FrameType.HEADERS ? endFlag : 0) | (last ? Flag.END_HEADERS : 0);
    out.frameHeader(n, type, flags, streamId);
    out.bytes(whole, off, off + n);
    off += n;
    type = FrameType.CONTINUATION;
  }
}
