// Every service of etcd's v3 API, registered on every transport. Methods not
// built yet are absent from their implementation and so answer UNIMPLEMENTED.
import { Auth, Cluster, KV, Lease, Maintenance, Watch } from "../gen/etcdserverpb/rpc_pb.js";
import { Election } from "../gen/v3electionpb/v3election_pb.js";
import { Lock } from "../gen/v3lockpb/v3lock_pb.js";
import type { Member } from "../server/member.js";
import type { ServiceRegistration } from "./context.js";
import { kvService } from "./kv.js";
import { maintenanceService } from "./maintenance.js";
import { clusterService } from "./cluster.js";

export function allServices(member: Member, opts: { maxTxnOps: number }): ServiceRegistration[] {
  return [
    { service: KV, impl: kvService(member, opts.maxTxnOps) },
    { service: Maintenance, impl: maintenanceService(member) },
    { service: Watch, impl: {} },
    { service: Lease, impl: {} },
    { service: Cluster, impl: clusterService(member.clusterOps, () => member.header()) },
    { service: Auth, impl: {} },
    { service: Lock, impl: {} },
    { service: Election, impl: {} },
  ];
}
