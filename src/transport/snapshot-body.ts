// The body of a snapshot request: one frame with the encoded Snap message,
// then the data as frames of at most a chunk each (4-byte length, bytes), then
// an end mark (a zero length and the 8-byte total of data bytes). The end mark
// makes truncation impossible to mistake for completion, whatever the HTTP/2
// layer reports when a connection dies mid-transfer.
import { FramingError, PREFIX } from "./framing.js";

export function lengthPrefix(n: number): Uint8Array {
  const b = new Uint8Array(PREFIX);
  new DataView(b.buffer).setUint32(0, n);
  return b;
}

export function endMark(total: number): Uint8Array {
  const b = new Uint8Array(PREFIX + 8);
  new DataView(b.buffer).setBigUint64(PREFIX, BigInt(total));
  return b;
}

const enum Part {
  HeaderPrefix,
  Header,
  DataPrefix,
  Data,
  End,
  Done,
}

export class SnapshotBodyParser {
  private part = Part.HeaderPrefix;
  /** Bytes of a small fixed-size field (prefix, header, end mark) split across chunks. */
  private small: Uint8Array = new Uint8Array(0);
  private need = PREFIX;
  /** Data bytes left in the current data frame. */
  private frameLeft = 0;
  dataBytes = 0;

  constructor(
    private readonly maxHeader: number,
    private readonly maxData: number,
  ) {}

  /** The end mark arrived and matched: the data is complete. */
  get complete(): boolean {
    return this.part === Part.Done;
  }

  /**
   * Consumes one chunk. `onData` gets views of `chunk` (keep them only if you own the chunk).
   * Throws FramingError on anything malformed or over the limits.
   */
  push(chunk: Uint8Array, onHeader: (payload: Uint8Array) => void, onData: (bytes: Uint8Array) => void): void {
    let at = 0;
    while (at < chunk.length) {
      if (this.part === Part.Done) throw new FramingError("bytes after the end of the snapshot");
      if (this.part === Part.Data) {
        const n = Math.min(this.frameLeft, chunk.length - at);
        this.dataBytes += n;
        if (this.dataBytes > this.maxData) throw new FramingError(`snapshot data exceeds the limit of ${this.maxData} bytes`);
        onData(chunk.subarray(at, at + n));
        at += n;
        this.frameLeft -= n;
        if (this.frameLeft === 0) this.expect(Part.DataPrefix, PREFIX);
        continue;
      }
      // A fixed-size field: gather `need` bytes.
      const take = Math.min(this.need - this.small.length, chunk.length - at);
      const joined = new Uint8Array(this.small.length + take);
      joined.set(this.small, 0);
      joined.set(chunk.subarray(at, at + take), this.small.length);
      this.small = joined;
      at += take;
      if (this.small.length < this.need) continue;
      const field = this.small;
      const view = new DataView(field.buffer, field.byteOffset, field.byteLength);
      switch (this.part) {
        case Part.HeaderPrefix: {
          const len = view.getUint32(0);
          if (len === 0 || len > this.maxHeader) throw new FramingError(`snapshot message of ${len} bytes is empty or exceeds the limit of ${this.maxHeader}`);
          this.expect(Part.Header, len);
          break;
        }
        case Part.Header:
          this.expect(Part.DataPrefix, PREFIX);
          onHeader(field);
          break;
        case Part.DataPrefix: {
          const len = view.getUint32(0);
          if (len === 0) this.expect(Part.End, 8);
          else {
            this.part = Part.Data;
            this.frameLeft = len;
            this.small = new Uint8Array(0);
          }
          break;
        }
        case Part.End: {
          const total = view.getBigUint64(0);
          if (total !== BigInt(this.dataBytes)) throw new FramingError(`snapshot end mark says ${total} bytes, received ${this.dataBytes}`);
          this.part = Part.Done;
          this.small = new Uint8Array(0);
          break;
        }
      }
    }
  }

  private expect(part: Part, need: number): void {
    this.part = part;
    this.need = need;
    this.small = new Uint8Array(0);
  }
}
