// Safe ReadIndex bookkeeping on the leader: a read recorded at commit index c
// may be served once a quorum acknowledged a heartbeat carrying its context,
// proving no newer leader existed when the read arrived.
import { type Message, type NodeId } from "./types.ts";

export interface ReadIndexStatus {
  /** The leader's commit index when the request arrived. */
  index: number;
  /** The original request (its `from` says who gets the answer). */
  req: Message;
  acks: Set<NodeId>;
}

export function ctxKey(ctx: Uint8Array): string {
  let s = "";
  for (const b of ctx) s += b.toString(16).padStart(2, "0");
  return s;
}

export class ReadOnly {
  private pending = new Map<string, ReadIndexStatus>();
  private queue: string[] = [];

  /** Record a request; a duplicate context keeps the first one (it is answered together). */
  add(index: number, req: Message): void {
    const k = ctxKey(req.context);
    if (this.pending.has(k)) return;
    this.pending.set(k, { index, req, acks: new Set() });
    this.queue.push(k);
  }

  /** Record an ack for ctx; returns the acking ids so far (empty if unknown ctx). */
  recvAck(from: NodeId, ctx: Uint8Array): Set<NodeId> {
    const st = this.pending.get(ctxKey(ctx));
    if (!st) return new Set();
    st.acks.add(from);
    return st.acks;
  }

  /**
   * A quorum acked ctx: it and every request queued before it are confirmed
   * (the heartbeat that confirmed ctx was sent after theirs were recorded).
   */
  advance(ctx: Uint8Array): ReadIndexStatus[] {
    const k = ctxKey(ctx);
    const at = this.queue.indexOf(k);
    if (at < 0) return [];
    const done = this.queue.slice(0, at + 1);
    this.queue = this.queue.slice(at + 1);
    const out: ReadIndexStatus[] = [];
    for (const d of done) {
      const st = this.pending.get(d);
      if (st) out.push(st);
      this.pending.delete(d);
    }
    return out;
  }

  lastPendingContext(): Uint8Array | undefined {
    const k = this.queue[this.queue.length - 1];
    return k === undefined ? undefined : this.pending.get(k)?.req.context;
  }

  size(): number {
    return this.queue.length;
  }
}
