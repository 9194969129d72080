// The peer transport: Raft messages and snapshots between cluster members over
// HTTP/2 on the peer port (our own protocol, see protocol.ts).
//
// Which HTTP/2: Bun's node:http2 on both sides. Measured on this machine (Bun 1.4.5,
// node:http2 client sending framed messages on one long-lived stream to three servers):
//   bulk 64-byte frames:   node:http2 server 435 MB/s, our src/api/h2 on node:net 522 MB/s,
//                          on Bun.listen 510 MB/s;
//   bulk 16 KiB frames:    1266 / 1162 / 1252 MB/s;
//   40-byte ping-pong:     14.5 / 15.6-17.3 / 14.9-15.1 us per round trip (~21 us CPU each).
// The client side is node:http2 either way (src/api/h2 is server-only) and dominates, and our
// server's advantage is per-stream cost, which a transport with one stream per peer does not
// pay. So the differences are noise, and node:http2 wins on what remains: one API for both
// ends, TLS with ALPN and client-certificate checks built in (createSecureServer), and one
// less coupling to the client port's server. (One Bun bug found on the way, see server.ts:
// session.setLocalWindowSize() on a server session stalls every stream after its first window.)
//
// Layout: types.ts (options, handlers, limits), protocol.ts (paths, headers, admission),
// framing.ts, snapshot-body.ts, queue.ts, backoff.ts, env.ts (shared context, URL picker),
// dial.ts, stream-writer.ts (outbound message stream per peer), snapshot-sender.ts, peer.ts,
// server.ts + inbound.ts + snapshot-receiver.ts (inbound), this file (the facade).
import { mkdirSync } from "node:fs";
import { log as defaultLog } from "../log.js";
import type { Message, NodeId } from "../raft/types.js";
import type { Env } from "./env.js";
import type { InboundEnv } from "./inbound-stream.js";
import { Peer } from "./peer.js";
import { idToHex } from "./protocol.js";
import { PeerServer } from "./server.js";
import { DEFAULT_LIMITS, type TransportLimits, type TransportOptions } from "./types.js";

export * from "./types.js";
export { peerRequest, PeerRequestError, PeerSessionPool, type PeerReply, type PeerRequestOptions } from "./peer-request.js";

/** Snapshots received at once, across all peers. */
const MAX_INBOUND_SNAPSHOTS = 4;

export class Transport {
  readonly limits: TransportLimits;
  private readonly env: InboundEnv;
  private readonly peers = new Map<NodeId, Peer>();
  private server: PeerServer | null = null;
  private stopped = false;

  constructor(private readonly opts: TransportOptions) {
    this.limits = { ...DEFAULT_LIMITS, ...opts.limits };
    const env: Env = {
      localId: opts.id,
      clusterId: opts.clusterId,
      codec: opts.codec,
      limits: this.limits,
      log: opts.logger ?? defaultLog,
      // Handlers are read through opts so a member may set them after construction.
      handlers: opts,
      clientTls: opts.tls?.client,
      random: opts.random ?? Math.random,
      advertiseUrls: opts.advertiseUrls ?? [],
    };
    this.env = { ...env, snapshotDir: opts.snapshotDir, snapshotsInFlight: { running: new Set(), max: MAX_INBOUND_SNAPSHOTS } };
  }

  /** Listens on the peer URLs. Rejects (listening on none) if any cannot be bound. */
  async start(): Promise<void> {
    if (this.server !== null) throw new Error("transport already started");
    mkdirSync(this.opts.snapshotDir, { recursive: true, mode: 0o700 });
    const server = new PeerServer(this.env, this.opts.tls);
    await server.listen(this.opts.listenUrls);
    this.server = server;
  }

  /** The bound port of each listener (useful when a URL asked for port 0). */
  ports(): number[] {
    return this.server?.addresses().map((a) => a.port) ?? [];
  }

  addPeer(id: NodeId, urls: string[]): void {
    if (this.stopped || id === this.opts.id) return;
    if (this.peers.has(id)) {
      this.updatePeer(id, urls);
      return;
    }
    this.peers.set(id, new Peer(this.env, id, urls));
    this.env.log.info("added remote peer", { "local-member-id": idToHex(this.opts.id), "remote-peer-id": idToHex(id), "remote-peer-urls": urls });
  }

  updatePeer(id: NodeId, urls: string[]): void {
    const p = this.peers.get(id);
    if (p === undefined) return;
    p.updateUrls(urls);
    this.env.log.info("updated remote peer", { "local-member-id": idToHex(this.opts.id), "remote-peer-id": idToHex(id), "remote-peer-urls": urls });
  }

  removePeer(id: NodeId): void {
    const p = this.peers.get(id);
    if (p === undefined) return;
    this.peers.delete(id);
    p.stop();
    this.env.log.info("removed remote peer", { "local-member-id": idToHex(this.opts.id), "remote-peer-id": idToHex(id) });
  }

  hasPeer(id: NodeId): boolean {
    return this.peers.has(id);
  }

  /** Whether the message stream to `id` is up (the peer accepted it). */
  isActive(id: NodeId): boolean {
    return this.peers.get(id)?.isActive ?? false;
  }

  /** Date.now() since the stream to `id` is active; 0 when it is not (etcd's ActiveSince, for health rules). */
  activeSince(id: NodeId): number {
    return this.peers.get(id)?.activeSince ?? 0;
  }

  /** Queues messages for their peers. Never blocks; never throws for network reasons. */
  send(msgs: readonly Message[]): void {
    if (this.stopped) return;
    for (const m of msgs) {
      const p = this.peers.get(m.to);
      if (p === undefined) {
        if (m.to !== this.opts.id) {
          this.env.log.debug("ignored message send request; unknown remote peer target", { "message-type": m.type, "unknown-target-peer-id": idToHex(m.to) });
        }
        continue;
      }
      try {
        p.send(m);
      } catch (err) {
        // Only the codec can throw here (a member bug): the member's loop must go on.
        this.env.log.error("failed to encode Raft message for peer", { "message-type": m.type, "remote-peer-id": idToHex(m.to), error: String(err) });
        this.opts.onUnreachable?.(m.to);
      }
    }
  }

  /**
   * Hands what send() queued to the connections now rather than at the end of the event-loop
   * turn: a leader calls it before its own fsync, so followers write in parallel with it.
   */
  flush(): void {
    for (const p of this.peers.values()) p.flushNow();
  }

  /** Closes every stream, connection and listener; bounded by limits.stopTimeoutMs. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    for (const p of this.peers.values()) p.stop();
    this.peers.clear();
    const server = this.server;
    this.server = null;
    if (server === null) return;
    const deadline = performance.now() + this.limits.stopTimeoutMs;
    await server.close(this.limits.stopTimeoutMs);
    // Snapshots being received fail now; let them remove their temporary files.
    const left = Math.max(0, deadline - performance.now());
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([Promise.all(this.env.snapshotsInFlight.running), new Promise<void>((r) => (timer = setTimeout(r, left)))]);
    clearTimeout(timer);
  }
}
