// gRPC's length-prefixed message framing: 1 byte compressed flag, 4 bytes
// big-endian length, then the message. One MessageReader per request stream.

import { Code, EtcdError } from "../../errors.js";

export interface Frame {
  compressed: boolean;
  data: Uint8Array;
}

/** Thrown when a frame announces more bytes than the receive limit allows (grpc-go's text and code). */
export class FrameTooLargeError extends EtcdError {
  constructor(
    readonly size: number,
    readonly limit: number,
  ) {
    super(Code.ResourceExhausted, `grpc: received message larger than max (${size} vs. ${limit})`);
  }
}

/**
 * Accumulates DATA chunks and yields complete frames. Memory is bounded by
 * `maxMessageBytes` plus one chunk: a frame announcing more is refused before
 * its body is buffered.
 */
export class MessageReader {
  private pending: Uint8Array[] = [];
  private pendingBytes = 0;

  constructor(private readonly maxMessageBytes: number) {}

  /** Feeds one chunk; returns the frames it completed (usually zero or one). */
  push(chunk: Uint8Array): Frame[] {
    let buf: Uint8Array;
    if (this.pendingBytes === 0) {
      buf = chunk;
    } else {
      this.pending.push(chunk);
      buf = concat(this.pending, this.pendingBytes + chunk.length);
      this.pending = [];
      this.pendingBytes = 0;
    }
    const frames: Frame[] = [];
    let off = 0;
    while (buf.length - off >= 5) {
      const len = ((buf[off + 1] << 24) >>> 0) + (buf[off + 2] << 16) + (buf[off + 3] << 8) + buf[off + 4];
      if (len > this.maxMessageBytes) throw new FrameTooLargeError(len, this.maxMessageBytes);
      if (buf.length - off - 5 < len) break;
      // Copy: Bun's Buffer#subarray is a view on a chunk the stream may reuse.
      frames.push({ compressed: buf[off] === 1, data: buf.slice(off + 5, off + 5 + len) });
      off += 5 + len;
    }
    if (off < buf.length) {
      const rest = buf.slice(off);
      this.pending.push(rest);
      this.pendingBytes = rest.length;
    }
    return frames;
  }

  /** True when a partial frame is buffered (a stream ending now is malformed). */
  get hasPartial(): boolean {
    return this.pendingBytes > 0;
  }
}

function concat(parts: Uint8Array[], total: number): Uint8Array {
  const out = new Uint8Array(total);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}
