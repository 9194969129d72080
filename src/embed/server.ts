// The composition root (etcd's embed): starts a member and its client ports
// from a validated configuration, and stops it gracefully. It sits above both
// server/ and api/, so neither knows the other's wiring; kept apart from the
// CLI so tests can start a member in-process.
import { allServices } from "../api/services.js";
import { connectHandler } from "../api/connect.js";
import { fetchHandler } from "../api/fetch-handler.js";
import { addGatewayRoutes } from "../api/gateway.js";
import { GrpcServer } from "../api/grpc/server.js";
import { httpRoutes } from "../api/http/routes.js";
import { ClientPort } from "../api/listener.js";
import { clientTlsOptions, type ClientTlsConfig } from "../tls/client.js";
import { log } from "../log.js";
import { API_VERSION } from "../version.js";
import { Member, type MemberConfig } from "../server/member.js";
import { parseInitialCluster } from "../server/ids.js";
import { joinExistingCluster } from "../server/join.js";
import { peerTlsOptions, type PeerTlsConfig } from "../tls/peer.js";

/** gRPC's receive limit sits above --max-request-bytes so the member can answer "request is too large" itself (as etcd). */
const GRPC_OVERHEAD_BYTES = 512 * 1024;
const MAX_SEND_BYTES = 2 ** 31 - 1;
/** How long a graceful stop waits for in-flight calls. */
const DRAIN_MS = 5_000;
/** etcd's minWatchProgressInterval: a shorter --experimental-watch-progress-notify-interval is raised to it. */
const MIN_WATCH_PROGRESS_MS = 100;

/** etcd 3.4's rule: 0 (or less) keeps the 10-minute default, a positive value below the minimum is raised to it. */
export function watchProgressIntervalMs(flagMs: number | undefined): number | undefined {
  if (flagMs === undefined || !(flagMs > 0)) return undefined;
  if (flagMs < MIN_WATCH_PROGRESS_MS) {
    log.warn("adjusting watch progress notify interval to minimum period", { "min-watch-progress-notify-interval": "100ms" });
    return MIN_WATCH_PROGRESS_MS;
  }
  return flagMs;
}

export interface StartOptions extends MemberConfig {
  /** etcd's --peer-* TLS flags (src/tls/peer.ts). */
  peerTlsConfig: Omit<PeerTlsConfig, "dataDir" | "listenPeerUrls">;
  listenClientUrls: string[];
  advertiseClientUrls: string[];
  maxTxnOps: number;
  /** --experimental-watch-progress-notify-interval in ms (0 or absent: etcd's 10 minutes). */
  watchProgressNotifyIntervalMs?: number;
  cors: string[];
  maxConcurrentStreams: number;
  tls: Omit<ClientTlsConfig, "dataDir" | "hosts">;
}

export interface RunningServer {
  member: Member;
  stop(): Promise<void>;
  /** Called once the member stopped on its own (removed from the cluster, or a failed write). */
  onFatal(cb: (reason: string) => void): void;
}

