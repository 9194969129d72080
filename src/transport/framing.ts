// Length-prefixed frames: a 4-byte big-endian length, then that many bytes.
// The decoder is incremental (chunks split frames anywhere) and bounded: a
// length over the limit is an error before any of its bytes are buffered.

export const PREFIX = 4;

export class FramingError extends Error {}

/** Frames `payloads` into one buffer. */
export function frameAll(payloads: readonly Uint8Array[], start = 0, end = payloads.length): Uint8Array {
  let total = 0;
  for (let i = start; i < end; i++) total += PREFIX + payloads[i].length;
  const out = new Uint8Array(total);
  let at = 0;
  for (let i = start; i < end; i++) {
    const p = payloads[i];
    const n = p.length;
    // Byte by byte: a DataView would make JSC materialize out.buffer, which costs more.
    out[at] = n >>> 24;
    out[at + 1] = (n >>> 16) & 0xff;
    out[at + 2] = (n >>> 8) & 0xff;
    out[at + 3] = n & 0xff;
    out.set(p, at + PREFIX);
    at += PREFIX + p.length;
  }
  return out;
}

export function frameOne(payload: Uint8Array): Uint8Array {
  return frameAll([payload]);
}

export class FrameDecoder {
  /**
   * Chunks of an incomplete frame, owned by us. They are joined once, when the whole
   * frame is here: a large message arriving in many small chunks costs one copy, not n².
   */
  private parts: Uint8Array[] = [];
  private partsBytes = 0;
  /** Bytes needed (prefix + payload) to finish the frame in `parts`, once its prefix is known. */
  private need = 0;

  constructor(private readonly maxFrame: number) {}

  /** Bytes held for an incomplete frame. */
  get buffered(): number {
    return this.partsBytes;
  }

  /**
   * Feeds one chunk; calls `onFrame` with each complete payload (a copy we own, so
   * the caller may keep it). Throws FramingError on an oversized length.
   */
  push(chunk: Uint8Array, onFrame: (payload: Uint8Array) => void): void {
    let buf = chunk;
    if (this.partsBytes > 0) {
      this.parts.push(chunk);
      this.partsBytes += chunk.length;
      if (this.need === 0 && this.partsBytes >= PREFIX) this.need = PREFIX + this.lengthOf(this.join(PREFIX));
      if (this.need === 0 || this.partsBytes < this.need) return;
      buf = this.join(this.partsBytes);
      this.parts = [];
      this.partsBytes = 0;
      this.need = 0;
    }
    let at = 0;
    while (buf.length - at >= PREFIX) {
      const len = this.lengthOf(buf.subarray(at, at + PREFIX));
      if (buf.length - at - PREFIX < len) break;
      // Uint8Array#slice copies (Buffer#slice would be a view into memory we do not own).
      onFrame(Uint8Array.prototype.slice.call(buf, at + PREFIX, at + PREFIX + len));
      at += PREFIX + len;
    }
    if (at < buf.length) {
      const rest = Uint8Array.prototype.slice.call(buf, at);
      this.parts = [rest];
      this.partsBytes = rest.length;
      this.need = rest.length >= PREFIX ? PREFIX + this.lengthOf(rest) : 0;
    }
  }

  private lengthOf(b: Uint8Array): number {
    const len = ((b[0] << 24) | (b[1] << 16) | (b[2] << 8) | b[3]) >>> 0;
    if (len > this.maxFrame) throw new FramingError(`frame of ${len} bytes exceeds the limit of ${this.maxFrame}`);
    return len;
  }

  /** The first `n` bytes held, as one array (the parts themselves when there is one). */
  private join(n: number): Uint8Array {
    if (this.parts.length === 1 && this.parts[0].length >= n) return this.parts[0];
    const out = new Uint8Array(n);
    let at = 0;
    for (const p of this.parts) {
      if (at >= n) break;
      const take = Math.min(p.length, n - at);
      out.set(take === p.length ? p : p.subarray(0, take), at);
      at += take;
    }
    return out;
  }
}
