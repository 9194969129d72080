// Peer-port requests outside the Raft protocol: etcd's peer handler also serves GET /members
// (a joining member reads the cluster from it) and POST /members/promote/<id> (a follower
// forwards a learner promotion to the leader). Such requests skip the /raft/* admission
// (a joining member does not know the cluster id yet) and go to the member's onPeerRequest
// handler, which sees the headers and decides. Both directions are bounded in size and time.
//
// Server side: servePeerRequest (called by inbound.ts for every path not under /raft/).
// Client side: peerRequest, URLs tried in turn, on one short-lived connection per attempt or, for
// frequent requests (forwarded lease keep-alives), on a pooled connection (PeerSessionPool).
import { constants, type ClientHttp2Session } from "node:http2";
import { dial } from "./dial.js";
import { errorText, type Env } from "./env.js";
import { closeStream, refuse, type InboundStream } from "./inbound-stream.js";
import { H_CLUSTER, idToHex } from "./protocol.js";
import type { PeerRequest, PeerTlsOptions } from "./types.js";

/** A peer that has not finished sending its (small) body by then is answered 408. */
const REQUEST_READ_TIMEOUT_MS = 10_000;

/** Response headers a handler may not set (HTTP/2 forbids connection-specific ones). */
const FORBIDDEN_RESPONSE_HEADERS = new Set(["connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "content-length"]);

function toBytes(b: Uint8Array | string): Uint8Array {
  return typeof b === "string" ? new TextEncoder().encode(b) : b;
}

/** Serves one non-Raft request on the peer port. Never throws. */
export function servePeerRequest(env: Env, stream: InboundStream, headers: Record<string, unknown>): void {
  const method = String(headers[":method"] ?? "");
  const full = String(headers[":path"] ?? "/");
  const q = full.indexOf("?");
  const path = q >= 0 ? full.slice(0, q) : full;
  const query = q >= 0 ? full.slice(q + 1) : "";
  const handler = env.handlers.onPeerRequest;
  if (handler === undefined) {
    refuse(env, stream, 404, "404 page not found");
    return;
  }
  if (method !== "GET" && method !== "POST") {
    refuse(env, stream, 405, "Method Not Allowed");
    return;
  }
  const max = env.limits.maxPeerRequestBytes;
  let done = false;
  const tooLarge = () => {
    env.log.warn("refused peer request: body too large", { path, limit: max });
    refuse(env, stream, 413, "request body too large");
    // Stop the rest of the body from coming; the answer went out first.
    setTimeout(() => closeStream(stream, constants.NGHTTP2_CANCEL), 50).unref?.();
  };
  const declared = Number(headers["content-length"]);
  if (Number.isFinite(declared) && declared > max) {
    done = true;
    tooLarge();
    return;
  }
  const plain: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers)) {
    if (k.startsWith(":")) continue;
    plain[k.toLowerCase()] = Array.isArray(v) ? v.join(", ") : String(v);
  }
  const chunks: Uint8Array[] = [];
  let size = 0;
  const timer = setTimeout(() => {
    if (done) return;
    done = true;
    refuse(env, stream, 408, "request body not received in time");
    setTimeout(() => closeStream(stream, constants.NGHTTP2_CANCEL), 50).unref?.();
  }, REQUEST_READ_TIMEOUT_MS);
  stream.on("data", (chunk: Uint8Array) => {
    if (done) return;
    size += chunk.length;
    if (size > max) {
      done = true;
      clearTimeout(timer);
      tooLarge();
      return;
    }
    chunks.push(chunk);
  });
  stream.on("close", () => {
    done = true;
    clearTimeout(timer);
  });
  stream.on("end", () => {
    if (done) return;
    done = true;
    clearTimeout(timer);
    const body = Buffer.concat(chunks);
    void answer(env, stream, handler, { method, path, query, headers: plain, body: new Uint8Array(body.buffer, body.byteOffset, body.byteLength) });
  });
}

