// Every service of etcd's v3 API, registered on every transport. Methods not
// built yet are absent from their implementation and so answer UNIMPLEMENTED.
import { Auth, Cluster, KV, Lease, Maintenance, Watch } from "../gen/etcdserverpb/rpc_pb.js";
import { Election } from "../gen/v3electionpb/v3election_pb.js";
import { Lock } from "../gen/v3lockpb/v3lock_pb.js";
import type { AuthApi } from "../server/auth-server.js";
import type { ClusterOps } from "../server/cluster-ops.js";
import type { MaintenanceApi } from "../server/maintenance.js";
import type { HeaderSource, LeaseApi, RaftKV } from "../server/v3-server.js";
import type { WatchHub } from "../watch/hub.js";
import type { ServiceImpl, ServiceRegistration } from "./context.js";
import { Errors } from "../errors.js";
import { authService } from "./auth.js";
import { kvService } from "./kv.js";
import { maintenanceService } from "./maintenance.js";
import { clusterService } from "./cluster.js";
import { watchService, watchStreamService } from "./watch.js";
import { WatchStream } from "../gen/tsetcdpb/watch_pb.js";
import { leaseService } from "./lease.js";
import { concurrencyDeps } from "./concurrency.js";
import { lockService } from "./lock.js";
import { electionService } from "./election.js";

/** What the services use of the server (etcd's RaftKV, Lessor, Maintenance and cluster shapes): never the member itself. */
export interface ServerApi {
  readonly kv: RaftKV & LeaseApi & HeaderSource;
  readonly maintenance: MaintenanceApi;
  readonly clusterOps: ClusterOps;
  readonly auth: AuthApi;
  readonly watchHub: WatchHub;
  isLearner(): boolean;
}

export interface ServiceOptions {
  maxTxnOps: number;
  maxRequestBytes: number;
  watchProgressNotifyIntervalMs?: number;
  stopping?: AbortSignal;
}

export function allServices(server: ServerApi, opts: ServiceOptions): ServiceRegistration[] {
  const { kv } = server;
  const watchDeps = {
    hub: server.watchHub,
    header: (rev: number) => kv.header(rev),
    maxRequestBytes: opts.maxRequestBytes,
    progressIntervalMs: opts.watchProgressNotifyIntervalMs,
    stopping: opts.stopping,
  };
  const services: ServiceRegistration[] = [
    { service: KV, impl: kvService(kv, opts.maxTxnOps) },
    { service: Maintenance, impl: maintenanceService(server.maintenance, kv) },
    { service: Watch, impl: watchService(watchDeps) },
    { service: WatchStream, impl: watchStreamService(watchDeps) },
    { service: Lease, impl: leaseService(kv) },
    { service: Cluster, impl: clusterService(server.clusterOps, () => kv.header()) },
    { service: Auth, impl: authService(server.auth) },
    { service: Lock, impl: lockService(concurrencyDeps(kv, server.watchHub)) },
    { service: Election, impl: electionService(concurrencyDeps(kv, server.watchHub)) },
  ];
  return services.map((s) => ({ service: s.service, impl: learnerGuard(s.service.typeName, s.impl, () => server.isLearner()) }));
}

/**
 * etcd's interceptors: a learner answers only Status and serializable Range; every other call
 * (streams included) gets "rpc not supported for learner", so clients move to another member.
 */
function learnerGuard(service: string, impl: ServiceImpl, isLearner: () => boolean): ServiceImpl {
  const out: ServiceImpl = {};
  for (const [name, fn] of Object.entries(impl)) {
    const allowed =
      service === "etcdserverpb.Maintenance" && name === "status"
        ? () => true
        : service === "etcdserverpb.KV" && name === "range"
          ? (input: any) => input?.serializable === true
          : () => false;
    out[name] = (input, ctx) => {
      if (isLearner() && !allowed(input)) throw Errors.notSupportedForLearner();
      return fn(input, ctx);
    };
  }
  return out;
}
