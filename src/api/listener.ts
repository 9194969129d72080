// One TCP port for everything a client speaks. The first bytes of a
// connection decide: the HTTP/2 preface goes to our own HTTP/2 server (gRPC
// streams to our gRPC layer, any other stream to the fetch handler: Connect,
// gRPC-Web, Hono routes), everything else to node's HTTP/1.1 server
// (connect-node's adapter, falling back to Hono).
// TSETCD_HTTP2=node selects Bun's node:http2 instead of ours, for comparison;
// it refuses an :authority that carries a scheme (etcdctl 3.4 sends one for
// http:// endpoints in `endpoint status`), which is why ours is the default.
import http from "node:http";
import http2 from "node:http2";
import net from "node:net";
import tls from "node:tls";
import type { ServerTlsOptions } from "../tls/types.js";
import type { IncomingHttpHeaders, ServerHttp2Stream } from "node:http2";
import type { GrpcServer } from "./grpc/server.js";
import type { NodeHandler } from "./connect.js";
import type { FetchHandler } from "./fetch-handler.js";
import { serveH2, type H2Connection, type H2Stream } from "./h2/server.js";
import { serveStreamWithFetch } from "./stream-to-fetch.js";

const PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
/** Flow-control windows large enough that Go's client never stalls on small puts. */
const WINDOW = 8 * 1024 * 1024;
/** A connection that sends nothing decisive in this long is closed. */
const SNIFF_TIMEOUT_MS = 10_000;

export interface ClientPortOptions {
  grpc: GrpcServer;
  /** HTTP/1.1 requests (and non-gRPC streams when node:http2 is used). */
  http: NodeHandler;
  /** Non-gRPC streams on our own HTTP/2 server. */
  fetch: FetchHandler;
  /** Largest request body a non-gRPC HTTP/2 stream may send. */
  maxBodyBytes: number;
  maxConcurrentStreams: number;
}

const useNodeHttp2 = process.env.TSETCD_HTTP2 === "node";

export class ClientPort {
  private readonly servers: net.Server[] = [];
  private readonly h1: http.Server;
  /** Only built when TSETCD_HTTP2=node asks for it. */
  private nodeH2: http2.Http2Server | undefined;
  private readonly sockets = new Set<net.Socket>();
  private readonly h2Connections = new Set<H2Connection>();

  constructor(private readonly opts: ClientPortOptions) {
    this.h1 = http.createServer(opts.http);
  }

  private nodeHttp2(): http2.Http2Server {
    if (this.nodeH2) return this.nodeH2;
    const server = http2.createServer({
      settings: { maxConcurrentStreams: this.opts.maxConcurrentStreams, initialWindowSize: WINDOW },
    });
    server.on("session", (session) => {
      session.on("connect", () => session.setLocalWindowSize?.(WINDOW));
      try {
        session.setLocalWindowSize?.(WINDOW);
      } catch {
        // Not yet connected: the 'connect' handler above sets it.
      }
    });
    server.on("stream", (stream, headers, _flags, rawHeaders) => this.onStream(stream as ServerHttp2Stream, headers, rawHeaders));
    this.nodeH2 = server;
    return server;
  }

  /** A TLS connection: ALPN decides between HTTP/2 and HTTP/1.1 (no sniffing needed). */
  private secure(socket: tls.TLSSocket): void {
    this.track(socket);
    if (socket.alpnProtocol === "h2") {
      this.serveHttp2(socket, new Uint8Array());
    } else {
      this.h1.emit("connection", socket);
    }
  }

  private track(socket: net.Socket): void {
    this.sockets.add(socket);
    socket.on("close", () => this.sockets.delete(socket));
    socket.setNoDelay(true);
    socket.on("error", () => socket.destroy());
  }

  private serveHttp2(socket: net.Socket, initial: Uint8Array): void {
    if (useNodeHttp2) {
      socket.pause();
      if (initial.length > 0) socket.unshift(initial);
      this.nodeHttp2().emit("connection", socket);
      socket.resume();
      return;
    }
    const conn = serveH2(socket, initial, {
      maxConcurrentStreams: this.opts.maxConcurrentStreams,
      onStream: (stream, headers) => this.onOwnStream(stream, headers),
    });
    this.h2Connections.add(conn);
    void conn.closed.then(() => this.h2Connections.delete(conn));
  }

  private onOwnStream(stream: H2Stream, headers: Record<string, string | string[]>): void {
    const type = headers["content-type"];
    if (typeof type === "string" && type.startsWith("application/grpc") && !type.startsWith("application/grpc-web")) {
      this.opts.grpc.handle(stream as unknown as ServerHttp2Stream, headers as IncomingHttpHeaders);
      return;
    }
    serveStreamWithFetch(stream as any, headers, this.opts.fetch, this.opts.maxBodyBytes);
  }

  private onStream(stream: ServerHttp2Stream, headers: IncomingHttpHeaders, rawHeaders: unknown): void {
    const type = headers["content-type"] ?? "";
    if (type.startsWith("application/grpc") && !type.startsWith("application/grpc-web")) {
      this.opts.grpc.handle(stream, headers);
      return;
    }
    // Not gRPC: hand the stream to the same handler HTTP/1.1 uses, through
    // node's compatibility objects (Bun builds them from a raw stream).
    const h2 = http2 as any;
    const req = new h2.Http2ServerRequest(stream, headers, {}, rawHeaders);
    const res = new h2.Http2ServerResponse(stream);
    this.opts.http(req, res);
  }

  private sniff(socket: net.Socket): void {
    this.track(socket);
    let seen: Buffer = Buffer.alloc(0);
    const timer = setTimeout(() => socket.destroy(), SNIFF_TIMEOUT_MS);
    const onData = (chunk: Buffer) => {
      seen = seen.length === 0 ? chunk : Buffer.concat([seen, chunk]);
      const n = Math.min(seen.length, PREFACE.length);
      const isH2 = seen.subarray(0, n).equals(PREFACE.subarray(0, n));
      if (isH2 && n < PREFACE.length) return; // a prefix of the preface: wait for more
      clearTimeout(timer);
      socket.off("data", onData);
      if (isH2) {
        this.serveHttp2(socket, seen);
        return;
      }
      socket.pause();
      socket.unshift(seen);
      this.h1.emit("connection", socket);
      socket.resume();
    };
    socket.on("data", onData);
  }

  /** Listens on host:port, with TLS when `tlsOptions` is given (an https:// client URL). */
  listen(host: string, port: number, tlsOptions?: ServerTlsOptions): Promise<void> {
    const server = tlsOptions
      ? tls.createServer({ ...tlsOptions, ALPNProtocols: ["h2", "http/1.1"] }, (s) => this.secure(s))
      : net.createServer((s) => this.sniff(s));
    this.servers.push(server);
    return new Promise((resolve, reject) => {
      server.once("error", reject);
      server.listen({ host, port, exclusive: true }, () => {
        server.off("error", reject);
        resolve();
      });
    });
  }

  /** Stops accepting new connections and tells HTTP/2 clients (GOAWAY) to send no new calls. */
  close(): void {
    for (const s of this.servers) s.close();
    for (const c of this.h2Connections) void c.close();
  }

  destroyConnections(): void {
    for (const s of this.sockets) s.destroy();
  }
}
