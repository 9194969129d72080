// Splits the client's byte stream into frames: checks the connection preface,
// enforces SETTINGS_MAX_FRAME_SIZE, and hands each frame to a sink as
// offsets into the chunk it arrived in. Only a frame split across chunks is
// copied, so the common case (many whole frames per read) copies nothing
// and allocates nothing per frame.
import { connectionError, ErrorCode, FRAME_HEADER_BYTES, PREFACE, readU32 } from "./frames.js";

/** Receives one frame's payload as `buf[start, end)`; returns false to stop reading. */
export type FrameSink = (type: number, flags: number, streamId: number, buf: Uint8Array, start: number, end: number) => boolean;

export class FrameReader {
  /** Preface bytes still expected. */
  private prefaceLeft = PREFACE.length;
  // A frame split across chunks: its header, then its payload as it fills.
  private readonly head = new Uint8Array(FRAME_HEADER_BYTES);
  private headFill = 0;
  private body: Uint8Array | null = null;
  private bodyFill = 0;

  constructor(
    private readonly maxFrameSize: number,
    private readonly sink: FrameSink,
  ) {}

  /** Feeds one chunk. Throws an H2Error (connection error) for a bad preface or an oversized frame. */
  push(chunk: Uint8Array): boolean {
    const n = chunk.length;
    let off = 0;
    if (this.prefaceLeft > 0) {
      const at = PREFACE.length - this.prefaceLeft;
      const k = Math.min(this.prefaceLeft, n);
      for (let i = 0; i < k; i++) {
        if (chunk[i] !== PREFACE[at + i]) throw connectionError(ErrorCode.PROTOCOL_ERROR, "bad connection preface");
      }
      this.prefaceLeft -= k;
      off = k;
      if (this.prefaceLeft > 0) return true;
    }
    if (this.headFill > 0) {
      off = this.finishSplit(chunk, off);
      if (off < 0) return off === -1;
    }
    const max = this.maxFrameSize;
    while (n - off >= FRAME_HEADER_BYTES) {
      const length = (chunk[off] << 16) | (chunk[off + 1] << 8) | chunk[off + 2];
      if (length > max) throw connectionError(ErrorCode.FRAME_SIZE_ERROR, `frame of ${length} bytes above ${max}`);
      const end = off + FRAME_HEADER_BYTES + length;
      if (end > n) break;
      if (!this.sink(chunk[off + 3], chunk[off + 4], readU32(chunk, off + 5) & 0x7fff_ffff, chunk, off + FRAME_HEADER_BYTES, end)) return false;
      off = end;
    }
    if (off < n) this.startSplit(chunk, off);
    return true;
  }

  /** Keeps the start of a frame the chunk does not finish (a copy: the chunk is the socket's). */
  private startSplit(chunk: Uint8Array, off: number): void {
    const rest = chunk.length - off;
    const inHead = Math.min(rest, FRAME_HEADER_BYTES);
    for (let i = 0; i < inHead; i++) this.head[i] = chunk[off + i];
    this.headFill = inHead;
    if (inHead === FRAME_HEADER_BYTES) {
      this.body = new Uint8Array(this.headLength());
      this.body.set(chunk.subarray(off + FRAME_HEADER_BYTES));
      this.bodyFill = rest - FRAME_HEADER_BYTES;
    }
  }

  /**
   * Continues a split frame with the new chunk. Returns the offset after it,
   * or -1 when the chunk ended first, or -2 when the sink asked to stop.
   */
  private finishSplit(chunk: Uint8Array, off: number): number {
    const n = chunk.length;
    if (this.body === null) {
      const k = Math.min(FRAME_HEADER_BYTES - this.headFill, n - off);
      for (let i = 0; i < k; i++) this.head[this.headFill + i] = chunk[off + i];
      this.headFill += k;
      off += k;
      if (this.headFill < FRAME_HEADER_BYTES) return -1;
      this.body = new Uint8Array(this.headLength());
      this.bodyFill = 0;
    }
    const body = this.body;
    const k = Math.min(body.length - this.bodyFill, n - off);
    if (k > 0) body.set(chunk.subarray(off, off + k), this.bodyFill);
    this.bodyFill += k;
    off += k;
    if (this.bodyFill < body.length) return -1;
    const h = this.head;
    this.headFill = 0;
    this.body = null;
    if (!this.sink(h[3], h[4], readU32(h, 5) & 0x7fff_ffff, body, 0, body.length)) return -2;
    return off;
  }

  private headLength(): number {
    const h = this.head;
    const length = (h[0] << 16) | (h[1] << 8) | h[2];
    if (length > this.maxFrameSize) throw connectionError(ErrorCode.FRAME_SIZE_ERROR, `frame of ${length} bytes above ${this.maxFrameSize}`);
    return length;
  }
}
