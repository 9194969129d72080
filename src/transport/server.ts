// The peer port's listeners: node:http2 servers (h2c for http:// URLs, TLS
// with ALPN h2 for https://), every stream handed to handleInbound. Tracks
// sessions so stop() can end them.
import http2, { type Http2Server, type Http2SecureServer, type ServerHttp2Session } from "node:http2";
import type { TLSSocket } from "node:tls";
import { errorText } from "./env.js";
import { handleInbound } from "./inbound.js";
import type { InboundEnv, InboundStream } from "./inbound-stream.js";
import type { PeerTlsOptions } from "./types.js";
import { isUnixUrl, unixSocketPath } from "./urls.js";

/** Per-stream receive window: a peer's stream carries up to this much before we must read. */
const STREAM_WINDOW = 8 * 1024 * 1024;
/** Message stream + snapshots from one peer need few streams. */
const MAX_STREAMS = 32;

export class PeerServer {
  private readonly servers: Array<Http2Server | Http2SecureServer> = [];
  private readonly sessions = new Set<ServerHttp2Session>();

  constructor(
    private readonly env: InboundEnv,
    private readonly tlsOptions: PeerTlsOptions | undefined,
  ) {}

  private get tls(): PeerTlsOptions["server"] {
    return this.tlsOptions?.server;
  }

  /** Listens on every URL; rejects (having closed what it opened) if one fails. */
  async listen(urls: string[]): Promise<void> {
    try {
      for (const u of urls) await this.listenOne(u);
    } catch (err) {
      await this.close(0);
      throw err;
    }
  }

  /** Bound addresses, e.g. to learn port 0's choice. */
  addresses(): Array<{ address: string; port: number }> {
    const out: Array<{ address: string; port: number }> = [];
    for (const s of this.servers) {
      const a = s.address();
      if (a !== null && typeof a === "object") out.push({ address: a.address, port: a.port });
    }
    return out;
  }

  private listenOne(url: string): Promise<void> {
    const u = new URL(url);
    const settings = { initialWindowSize: STREAM_WINDOW, maxConcurrentStreams: MAX_STREAMS, enablePush: false };
    let server: Http2Server | Http2SecureServer;
    const secure = u.protocol === "https:" || u.protocol === "unixs:";
    if (secure) {
      if (!this.tls) throw new Error(`peer URL ${url} is ${u.protocol.slice(0, -1)} but no peer TLS certificate is configured`);
      server = http2.createSecureServer({ ...this.tls, settings, allowHTTP1: false, ALPNProtocols: ["h2"] });
    } else if (u.protocol === "http:" || u.protocol === "unix:") {
      server = http2.createServer({ settings });
    } else {
      throw new Error(`unsupported peer URL scheme in ${url}`);
    }
    server.on("session", (session: ServerHttp2Session) => this.track(session));
    const allowed = this.tlsOptions?.allowedCn?.filter((cn) => cn !== "") ?? [];
    if (secure && allowed.length > 0 && this.tls?.requestCert) {
      // --peer-cert-allowed-cn: the certificate was verified by the handshake; its CN must be listed.
      server.on("secureConnection", (socket: TLSSocket) => {
        let cn: unknown;
        try {
          cn = socket.getPeerCertificate()?.subject?.CN;
        } catch {}
        if (typeof cn === "string" && allowed.includes(cn)) return;
        this.env.log.warn("rejected peer connection: client certificate authentication failed", {
          "remote-addr": `${socket.remoteAddress}:${socket.remotePort}`,
          "client-cn": cn ?? "",
          "allowed-cn": allowed,
        });
        socket.destroy();
      });
    }
    server.on("stream", (stream, headers) => {
      try {
        handleInbound(this.env, stream as unknown as InboundStream, headers as Record<string, unknown>);
      } catch (err) {
        this.env.log.error("peer stream handler failed", { error: errorText(err) });
        try {
          stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
        } catch {}
      }
    });
    // TLS handshakes that fail (plain HTTP to an https port, a client without a certificate).
    server.on("tlsClientError", (err: Error) => this.env.log.debug("peer TLS handshake failed", { error: errorText(err) }));
    server.on("sessionError", (err: Error) => this.env.log.debug("peer session error", { error: errorText(err) }));
    server.on("error", (err: Error) => this.env.log.warn("peer listener error", { error: errorText(err) }));
    this.servers.push(server);
    const host = u.hostname.replace(/^\[|\]$/g, "");
    const port = Number(u.port || 2380);
    // etcd's unix:// and unixs:// URLs name a socket file by the URL's host[:port] ("unix://etcd.unix:1").
    const where = isUnixUrl(u) ? { path: unixSocketPath(u) } : { host, port, exclusive: true };
    return new Promise((resolve, reject) => {
      server.once("error", reject);
      server.listen(where, () => {
        server.off("error", reject);
        this.env.log.info("serving peer traffic", { address: "path" in where ? where.path : `${host}:${port}`, tls: secure });
        resolve();
      });
    });
  }

  private track(session: ServerHttp2Session): void {
    this.sessions.add(session);
    session.on("close", () => this.sessions.delete(session));
    session.on("error", (err) => this.env.log.debug("peer connection error", { error: errorText(err) }));
    // No session.setLocalWindowSize() here: on Bun 1.4.5 it stops the server from granting
    // stream WINDOW_UPDATEs, and every stream stalls after its first initialWindowSize bytes.
  }

  /**
   * Stops listening and ends every connection now: message streams never end on their own, so
   * waiting for them would only delay; a snapshot being received fails and its temp file goes.
   * Waits at most `waitMs` for the listeners to report closed.
   */
  async close(waitMs: number): Promise<void> {
    const closed = Promise.all(this.servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
    for (const s of this.sessions) {
      try {
        s.destroy();
      } catch {}
    }
    this.sessions.clear();
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([closed, new Promise<void>((r) => (timer = setTimeout(r, waitMs)))]);
    clearTimeout(timer);
    this.servers.length = 0;
  }
}
