// What every per-peer part needs from the transport, the peer's URL picker, and the helpers
// every part logs with.
import type { NodeId } from "../raft/types.js";
import type { Codec, PeerTlsOptions, TransportHandlers, TransportLimits, TransportLogger } from "./types.js";

export interface Env {
  localId: NodeId;
  clusterId: bigint;
  codec: Codec;
  limits: TransportLimits;
  log: TransportLogger;
  handlers: TransportHandlers;
  clientTls: PeerTlsOptions["client"];
  random: () => number;
  /** Sent with every stream this member opens (H_PEER_URLS). */
  advertiseUrls: readonly string[];
}

/** A peer's URLs, tried in turn: the current one until it fails, then the next. */
export class UrlPicker {
  private urls: string[];
  private index = 0;

  constructor(urls: string[]) {
    this.urls = [...urls];
  }

  update(urls: string[]): void {
    const current = this.current();
    this.urls = [...urls];
    const keep = this.urls.indexOf(current);
    this.index = keep >= 0 ? keep : 0;
  }

  current(): string {
    return this.urls[this.index % Math.max(1, this.urls.length)] ?? "";
  }

  /** `url` failed: move on, unless someone already did. */
  failed(url: string): void {
    if (this.current() === url && this.urls.length > 0) this.index = (this.index + 1) % this.urls.length;
  }

  get count(): number {
    return this.urls.length;
  }
}

/** Logs at most once per interval; counts what it held back. */
export class RateLimitedLog {
  private last = -Infinity;
  private suppressed = 0;

  constructor(private readonly intervalMs: number) {}

  /** Calls `emit` with the number suppressed since the last emission, or counts this one. */
  hit(emit: (suppressed: number) => void): void {
    const now = performance.now();
    if (now - this.last < this.intervalMs) {
      this.suppressed++;
      return;
    }
    this.last = now;
    const n = this.suppressed;
    this.suppressed = 0;
    emit(n);
  }
}

/** An error as one log field: its message, prefixed by its errno code when it has one (ECONNREFUSED: ...). */
export function errorText(err: unknown): string {
  if (err instanceof Error) return (err as NodeJS.ErrnoException).code ? `${(err as NodeJS.ErrnoException).code}: ${err.message}` : err.message;
  return String(err);
}
