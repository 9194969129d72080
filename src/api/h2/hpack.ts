// HPACK (RFC 7541). The decoder is complete (static and dynamic tables, size
// updates, Huffman) because clients use all of it. The encoder is minimal on
// purpose: responses are a handful of constant fields, so it never indexes and
// never Huffman-codes ("literal without indexing"), which keeps the peer's
// decoder state trivial and lets the gRPC blocks be precomputed once.
import { huffmanDecode } from "./huffman.js";

/** RFC 7541 appendix A; index 1 is STATIC[0]. */
const STATIC: ReadonlyArray<readonly [string, string]> = [
  [":authority", ""],
  [":method", "GET"],
  [":method", "POST"],
  [":path", "/"],
  [":path", "/index.html"],
  [":scheme", "http"],
  [":scheme", "https"],
  [":status", "200"],
  [":status", "204"],
  [":status", "206"],
  [":status", "304"],
  [":status", "400"],
  [":status", "404"],
  [":status", "500"],
  ["accept-charset", ""],
  ["accept-encoding", "gzip, deflate"],
  ["accept-language", ""],
  ["accept-ranges", ""],
  ["accept", ""],
  ["access-control-allow-origin", ""],
  ["age", ""],
  ["allow", ""],
  ["authorization", ""],
  ["cache-control", ""],
  ["content-disposition", ""],
  ["content-encoding", ""],
  ["content-language", ""],
  ["content-length", ""],
  ["content-location", ""],
  ["content-range", ""],
  ["content-type", ""],
  ["cookie", ""],
  ["date", ""],
  ["etag", ""],
  ["expect", ""],
  ["expires", ""],
  ["from", ""],
  ["host", ""],
  ["if-match", ""],
  ["if-modified-since", ""],
  ["if-none-match", ""],
  ["if-range", ""],
  ["if-unmodified-since", ""],
  ["last-modified", ""],
  ["link", ""],
  ["location", ""],
  ["max-forwards", ""],
  ["proxy-authenticate", ""],
  ["proxy-authorization", ""],
  ["range", ""],
  ["referer", ""],
  ["refresh", ""],
  ["retry-after", ""],
  ["server", ""],
  ["set-cookie", ""],
  ["strict-transport-security", ""],
  ["transfer-encoding", ""],
  ["user-agent", ""],
  ["vary", ""],
  ["via", ""],
  ["www-authenticate", ""],
];
const STATIC_COUNT = STATIC.length;
/** Per-entry overhead the RFC adds to name + value octets (section 4.1). */
const ENTRY_OVERHEAD = 32;

export type HeaderMap = Record<string, string | string[]>;

/** A decoding failure: the connection must end with COMPRESSION_ERROR. */
export class HpackError extends Error {}

/** Bit flags describing a decoded block; the connection decides what they mean. */
export const MALFORMED_NAME = 1; // upper case or a character not allowed in a name
export const MALFORMED_VALUE = 2; // NUL, CR or LF, or leading/trailing white space
export const PSEUDO_AFTER_REGULAR = 4;
export const TOO_LARGE = 8; // the list exceeded maxHeaderListSize; fields were dropped
export const HAS_PSEUDO = 16;
export const UNKNOWN_PSEUDO = 32; // a pseudo-header other than a request's four

export class HpackDecoder {
  // The dynamic table as a ring of slots; `newest` is the slot of index 62.
  private readonly names: string[];
  private readonly values: string[];
  private readonly badName: Uint8Array;
  private newest = 0;
  private count = 0;
  private size = 0;
  private maxSize: number;
  private pos = 0;
  /** Flags of the last decoded block. */
  flags = 0;

  /**
   * @param settingsMax our SETTINGS_HEADER_TABLE_SIZE: the most the peer may use.
   * @param maxHeaderListSize the most octets (name + value + 32 per field) kept per block.
   */
  constructor(
    private readonly settingsMax = 4096,
    private readonly maxHeaderListSize = 64 * 1024,
  ) {
    this.maxSize = settingsMax;
    const slots = Math.floor(settingsMax / ENTRY_OVERHEAD) + 1;
    this.names = new Array(slots);
    this.values = new Array(slots);
    this.badName = new Uint8Array(slots);
  }

  /** Entries and octets in the dynamic table (for tests). */
  get tableState(): { count: number; size: number; entries: [string, string][] } {
    const entries: [string, string][] = [];
    for (let i = 0; i < this.count; i++) {
      const slot = this.slot(i);
      entries.push([this.names[slot], this.values[slot]]);
    }
    return { count: this.count, size: this.size, entries };
  }

