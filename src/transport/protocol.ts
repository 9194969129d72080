// Our peer protocol on HTTP/2, in one place. Two kinds of request, both POST:
//   /raft/stream    one long-lived stream per (sender, receiver) pair; the body is a sequence of
//                   frames, each a 4-byte big-endian length then one encoded message. The
//                   receiver answers 200 at once and never ends it; the sender never ends it
//                   either: the stream lives until the connection does.
//   /raft/snapshot  one request per Snap message: one frame (the encoded message), then the
//                   snapshot's data bytes until END_STREAM. 200 once the file is durable and
//                   the member took it.
// Every request names the cluster and both members; the receiver refuses a stream that is not
// for it before reading a byte of the body.
import type { NodeId } from "../raft/types.js";

export const STREAM_PATH = "/raft/stream";
export const SNAPSHOT_PATH = "/raft/snapshot";

export const H_CLUSTER = "x-tsetcd-cluster-id";
export const H_FROM = "x-tsetcd-from";
export const H_TO = "x-tsetcd-to";
export const H_PROTOCOL = "x-tsetcd-peer-protocol";
/** The sender's advertised peer URLs, comma-separated: a receiver that does not know the sender yet can answer it. */
export const H_PEER_URLS = "x-tsetcd-peer-urls";
/** At most this many URLs, each at most this long, are taken from H_PEER_URLS. */
const MAX_PEER_URLS = 8;
const MAX_PEER_URL_LENGTH = 512;
export const PROTOCOL_VERSION = "1";

/** Ids on the wire are lower-case hex, as etcd prints them. */
export function idToHex(id: bigint): string {
  return id.toString(16);
}

/** The id in a header, or undefined when it is missing or not a 64-bit hex number. */
export function parseHexId(v: unknown): bigint | undefined {
  if (typeof v !== "string" || !/^[0-9a-f]{1,16}$/i.test(v)) return undefined;
  return BigInt("0x" + v);
}

export function requestHeaders(path: string, clusterId: bigint, from: NodeId, to: NodeId, fromUrls: readonly string[] = []): Record<string, string> {
  const h: Record<string, string> = {
    ":method": "POST",
    ":path": path,
    "content-type": "application/octet-stream",
    [H_CLUSTER]: idToHex(clusterId),
    [H_FROM]: idToHex(from),
    [H_TO]: idToHex(to),
    [H_PROTOCOL]: PROTOCOL_VERSION,
  };
  if (fromUrls.length > 0) h[H_PEER_URLS] = fromUrls.join(",");
  return h;
}

/** The sender's peer URLs from H_PEER_URLS: http(s) URLs only, bounded; [] when absent or unusable. */
export function parsePeerUrls(v: unknown): string[] {
  if (typeof v !== "string" || v.length > MAX_PEER_URLS * (MAX_PEER_URL_LENGTH + 1)) return [];
  const urls = v.split(",").slice(0, MAX_PEER_URLS);
  const ok = (u: string) => u.length <= MAX_PEER_URL_LENGTH && URL.canParse(u) && /^https?:$/.test(new URL(u).protocol);
  return urls.every(ok) ? urls : [];
}

export type Admission = { ok: true; from: NodeId } | { ok: false; status: number; reason: string; log: string; fields: Record<string, unknown> };

/**
 * Decides whether an inbound request may proceed, from its headers alone.
 * 412 for another cluster or another member, 410 for a removed sender, 400 for nonsense.
 */
export function admit(headers: Record<string, unknown>, local: { id: NodeId; clusterId: bigint; isRemoved?: (id: NodeId) => boolean }): Admission {
  const localFields = { "local-member-id": idToHex(local.id), "local-member-cluster-id": idToHex(local.clusterId) };
  if (headers[":method"] !== "POST") {
    return {
      ok: false,
      status: 405,
      reason: "method not allowed",
      log: "ignored peer request with wrong method",
      fields: { ...localFields, method: headers[":method"] },
    };
  }
  if (headers[H_PROTOCOL] !== PROTOCOL_VERSION) {
    return {
      ok: false,
      status: 412,
      reason: "incompatible peer protocol",
      log: "rejected peer request with incompatible protocol version",
      fields: { ...localFields, "remote-peer-protocol": headers[H_PROTOCOL] },
    };
  }
  const cluster = parseHexId(headers[H_CLUSTER]);
  if (cluster !== local.clusterId) {
    return {
      ok: false,
      status: 412,
      reason: "cluster ID mismatch",
      log: "request cluster ID mismatch",
      fields: { ...localFields, "remote-peer-cluster-id": String(headers[H_CLUSTER] ?? "") },
    };
  }
  const from = parseHexId(headers[H_FROM]);
  if (from === undefined || from === 0n) {
    return { ok: false, status: 400, reason: "invalid from", log: "failed to parse sender ID", fields: { ...localFields, from: headers[H_FROM] } };
  }
  if (local.isRemoved?.(from)) {
    return {
      ok: false,
      status: 410,
      reason: "removed member",
      log: "rejected stream from remote peer because it was removed",
      fields: { ...localFields, "remote-peer-id-from": idToHex(from) },
    };
  }
  const to = parseHexId(headers[H_TO]);
  if (to !== local.id) {
    return {
      ok: false,
      status: 412,
      reason: "to field mismatch",
      log: "ignored streaming request; ID mismatch",
      fields: { ...localFields, "remote-peer-id-header": String(headers[H_TO] ?? ""), "remote-peer-id-from": idToHex(from) },
    };
  }
  return { ok: true, from };
}
