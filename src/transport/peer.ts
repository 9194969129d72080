// Everything this member sends to one peer: the message stream and the
// snapshots in flight, sharing the peer's URL list.
import { MessageType, type Message, type NodeId } from "../raft/types.js";
import { UrlPicker, type Env } from "./env.js";
import { SnapshotSender } from "./snapshot-sender.js";
import { StreamWriter } from "./stream-writer.js";

export class Peer {
  private readonly urls: UrlPicker;
  private readonly writer: StreamWriter;
  private readonly snapshots = new Set<SnapshotSender>();
  private stopped = false;

  constructor(
    private readonly env: Env,
    readonly id: NodeId,
    urls: string[],
  ) {
    this.urls = new UrlPicker(urls);
    this.writer = new StreamWriter(env, id, this.urls);
    this.writer.open();
  }

  get isActive(): boolean {
    return this.writer.isActive;
  }

  flushNow(): void {
    this.writer.flushNow();
  }

  /** Date.now() since the stream to this peer is active; 0 while it is not. */
  get activeSince(): number {
    return this.writer.activeSince;
  }

  send(m: Message): void {
    if (this.stopped) return;
    if (m.type === MessageType.Snap) this.sendSnapshot(m);
    else this.writer.send(m);
  }

  updateUrls(urls: string[]): void {
    this.urls.update(urls);
    this.writer.urlsChanged();
  }

  private sendSnapshot(m: Message): void {
    const sender = new SnapshotSender(this.env, this.id, this.urls, m);
    this.snapshots.add(sender);
    void sender.run().then((ok) => {
      this.snapshots.delete(sender);
      if (this.stopped) return;
      if (!ok) this.env.handlers.onUnreachable?.(this.id);
      this.env.handlers.onSnapshotStatus?.(this.id, ok);
    });
  }

  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.writer.stop();
    for (const s of this.snapshots) s.abort();
  }
}