  /**
   * Decodes one complete header block into a fresh null-prototype object.
   * Throws HpackError on a compression error; sets `flags` for the caller's
   * checks of what HTTP/2 calls a malformed request.
   */
  decode(block: Uint8Array, start = 0, end = block.length): HeaderMap {
    const headers: HeaderMap = Object.create(null);
    this.pos = start;
    this.flags = 0;
    let listSize = 0;
    let fieldSeen = false;
    let regularSeen = false;
    while (this.pos < end) {
      const b = block[this.pos];
      let name: string;
      let value: string;
      let bad = 0;
      if (b & 0x80) {
        // Indexed field.
        const index = this.readInt(block, end, 7);
        if (index === 0) throw new HpackError("hpack: index 0");
        if (index <= STATIC_COUNT) {
          name = STATIC[index - 1][0];
          value = STATIC[index - 1][1];
        } else {
          const slot = this.dynamicSlot(index);
          name = this.names[slot];
          value = this.values[slot];
          bad = this.badName[slot];
        }
      } else if ((b & 0xe0) === 0x20) {
        // Dynamic table size update: only before the block's first field.
        if (fieldSeen) throw new HpackError("hpack: table size update after a field");
        const max = this.readInt(block, end, 5);
        if (max > this.settingsMax) throw new HpackError(`hpack: table size ${max} above ${this.settingsMax}`);
        this.maxSize = max;
        this.evict(0);
        continue;
      } else {
        // Literal: with incremental indexing (01), without (0000) or never indexed (0001).
        const indexing = (b & 0x40) !== 0;
        const index = this.readInt(block, end, indexing ? 6 : 4);
        if (index === 0) {
          name = this.readString(block, end);
          if (!validName(name)) bad = MALFORMED_NAME;
        } else if (index <= STATIC_COUNT) {
          name = STATIC[index - 1][0];
        } else {
          const slot = this.dynamicSlot(index);
          name = this.names[slot];
          bad = this.badName[slot];
        }
        value = this.readString(block, end);
        if (!validValue(value)) this.flags |= MALFORMED_VALUE;
        if (indexing) this.insert(name, value, bad);
      }
      fieldSeen = true;
      this.flags |= bad;
      if (name.charCodeAt(0) === 0x3a /* ':' */) {
        this.flags |= HAS_PSEUDO;
        if (regularSeen) this.flags |= PSEUDO_AFTER_REGULAR;
        if (name !== ":path" && name !== ":method" && name !== ":scheme" && name !== ":authority") this.flags |= UNKNOWN_PSEUDO;
      } else {
        regularSeen = true;
      }
      listSize += name.length + value.length + ENTRY_OVERHEAD;
      if (listSize > this.maxHeaderListSize) {
        // Keep decoding (the dynamic table must stay in step) but keep nothing more.
        this.flags |= TOO_LARGE;
        continue;
      }
      // `in` first: a miss is the common case, and it is cheaper than a failed get.
      if (!(name in headers)) {
        headers[name] = value;
        continue;
      }
      const prev = headers[name];
      if (typeof prev === "string") headers[name] = [prev, value];
      else prev.push(value);
    }
    return headers;
  }

  private slot(i: number): number {
    const cap = this.names.length;
    return (this.newest - i + cap) % cap;
  }

  private dynamicSlot(index: number): number {
    const i = index - STATIC_COUNT - 1;
    if (i >= this.count) throw new HpackError(`hpack: index ${index} beyond the table`);
    return this.slot(i);
  }

  private insert(name: string, value: string, bad: number): void {
    const size = name.length + value.length + ENTRY_OVERHEAD;
    if (size > this.maxSize) {
      // Larger than the whole table: the table ends up empty (section 4.4).
      this.count = 0;
      this.size = 0;
      return;
    }
    this.evict(size);
    const cap = this.names.length;
    this.newest = (this.newest + 1) % cap;
    this.names[this.newest] = name;
    this.values[this.newest] = value;
    this.badName[this.newest] = bad;
    this.count++;
    this.size += size;
    // Invariant: every entry takes at least 32 octets, so the ring never overflows.
    if (this.count >= cap || this.size > this.maxSize) throw new Error("hpack: dynamic table invariant broken");
  }

  /** Evicts oldest entries until `room` more octets fit under the maximum. */
  private evict(room: number): void {
    while (this.count > 0 && this.size + room > this.maxSize) {
      const slot = this.slot(this.count - 1);
      this.size -= this.names[slot].length + this.values[slot].length + ENTRY_OVERHEAD;
      this.names[slot] = "";
      this.values[slot] = "";
      this.count--;
    }
  }

  /** Reads a prefixed integer (section 5.1) at `pos`, advancing it. */
  private readInt(buf: Uint8Array, end: number, prefixBits: number): number {
    const mask = (1 << prefixBits) - 1;
    let value = buf[this.pos++] & mask;
    if (value < mask) return value;
    let shift = 0;
    for (;;) {
      if (this.pos >= end) throw new HpackError("hpack: truncated integer");
      const b = buf[this.pos++];
      value += (b & 0x7f) * 2 ** shift;
      shift += 7;
      if ((b & 0x80) === 0) break;
      // Nothing we accept needs more than 2^28; longer encodings are an attack.
      if (shift > 28) throw new HpackError("hpack: integer too large");
    }
    if (value > 0x7fffffff) throw new HpackError("hpack: integer too large");
    return value;
  }

