// A FIFO of encoded messages bounded by count and by bytes.
import type { Message } from "../raft/types.js";

export interface Queued {
  m: Message;
  bytes: Uint8Array;
}

export class SendQueue {
  private items: Queued[] = [];
  private head = 0;
  private size = 0;

  constructor(
    private readonly maxCount: number,
    private readonly maxBytes: number,
  ) {}

  get length(): number {
    return this.items.length - this.head;
  }

  get bytes(): number {
    return this.size;
  }

  /** False (and nothing queued) when the item would break either bound. */
  push(item: Queued): boolean {
    if (this.length >= this.maxCount) return false;
    if (this.size + item.bytes.length > this.maxBytes && this.length > 0) return false;
    if (item.bytes.length > this.maxBytes) return false;
    this.items.push(item);
    this.size += item.bytes.length;
    return true;
  }

  /** Removes and returns up to `maxBytes` worth of items (at least one if any). */
  take(maxBytes: number): Queued[] {
    const out: Queued[] = [];
    let bytes = 0;
    while (this.head < this.items.length) {
      const it = this.items[this.head];
      if (out.length > 0 && bytes + it.bytes.length > maxBytes) break;
      out.push(it);
      bytes += it.bytes.length;
      this.size -= it.bytes.length;
      this.items[this.head++] = undefined as unknown as Queued;
    }
    if (this.head === this.items.length) {
      this.items = [];
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return out;
  }

  clear(): Queued[] {
    return this.take(Infinity);
  }
}
