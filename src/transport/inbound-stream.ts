// One inbound HTTP/2 stream as every receiving part sees it (the message stream, the snapshot
// receiver, the member's own requests), and the two ways to end one early. Kept out of
// inbound.ts, which routes each stream to one of those parts, so the parts need not import
// their router.
import { constants } from "node:http2";
import type { Env } from "./env.js";
import { H_CLUSTER, idToHex } from "./protocol.js";

/** The subset of node:http2's ServerHttp2Stream we use. */
export interface InboundStream {
  respond(headers: Record<string, string | number>, options?: { endStream?: boolean }): void;
  write(chunk: Uint8Array | string): boolean;
  end(chunk?: Uint8Array | string): unknown;
  close(code?: number): void;
  pause(): unknown;
  resume(): unknown;
  on(event: string, fn: (...args: any[]) => void): unknown;
  readonly destroyed: boolean;
  readonly headersSent: boolean;
}

export interface InboundEnv extends Env {
  snapshotDir: string;
  /** Snapshots being received right now (bounded); stop() waits for their cleanup. */
  snapshotsInFlight: { running: Set<Promise<void>>; max: number };
}

/** Answers a request with a status and a short text, then ends it. */
export function refuse(env: Env, stream: InboundStream, status: number, text: string): void {
  try {
    if (stream.destroyed) return;
    if (!stream.headersSent) {
      stream.respond({ ":status": status, "content-type": "text/plain; charset=utf-8", [H_CLUSTER]: idToHex(env.clusterId) });
    }
    stream.end(text + "\n");
  } catch {
    // The peer went away while we answered: nothing left to tell it.
  }
}

export function closeStream(stream: InboundStream, code: number = constants.NGHTTP2_PROTOCOL_ERROR): void {
  try {
    stream.close(code);
  } catch {}
}