export async function startServer(opts: StartOptions): Promise<RunningServer> {
  const peerTls = await peerTlsOptions({ ...opts.peerTlsConfig, dataDir: opts.dataDir, listenPeerUrls: opts.listenPeerUrls });
  const member = await Member.open({
    ...opts,
    peerTls,
    joinCluster: () => joinExistingCluster({ name: opts.name, initialCluster: parseInitialCluster(opts.initialCluster), tls: peerTls?.client }),
  });
  let fatal: ((reason: string) => void) | undefined;
  member.onFatal = (reason) => fatal?.(reason);
  // Aborted when stop() begins: streams that never end on their own (watch) end then.
  const stopStreams = new AbortController();
  const handlers = clientHandlers(member, opts, stopStreams.signal);
  const ports: ClientPort[] = [];
  // The client ports listen before the member has published itself (as etcd's do), so a
  // client that reads "published" in the log can connect at once; calls made meanwhile
  // wait for a leader like any other.
  try {
    await listenClients(opts, handlers, ports);
    log.info("enabled capabilities for version", { "cluster-version": API_VERSION });
    await member.start();
  } catch (err) {
    for (const p of ports) p.close();
    await member.stop().catch(() => {});
    throw err;
  }
  for (const url of opts.listenClientUrls.map((raw) => new URL(raw))) {
    log.info("ready to serve client requests");
    if (url.protocol === "http:") log.warn("serving client traffic insecurely; this is strongly discouraged!", { address: url.host });
    else log.info("serving client traffic securely", { address: url.host });
  }

  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      for (const p of ports) p.close();
      stopStreams.abort();
      const deadline = Date.now() + DRAIN_MS;
      while (handlers.grpc.active.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      await member.stop();
      for (const p of ports) p.destroyConnections();
    })());
  let onExit: ((reason: string) => void) | undefined;
  fatal = (reason) => {
    void stop().finally(() => onExit?.(reason));
  };
  return {
    member,
    stop,
    onFatal(cb) {
      onExit = cb;
    },
  };
}

interface ClientHandlers {
  grpc: GrpcServer;
  http: ReturnType<typeof connectHandler>;
  fetch: ReturnType<typeof fetchHandler>;
  maxRecvBytes: number;
}

/** Every service on every client transport: gRPC, gRPC-Web and Connect, the gateway and plain HTTP routes. */
function clientHandlers(member: Member, opts: StartOptions, stopping: AbortSignal): ClientHandlers {
  const services = allServices(member, {
    maxTxnOps: opts.maxTxnOps,
    maxRequestBytes: opts.maxRequestBytes,
    watchProgressNotifyIntervalMs: watchProgressIntervalMs(opts.watchProgressNotifyIntervalMs),
    stopping,
  });
  const maxRecvBytes = opts.maxRequestBytes + GRPC_OVERHEAD_BYTES;
  const grpc = new GrpcServer(services, { maxRecvBytes, maxSendBytes: MAX_SEND_BYTES });
  const routes = httpRoutes({ healthProblem: () => member.maintenance.healthProblem(), metrics: () => member.metrics.text() });
  addGatewayRoutes(routes, services, maxRecvBytes);
  const http = connectHandler(services, routes, { readMaxBytes: maxRecvBytes, cors: opts.cors });
  const fetch = fetchHandler(services, routes, { readMaxBytes: maxRecvBytes, cors: opts.cors });
  return { grpc, http, fetch, maxRecvBytes };
}

/** One client port per --listen-client-urls entry, each pushed to `ports` once it listens (so a failure can close those). */
async function listenClients(opts: StartOptions, h: ClientHandlers, ports: ClientPort[]): Promise<void> {
  const urls = opts.listenClientUrls.map((raw) => new URL(raw));
  const hosts = urls.map((u) => u.hostname.replace(/^\[|\]$/g, ""));
  const tlsOptions = urls.some((u) => u.protocol === "https:") ? await clientTlsOptions({ ...opts.tls, dataDir: opts.dataDir, hosts }) : undefined;
  for (const [i, url] of urls.entries()) {
    if (url.protocol !== "http:" && url.protocol !== "https:") {
      throw new Error(`listen-client-urls: scheme ${url.protocol} of ${url.href} is not supported by tsetcd yet (use http:// or https://)`);
    }
    if (url.protocol === "https:" && !tlsOptions) {
      throw new Error(`TLS key/cert (--cert-file, --key-file) must be provided for client url ${url.href} with HTTPS scheme`);
    }
    const port = new ClientPort({ grpc: h.grpc, http: h.http, fetch: h.fetch, maxBodyBytes: h.maxRecvBytes, maxConcurrentStreams: opts.maxConcurrentStreams });
    await port.listen(hosts[i], Number(url.port || 2379), url.protocol === "https:" ? tlsOptions : undefined);
    ports.push(port);
  }
}
