// The per-connection output buffer. Frames of one event-loop turn are
// appended here and handed to the socket as one write, so a burst of a
// thousand responses costs one syscall instead of three thousand.
//
// Bytes are appended to a slab and each flush hands the socket a view of the
// slab's unflushed part. A flushed region is never written again (the socket
// may still hold it), so there is no copy at flush time and no allocation per
// flush; a new slab is taken when the current one is full, sized by recent
// demand so an idle connection holds little and a busy one few slabs.

const MIN_SLAB = 16 * 1024;
const MAX_SLAB = 1024 * 1024;

export class Output {
  // Buffers, not bare Uint8Arrays: node:net converts anything else on every write.
  private slab: Buffer = Buffer.allocUnsafeSlow(MIN_SLAB);
  private view = new DataView(this.slab.buffer, this.slab.byteOffset, this.slab.length);
  /** Start of the unflushed region of the current slab. */
  private start = 0;
  /** Next byte to write in the current slab. */
  private pos = 0;
  /** Unflushed regions of earlier slabs, oldest first. */
  private parts: Uint8Array[] = [];
  private partsBytes = 0;
  /** Bytes of the largest recent take, to size the next slab. */
  private recent = 0;

  /** Bytes appended and not yet taken. */
  get size(): number {
    return this.partsBytes + this.pos - this.start;
  }

  /** Makes room for `n` contiguous bytes. */
  private reserve(n: number): void {
    if (this.pos + n <= this.slab.length) return;
    if (this.pos > this.start) {
      this.parts.push(this.slab.subarray(this.start, this.pos));
      this.partsBytes += this.pos - this.start;
    }
    const want = Math.min(MAX_SLAB, Math.max(MIN_SLAB, 2 * this.recent));
    this.slab = Buffer.allocUnsafeSlow(Math.max(want, n));
    this.view = new DataView(this.slab.buffer, this.slab.byteOffset, this.slab.length);
    this.start = 0;
    this.pos = 0;
  }

  /** Appends a 9-byte frame header and reserves room for its payload. */
  frameHeader(length: number, type: number, flags: number, streamId: number): void {
    this.reserve(9 + length);
    const s = this.slab;
    const p = this.pos;
    s[p] = length >>> 16;
    s[p + 1] = (length >>> 8) & 0xff;
    s[p + 2] = length & 0xff;
    s[p + 3] = type;
    s[p + 4] = flags;
    this.view.setUint32(p + 5, streamId);
    this.pos = p + 9;
  }

  /** Appends bytes; only after frameHeader reserved room for them. */
  bytes(src: Uint8Array, start: number, end: number): void {
    if (start === 0 && end === src.length) {
      this.slab.set(src, this.pos);
    } else if (end - start <= 64) {
      // Short slices (ping payloads, split header blocks): a loop beats a view plus set.
      const s = this.slab;
      let p = this.pos;
      for (let i = start; i < end; i++) s[p++] = src[i];
      this.pos = p;
      return;
    } else {
      this.slab.set(src.subarray(start, end), this.pos);
    }
    this.pos += end - start;
  }

  byte(b: number): void {
    this.slab[this.pos++] = b;
  }

  u32(v: number): void {
    this.view.setUint32(this.pos, v);
    this.pos += 4;
  }

  u16(v: number): void {
    this.view.setUint16(this.pos, v);
    this.pos += 2;
  }

  /** Everything appended since the last take, as one buffer; null when empty. */
  take(): Uint8Array | null {
    const tail = this.pos - this.start;
    this.recent = Math.max(this.partsBytes + tail, this.recent >>> 1);
    if (this.parts.length === 0) {
      if (tail === 0) return null;
      const out = this.slab.subarray(this.start, this.pos);
      this.start = this.pos;
      return out;
    }
    const total = this.partsBytes + tail;
    const out = Buffer.allocUnsafeSlow(total);
    let off = 0;
    for (const p of this.parts) {
      out.set(p, off);
      off += p.length;
    }
    out.set(this.slab.subarray(this.start, this.pos), off);
    this.parts = [];
    this.partsBytes = 0;
    this.start = this.pos;
    return out;
  }
}