async function answer(env: Env, stream: InboundStream, handler: NonNullable<Env["handlers"]["onPeerRequest"]>, req: PeerRequest): Promise<void> {
  let status: number;
  let headers: Record<string, string>;
  let body: Uint8Array;
  try {
    const res = await handler(req);
    status = res.status;
    headers = res.headers ?? {};
    body = toBytes(res.body);
    if (!Number.isInteger(status) || status < 200 || status > 599) throw new Error(`invalid status ${status}`);
    if (body.length > env.limits.maxPeerResponseBytes) {
      throw new Error(`response of ${body.length} bytes exceeds the limit of ${env.limits.maxPeerResponseBytes}`);
    }
  } catch (err) {
    env.log.error("peer request handler failed", { method: req.method, path: req.path, error: errorText(err) });
    refuse(env, stream, 500, errorText(err));
    return;
  }
  if (stream.destroyed) return;
  const out: Record<string, string | number> = { [H_CLUSTER]: idToHex(env.clusterId) };
  for (const [k, v] of Object.entries(headers)) {
    const name = k.toLowerCase();
    if (name.startsWith(":") || FORBIDDEN_RESPONSE_HEADERS.has(name)) continue;
    out[name] = v;
  }
  out[":status"] = status;
  out["content-length"] = body.length;
  try {
    stream.respond(out);
    stream.end(body);
  } catch (err) {
    env.log.debug("failed to answer peer request", { path: req.path, error: errorText(err) });
    closeStream(stream, constants.NGHTTP2_INTERNAL_ERROR);
  }
}

export interface PeerRequestOptions {
  /** GET (default) or POST. */
  method?: string;
  body?: Uint8Array | string;
  headers?: Record<string, string>;
  /** Client TLS for https:// URLs (PeerTlsOptions.client). */
  tls?: PeerTlsOptions["client"];
  /** Per URL: connecting, sending and reading the whole answer. */
  timeoutMs: number;
  /** Largest answer body read (default 16 MiB); a bigger one fails that URL. */
  maxResponseBytes?: number;
  /** Reuse connections from this pool instead of opening one per request. */
  pool?: PeerSessionPool;
}

/**
 * Open connections to peers, one per origin, reused across requests: a follower forwards every
 * lease keep-alive to the leader, and a connection per request cost 3x etcd's time per
 * keep-alive. A connection that fails or closes is forgotten; the next request dials again.
 */
export class PeerSessionPool {
  private readonly sessions = new Map<string, Promise<ClientHttp2Session>>();
  private closed = false;

  /** At most this many origins are kept (the leader, plus one or two former leaders). */
  constructor(private readonly maxOrigins = 8) {}

  get(origin: string, tls: PeerTlsOptions["client"], timeoutMs: number): Promise<ClientHttp2Session> {
    if (this.closed) return Promise.reject(new Error("peer session pool closed"));
    const have = this.sessions.get(origin);
    if (have !== undefined) return have;
    if (this.sessions.size >= this.maxOrigins) {
      const [oldest, p] = this.sessions.entries().next().value!;
      this.sessions.delete(oldest);
      p.then(
        (s) => s.close(),
        () => {},
      );
    }
    const p = dial(origin, tls, timeoutMs);
    this.sessions.set(origin, p);
    const forget = () => {
      if (this.sessions.get(origin) === p) this.sessions.delete(origin);
    };
    p.then((s) => {
      if (this.closed) s.close();
      s.on("error", forget);
      s.once("close", forget);
      s.once("goaway", forget);
    }, forget);
    return p;
  }

  /** Forgets (and closes) `origin`'s connection if it is still `session`. */
  drop(origin: string, session: ClientHttp2Session): void {
    const p = this.sessions.get(origin);
    if (p === undefined) return;
    void p.then(
      (s) => {
        if (s !== session) return;
        if (this.sessions.get(origin) === p) this.sessions.delete(origin);
        s.destroy();
      },
      () => {},
    );
  }

  close(): void {
    this.closed = true;
    for (const p of this.sessions.values())
      p.then(
        (s) => s.close(),
        () => {},
      );
    this.sessions.clear();
  }
}

export interface PeerReply {
  /** The URL that answered. */
  url: string;
  status: number;
  /** Lower-case names, pseudo-headers left out. */
  headers: Record<string, string>;
  body: Uint8Array;
}

/** Every URL failed; `errors` has each one's reason, in the order tried. */
export class PeerRequestError extends Error {
  constructor(
    readonly method: string,
    readonly path: string,
    readonly errors: Array<{ url: string; error: Error }>,
  ) {
    super(
      errors.length === 0
        ? `${method} ${path}: no peer URLs given`
        : `${method} ${path} failed on every peer URL: ` + errors.map((e) => `${e.url}: ${e.error.message}`).join("; "),
    );
    this.name = "PeerRequestError";
  }
}

