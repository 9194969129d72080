// The transport's public shapes: the codec it is given, the member's handlers
// it calls, its limits and their defaults. No behaviour lives here.
import type { Message, NodeId } from "../raft/types.js";
import type { PeerTlsOptions } from "../tls/types.js";

// The peer TLS options are built by src/tls/ from etcd's flags; re-exported because they are
// part of the transport's options, so its users need not know where they are defined.
export type { PeerTlsOptions };

/** Turns a Raft message into bytes and back; the transport never looks inside. */
export interface Codec {
  encode(m: Message): Uint8Array;
  /** Throws on bytes that are not a message: the stream that sent them is closed. */
  decode(b: Uint8Array): Message;
}

/** The part of src/log.ts the transport uses (tests pass a recording one). */
export interface TransportLogger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

/** What the member is told, and what it supplies. Every callback is optional except onMessage. */
export interface TransportHandlers {
  /** A message from a peer, in the order that peer sent it. */
  onMessage(m: Message): void;
  /** A message to `peerId` could not be sent (not connected, queue full, stream failed). */
  onUnreachable?(peerId: NodeId): void;
  /** A Snap message to `peerId` finished: delivered and installed by the peer (true) or failed. */
  onSnapshotStatus?(peerId: NodeId, ok: boolean): void;
  /**
   * A snapshot from a peer is on disk at `dataFile` (fsynced, renamed into place; the member
   * owns the file from now on). The sender hears success once this returns (or resolves).
   */
  onSnapshot?(m: Message, dataFile: string): void | Promise<void>;
  /**
   * The bytes of an outgoing snapshot's state, streamed (they are not in m.snapshot.data for
   * big states). Without it only what the encoded message carries is sent.
   */
  openSnapshotData?(m: Message): AsyncIterable<Uint8Array>;
  /** Whether `peerId` was removed from the cluster: its streams are refused with 410. */
  isRemoved?(peerId: NodeId): boolean;
  /** Peer `peerId` refused us with 410: this member was removed from the cluster. */
  onPeerRemovedUs?(peerId: NodeId): void;
  /**
   * Any peer-port request outside /raft/* (GET or POST), e.g. GET /members for a joining member
   * or POST /members/promote/<id>. Not admitted by cluster id: the handler sees the headers and
   * decides. Bodies are bounded (limits.maxPeerRequestBytes, else 413). Without a handler, 404.
   * A handler that throws answers 500 with the error's message.
   */
  onPeerRequest?(req: PeerRequest): Promise<PeerResponse> | PeerResponse;
  /**
   * A peer's message stream named its advertised peer URLs (once per stream): a member that does
   * not know that peer yet (its log has not brought it) can answer it.
   */
  onPeerUrls?(peerId: NodeId, urls: string[]): void;
}

/** A peer-port request outside the Raft protocol. */
export interface PeerRequest {
  method: string;
  /** The path without the query string, e.g. "/members". */
  path: string;
  /** The query string without "?" ("" when none). */
  query: string;
  /** Lower-case names; HTTP/2 pseudo-headers left out. */
  headers: Record<string, string>;
  body: Uint8Array;
}

export interface PeerResponse {
  status: number;
  headers?: Record<string, string>;
  body: Uint8Array | string;
}

export interface TransportLimits {
  /** Messages waiting for one peer before new ones are dropped. */
  maxQueueMessages: number;
  /** Encoded bytes waiting for one peer before new messages are dropped. */
  maxQueueBytes: number;
  /** Largest single encoded message accepted on an inbound stream (or sent). */
  maxMessageBytes: number;
  /** Largest snapshot data accepted (and sent). */
  maxSnapshotBytes: number;
  /** A snapshot transfer that makes no progress this long fails (both sides). */
  snapshotIdleTimeoutMs: number;
  /** Connecting to one URL gives up after this long. */
  dialTimeoutMs: number;
  /** Reconnect backoff bounds. */
  backoffMinMs: number;
  backoffMaxMs: number;
  /** Largest single write of snapshot data. */
  snapshotChunkBytes: number;
  /** stop() waits at most this long for connections to close before destroying them. */
  stopTimeoutMs: number;
  /** Largest body of a non-Raft peer request (onPeerRequest) accepted; larger ones get 413. */
  maxPeerRequestBytes: number;
  /** Largest body of a non-Raft peer response a handler may send (else 500) and peerRequest reads. */
  maxPeerResponseBytes: number;
}

export const DEFAULT_LIMITS: TransportLimits = {
  maxQueueMessages: 4096,
  maxQueueBytes: 64 * 1024 * 1024,
  maxMessageBytes: 64 * 1024 * 1024,
  maxSnapshotBytes: 8 * 1024 * 1024 * 1024,
  snapshotIdleTimeoutMs: 30_000,
  dialTimeoutMs: 3_000,
  backoffMinMs: 100,
  backoffMaxMs: 2_000,
  snapshotChunkBytes: 256 * 1024,
  stopTimeoutMs: 2_000,
  maxPeerRequestBytes: 64 * 1024,
  maxPeerResponseBytes: 16 * 1024 * 1024,
};

export interface TransportOptions extends TransportHandlers {
  /** This member's id. */
  id: NodeId;
  clusterId: bigint;
  codec: Codec;
  /** --listen-peer-urls: http:// or https:// (https needs tls.server). */
  listenUrls: string[];
  /** This member's advertised peer URLs, sent with each stream it opens (default: none sent). */
  advertiseUrls?: string[];
  /** Where received snapshot files are written (created if missing). */
  snapshotDir: string;
  tls?: PeerTlsOptions;
  logger?: TransportLogger;
  limits?: Partial<TransportLimits>;
  /** Source of backoff jitter in [0, 1) (default Math.random; tests inject a seeded one). */
  random?: () => number;
}
