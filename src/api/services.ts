// Every service of etcd's v3 API, registered on every transport. Methods not
// built yet are absent from their implementation and so answer UNIMPLEMENTED.
import { Auth, Cluster, KV, Lease, Maintenance, Watch } from "../gen/etcdserverpb/rpc_pb.js";
import { Election } from "../gen/v3electionpb/v3election_pb.js";
import { Lock } from "../gen/v3lockpb/v3lock_pb.js";
import type { Member } from "../server/member.js";
import type { ServiceImpl, ServiceRegistration } from "./context.js";
import { Errors } from "../errors.js";
import { kvService } from "./kv.js";
import { maintenanceService } from "./maintenance.js";
import { clusterService } from "./cluster.js";
import { watchService, watchStreamService } from "./watch.js";
import { WatchStream } from "../gen/tsetcdpb/watch_pb.js";
import { leaseService } from "./lease.js";
import { concurrencyDeps } from "./concurrency.js";
import { lockService } from "./lock.js";
import { electionService } from "./election.js";

export function allServices(
  member: Member,
  opts: { maxTxnOps: number; watchProgressNotifyIntervalMs?: number; stopping?: AbortSignal },
): ServiceRegistration[] {
  const watchDeps = {
    hub: member.watchHub,
    header: (rev: number) => member.header(rev),
    maxRequestBytes: member.config.maxRequestBytes,
    progressIntervalMs: opts.watchProgressNotifyIntervalMs,
    stopping: opts.stopping,
  };
  const services: ServiceRegistration[] = [
    { service: KV, impl: kvService(member, opts.maxTxnOps) },
    { service: Maintenance, impl: maintenanceService(member) },
    { service: Watch, impl: watchService(watchDeps) },
    { service: WatchStream, impl: watchStreamService(watchDeps) },
    { service: Lease, impl: leaseService(member) },
    { service: Cluster, impl: clusterService(member.clusterOps, () => member.header()) },
    { service: Auth, impl: {} },
    { service: Lock, impl: lockService(concurrencyDeps(member)) },
    { service: Election, impl: electionService(concurrencyDeps(member)) },
  ];
  return services.map((s) => ({ service: s.service, impl: learnerGuard(s.service.typeName, s.impl, () => member.isLearner()) }));
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
