// The peer network as the member sees it: Raft messages and snapshots to and
// from its peers, and plain requests on their peer ports (forwarded lease
// calls, promotions). The real one is the HTTP/2 transport (src/transport);
// the simulator (src/server/sim/) puts a seeded network behind the same
// interface, so the whole member runs unchanged under simulation.
import type { Message, NodeId } from "../raft/types.js";
import { decodeMessage, encodeMessage } from "../transport/codec.js";
import { peerRequest, PeerSessionPool, Transport, type PeerTlsOptions, type TransportHandlers } from "../transport/transport.js";

/** A request to a peer's port besides Raft traffic. */
export interface PeerCall {
  method: "GET" | "POST";
  path: string;
  body?: Uint8Array;
  headers?: Record<string, string>;
  /** Per URL tried. */
  timeoutMs: number;
  /** Reuse a connection kept for the peer (forwarded keep-alives), instead of one per request. */
  pooled?: boolean;
}

export interface PeerAnswer {
  status: number;
  body: Uint8Array;
}

/** Sends `call` to the first of `urls` that answers (any HTTP status); rejects when none does. */
export type PeerCaller = (urls: string[], call: PeerCall) => Promise<PeerAnswer>;

export interface PeerNetwork {
  /** Listens for peers. */
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Queues messages for their peers; never blocks, never throws for network reasons. */
  send(msgs: readonly Message[]): void;
  /** Hands what send() queued to the connections now rather than at the end of the turn. */
  flush(): void;
  addPeer(id: NodeId, urls: string[]): void;
  removePeer(id: NodeId): void;
  /** Whether the message stream to `id` is up. */
  isActive(id: NodeId): boolean;
  /** Wall-clock ms since the stream to `id` is up; undefined when it is not. */
  activeSince(id: NodeId): number | undefined;
  request: PeerCaller;
}

/** What the member tells the network to call (the transport's handlers). */
export type NetworkHandlers = Required<
  Pick<
    TransportHandlers,
    "onMessage" | "onUnreachable" | "onSnapshotStatus" | "onSnapshot" | "openSnapshotData" | "isRemoved" | "onPeerRemovedUs" | "onPeerRequest" | "onPeerUrls"
  >
>;

/** Builds the member's network once the member knows its ids and handlers. */
export type NetworkFactory = (ids: { id: NodeId; clusterId: bigint }, handlers: NetworkHandlers) => PeerNetwork;

export interface TransportNetworkOptions {
  /** --listen-peer-urls. */
  listenUrls: string[];
  /** --initial-advertise-peer-urls: sent with each stream, so a peer that does not know this member yet can answer it. */
  advertiseUrls: string[];
  /** Where received snapshots are written. */
  snapshotDir: string;
  tls?: PeerTlsOptions;
}

/** The real network: the HTTP/2 peer transport, plus requests to peers' ports (pooled when asked). */
export function transportNetwork(opts: TransportNetworkOptions): NetworkFactory {
  return (ids, handlers) => {
    const transport = new Transport({ ...opts, ...ids, codec: { encode: encodeMessage, decode: (b) => decodeMessage(b) }, ...handlers });
    // Connections to the leader for forwarded requests (one per keep-alive would triple their cost).
    const pool = new PeerSessionPool();
    const request: PeerCaller = async (urls, call) => {
      const reply = await peerRequest(urls, call.path, {
        method: call.method,
        body: call.body,
        headers: call.headers,
        tls: opts.tls?.client,
        timeoutMs: call.timeoutMs,
        pool: call.pooled ? pool : undefined,
      });
      return { status: reply.status, body: reply.body };
    };
    return {
      start: () => transport.start(),
      stop: async () => {
        pool.close();
        await transport.stop();
      },
      send: (msgs) => transport.send(msgs),
      flush: () => transport.flush(),
      addPeer: (id, urls) => transport.addPeer(id, urls),
      removePeer: (id) => transport.removePeer(id),
      isActive: (id) => transport.isActive(id),
      activeSince: (id) => {
        const since = transport.activeSince(id);
        return since === 0 ? undefined : since;
      },
      request,
    };
  };
}