  /** Reads a string literal (section 5.2) as Latin-1, as node:http2 does. */
  private readString(buf: Uint8Array, end: number): string {
    if (this.pos >= end) throw new HpackError("hpack: truncated string");
    const huffman = (buf[this.pos] & 0x80) !== 0;
    const length = this.readInt(buf, end, 7);
    const start = this.pos;
    if (length > end - start) throw new HpackError("hpack: string past the end of the block");
    this.pos = start + length;
    if (!huffman) return latin1(buf, start, start + length);
    const decoded = huffmanDecode(buf, start, start + length);
    if (decoded === null) throw new HpackError("hpack: invalid Huffman string");
    return latin1(decoded.bytes, 0, decoded.length);
  }
}

function latin1(buf: Uint8Array, start: number, end: number): string {
  if (end - start <= 24) {
    let s = "";
    for (let i = start; i < end; i++) s += String.fromCharCode(buf[i]);
    return s;
  }
  return Buffer.from(buf.buffer, buf.byteOffset + start, end - start).toString("latin1");
}

/** RFC 9113 section 8.2.1: names are lower case tokens (':' only leads a pseudo-header). */
function validName(name: string): boolean {
  if (name.length === 0) return false;
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c <= 0x20 || c >= 0x7f || (c >= 0x41 && c <= 0x5a) || (c === 0x3a && i > 0)) return false;
  }
  return true;
}

/** RFC 9113 section 8.2.1: no NUL, CR or LF; no leading or trailing space or tab. */
function validValue(value: string): boolean {
  const n = value.length;
  if (n === 0) return true;
  let c = value.charCodeAt(0);
  if (c === 0x20 || c === 0x09) return false;
  c = value.charCodeAt(n - 1);
  if (c === 0x20 || c === 0x09) return false;
  for (let i = 0; i < n; i++) {
    c = value.charCodeAt(i);
    if (c === 0 || c === 0x0a || c === 0x0d) return false;
  }
  return true;
}

// ---------------------------------------------------------------------------
// Encoder

export type OutgoingHeaders = Record<string, string | number | readonly (string | number)[] | undefined>;

/** `:status` values with an exact static entry (index 8..14). */
const STATUS_INDEX: Record<string, number> = { "200": 8, "204": 9, "206": 10, "304": 11, "400": 12, "404": 13, "500": 14 };

/**
 * Encodes a header list: `:status` from the static table when it matches
 * exactly, everything else as a literal without indexing with a literal name.
 * Pseudo-headers go first, as RFC 9113 requires.
 */
export function encodeHeaders(headers: OutgoingHeaders): Uint8Array {
  const parts: number[] = [];
  for (const pass of [true, false]) {
    for (const key in headers) {
      const raw = headers[key];
      if (raw === undefined) continue;
      const name = key.toLowerCase();
      if ((name.charCodeAt(0) === 0x3a) !== pass) continue;
      const values = Array.isArray(raw) ? raw : [raw];
      for (const v of values) {
        const value = String(v);
        const idx = name === ":status" ? STATUS_INDEX[value] : undefined;
        if (idx !== undefined) {
          parts.push(0x80 | idx);
          continue;
        }
        parts.push(0x00);
        pushString(parts, name);
        pushString(parts, value);
      }
    }
  }
  return Uint8Array.from(parts);
}

function pushString(out: number[], s: string): void {
  const bytes = Buffer.from(s, isLatin1(s) ? "latin1" : "utf8");
  pushInt(out, bytes.length, 7, 0x00);
  for (let i = 0; i < bytes.length; i++) out.push(bytes[i]);
}

function isLatin1(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0xff) return false;
  return true;
}

/** Appends a prefixed integer (section 5.1); `first` holds the pattern bits above the prefix. */
export function pushInt(out: number[], value: number, prefixBits: number, first: number): void {
  const max = (1 << prefixBits) - 1;
  if (value < max) {
    out.push(first | value);
    return;
  }
  out.push(first | max);
  value -= max;
  while (value >= 0x80) {
    out.push((value % 0x80) | 0x80);
    value = Math.floor(value / 0x80);
  }
  out.push(value);
}

/** The constant gRPC response headers, encoded once. */
export const GRPC_RESPONSE_BLOCK = encodeHeaders({ ":status": 200, "content-type": "application/grpc" });
/** The OK trailer, encoded once. */
export const GRPC_OK_TRAILER_BLOCK = encodeHeaders({ "grpc-status": "0" });

/** True when `headers` is exactly `:status 200` + `content-type: application/grpc`. */
export function isGrpcResponse(headers: OutgoingHeaders): boolean {
  let n = 0;
  for (const _ in headers) n++;
  const status = headers[":status"];
  return n === 2 && (status === 200 || status === "200") && headers["content-type"] === "application/grpc";
}

/** True when `trailers` is exactly `grpc-status: 0`. */
export function isGrpcOkTrailer(trailers: OutgoingHeaders): boolean {
  let n = 0;
  for (const _ in trailers) n++;
  const status = trailers["grpc-status"];
  return n === 1 && (status === "0" || status === 0);
}

/** A dynamic table size update to 0 (section 6.3), put before our first block: see H2Connection. */
export const TABLE_SIZE_ZERO = 0x20;