/**
 * Sends one request to the first of `urls` that answers (any HTTP status counts as an answer;
 * only connection failures, timeouts and oversized answers move on to the next URL), on a
 * connection of its own that is closed afterwards. Throws PeerRequestError when none answered.
 */
export async function peerRequest(urls: string[], path: string, opts: PeerRequestOptions): Promise<PeerReply> {
  const method = (opts.method ?? "GET").toUpperCase();
  const errors: Array<{ url: string; error: Error }> = [];
  for (const url of urls) {
    try {
      return await requestOnce(url, path, method, opts);
    } catch (err) {
      errors.push({ url, error: err instanceof Error ? err : new Error(String(err)) });
    }
  }
  throw new PeerRequestError(method, path, errors);
}

function requestOnce(url: string, path: string, method: string, opts: PeerRequestOptions): Promise<PeerReply> {
  const u = new URL(url);
  if (u.protocol !== "http:" && u.protocol !== "https:") return Promise.reject(new Error(`unsupported peer URL scheme in ${url}`));
  const max = opts.maxResponseBytes ?? 16 * 1024 * 1024;
  const body = opts.body === undefined ? undefined : toBytes(opts.body);
  return new Promise<PeerReply>((resolve, reject) => {
    let session: ClientHttp2Session | undefined;
    let settled = false;
    const pooled = opts.pool !== undefined;
    let active: { close(code?: number): void } | undefined;
    const finish = (err: Error | null, reply?: PeerReply) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (pooled && err !== null) {
        active?.close(constants.NGHTTP2_CANCEL);
        // The connection may be half-open (a timeout): the next request dials afresh.
        if (session !== undefined) opts.pool!.drop(u.origin, session);
      }
      // A pooled connection outlives the request; a failed stream on it is closed by its own events.
      if (session !== undefined && !pooled) {
        // A clean close when answered; otherwise nothing more is wanted from this connection.
        if (err === null) session.close();
        else session.destroy();
      }
      if (err !== null) reject(err);
      else resolve(reply!);
    };
    const timer = setTimeout(() => finish(new Error(`request timed out after ${opts.timeoutMs} ms`)), opts.timeoutMs);
    const connecting = pooled ? opts.pool!.get(u.origin, opts.tls, opts.timeoutMs) : dial(u.origin, opts.tls, opts.timeoutMs);
    connecting.then(
      (s) => {
        if (settled) {
          if (!pooled) s.destroy();
          return;
        }
        session = s;
        if (!pooled) {
          s.on("error", (err) => finish(err));
          s.on("close", () => finish(new Error(`connection to ${url} closed before the answer was complete`)));
        }
        const headers: Record<string, string | number> = { ...lower(opts.headers ?? {}), ":method": method, ":path": path };
        if (body !== undefined) headers["content-length"] = body.length;
        let req;
        try {
          req = s.request(headers, { endStream: body === undefined });
          active = req;
        } catch (err) {
          finish(err instanceof Error ? err : new Error(String(err)));
          return;
        }
        let status = 0;
        let resHeaders: Record<string, string> = {};
        const chunks: Buffer[] = [];
        let size = 0;
        req.on("response", (h: Record<string, unknown>) => {
          status = Number(h[":status"]);
          resHeaders = {};
          for (const [k, v] of Object.entries(h)) if (!k.startsWith(":")) resHeaders[k] = Array.isArray(v) ? v.join(", ") : String(v);
          const declared = Number(resHeaders["content-length"]);
          if (Number.isFinite(declared) && declared > max) finish(new Error(`answer of ${declared} bytes exceeds the limit of ${max}`));
        });
        req.on("data", (c: Buffer) => {
          size += c.length;
          if (size > max) {
            finish(new Error(`answer exceeds the limit of ${max} bytes`));
            return;
          }
          chunks.push(c);
        });
        req.on("end", () => {
          if (status === 0) {
            finish(new Error(`connection to ${url} ended without an answer`));
            return;
          }
          const b = Buffer.concat(chunks);
          finish(null, { url, status, headers: resHeaders, body: new Uint8Array(b.buffer, b.byteOffset, b.byteLength) });
        });
        req.on("error", (err: Error) => finish(err));
        req.on("close", () => {
          if (!settled) finish(new Error(`stream closed before the answer was complete (code ${req.rstCode ?? "?"})`));
        });
        if (body !== undefined) req.end(body);
      },
      (err) => finish(err instanceof Error ? err : new Error(String(err))),
    );
  });
}

function lower(h: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(h)) out[k.toLowerCase()] = v;
  return out;
}
