// Starts a member and its client ports from a validated configuration, and
// stops it gracefully. Kept apart from the CLI so tests can start a member
// in-process.
import { allServices } from "../api/services.js";
import { connectHandler } from "../api/connect.js";
import { fetchHandler } from "../api/fetch-handler.js";
import { GrpcServer } from "../api/grpc/server.js";
import { httpRoutes } from "../api/http/routes.js";
import { ClientPort } from "../api/listener.js";
import { log } from "../log.js";
import { API_VERSION } from "../version.js";
import { Member, type MemberConfig } from "./member.js";

/** gRPC's receive limit sits above --max-request-bytes so the member can answer "request is too large" itself (as etcd). */
const GRPC_OVERHEAD_BYTES = 512 * 1024;
const MAX_SEND_BYTES = 2 ** 31 - 1;
/** How long a graceful stop waits for in-flight calls. */
const DRAIN_MS = 5_000;

export interface StartOptions extends MemberConfig {
  listenClientUrls: string[];
  advertiseClientUrls: string[];
  maxTxnOps: number;
  cors: string[];
  maxConcurrentStreams: number;
}

export interface RunningServer {
  member: Member;
  stop(): Promise<void>;
}

export async function startServer(opts: StartOptions): Promise<RunningServer> {
  const member = Member.open(opts);
  const services = allServices(member, { maxTxnOps: opts.maxTxnOps });
  const maxRecvBytes = opts.maxRequestBytes + GRPC_OVERHEAD_BYTES;
  const grpc = new GrpcServer(services, { maxRecvBytes, maxSendBytes: MAX_SEND_BYTES });
  const routes = httpRoutes({ healthProblem: () => "" });
  const http = connectHandler(services, routes, { readMaxBytes: maxRecvBytes, cors: opts.cors });
  const fetch = fetchHandler(services, routes, { readMaxBytes: maxRecvBytes, cors: opts.cors });

  log.info("enabled capabilities for version", { "cluster-version": API_VERSION });
  const ports: ClientPort[] = [];
  for (const raw of opts.listenClientUrls) {
    const url = new URL(raw);
    if (url.protocol !== "http:") {
      throw new Error(`listen-client-urls: scheme ${url.protocol} of ${raw} is not supported by tsetcd yet (use http://)`);
    }
    const port = new ClientPort({ grpc, http, fetch, maxBodyBytes: maxRecvBytes, maxConcurrentStreams: opts.maxConcurrentStreams });
    await port.listen(url.hostname.replace(/^\[|\]$/g, ""), Number(url.port || 2379));
    ports.push(port);
  }
  log.info("published local member to cluster through raft", {
    "local-member-id": member.memberId,
    "local-member-attributes": JSON.stringify({ Name: opts.name, ClientURLs: opts.advertiseClientUrls }),
    "cluster-id": member.clusterId,
  });
  for (const raw of opts.listenClientUrls) {
    log.info("ready to serve client requests");
    log.warn("serving client traffic insecurely; this is strongly discouraged!", { address: new URL(raw).host });
  }

  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      for (const p of ports) void p.close();
      const deadline = Date.now() + DRAIN_MS;
      while (grpc.active.size > 0 && Date.now() < deadline) await Bun.sleep(10);
      member.stop();
      for (const p of ports) p.destroyConnections();
    })());
  return { member, stop };
}
