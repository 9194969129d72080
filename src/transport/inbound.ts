// The receiving side of the peer protocol, for one HTTP/2 stream: check the
// headers (cluster, sender, target), then either deliver framed messages in
// order (/raft/stream) or hand the stream to the snapshot receiver. A bad
// stream is closed with a log line; nothing a peer sends can throw out of here.
import type { NodeId } from "../raft/types.js";
import { errorText, RateLimitedLog, type Env } from "./env.js";
import { FrameDecoder } from "./framing.js";
import { closeStream, refuse, type InboundEnv, type InboundStream } from "./inbound-stream.js";
import { admit, H_CLUSTER, H_PEER_URLS, idToHex, parsePeerUrls, SNAPSHOT_PATH, STREAM_PATH } from "./protocol.js";
import { servePeerRequest } from "./peer-request.js";
import { receiveSnapshot } from "./snapshot-receiver.js";

export function handleInbound(env: InboundEnv, stream: InboundStream, headers: Record<string, unknown>): void {
  stream.on("error", () => {});
  const path = headers[":path"];
  if (path !== STREAM_PATH && path !== SNAPSHOT_PATH) {
    // Raft traffic lives under /raft/; anything else is the member's (GET /members, ...),
    // answered without the cluster-id admission a joining member could not pass.
    if (typeof path === "string" && !path.startsWith("/raft/") && path !== "/raft") servePeerRequest(env, stream, headers);
    else refuse(env, stream, 404, "invalid path");
    return;
  }
  const verdict = admit(headers, { id: env.localId, clusterId: env.clusterId, isRemoved: env.handlers.isRemoved });
  if (!verdict.ok) {
    env.log.warn(verdict.log, { ...verdict.fields, path, status: verdict.status });
    refuse(env, stream, verdict.status, verdict.reason);
    return;
  }
  if (path === SNAPSHOT_PATH) {
    const slots = env.snapshotsInFlight;
    if (slots.running.size >= slots.max) {
      env.log.warn("refused snapshot: too many snapshots being received", { "remote-peer-id": idToHex(verdict.from), limit: slots.max });
      refuse(env, stream, 503, "too many snapshots in flight");
      return;
    }
    const run: Promise<void> = receiveSnapshot(env, stream, verdict.from)
      .catch((err) => env.log.error("snapshot receiver failed", { error: errorText(err) }))
      .finally(() => slots.running.delete(run));
    slots.running.add(run);
    return;
  }
  const urls = parsePeerUrls(headers[H_PEER_URLS]);
  if (urls.length > 0) env.handlers.onPeerUrls?.(verdict.from, urls);
  serveMessageStream(env, stream, verdict.from);
}

function serveMessageStream(env: Env, stream: InboundStream, from: NodeId): void {
  try {
    stream.respond({ ":status": 200, [H_CLUSTER]: idToHex(env.clusterId) });
  } catch {
    return;
  }
  env.log.debug("established a stream from remote peer", { "local-member-id": idToHex(env.localId), "remote-peer-id": idToHex(from) });
  const decoder = new FrameDecoder(env.limits.maxMessageBytes);
  const misaddressed = new RateLimitedLog(1000);
  let broken = false;
  const deliver = (payload: Uint8Array) => {
    const m = env.codec.decode(payload);
    if (m.to !== env.localId || m.from !== from) {
      misaddressed.hit((n) =>
        env.log.warn("ignored peer message addressed to another member", {
          "local-member-id": idToHex(env.localId),
          "remote-peer-id": idToHex(from),
          "message-from": idToHex(m.from),
          "message-to": idToHex(m.to),
          suppressed: n,
        }),
      );
      return;
    }
    try {
      env.handlers.onMessage(m);
    } catch (err) {
      // The member's bug, not the peer's: keep the stream.
      env.log.error("peer message handler failed", { "remote-peer-id": idToHex(from), "message-type": m.type, error: errorText(err) });
    }
  };
  stream.on("data", (chunk: Uint8Array) => {
    if (broken) return;
    try {
      decoder.push(chunk, deliver);
    } catch (err) {
      broken = true;
      env.log.warn("closed malformed stream from remote peer", {
        "local-member-id": idToHex(env.localId),
        "remote-peer-id": idToHex(from),
        error: errorText(err),
      });
      closeStream(stream);
    }
  });
  stream.on("close", () => {
    env.log.debug("stream from remote peer closed", { "remote-peer-id": idToHex(from), "buffered-bytes": decoder.buffered });
  });
}
