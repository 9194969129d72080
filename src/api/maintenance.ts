// The Maintenance service over the server's MaintenanceApi.
import { create } from "@bufbuild/protobuf";
import {
  type AlarmRequest,
  DefragmentResponseSchema,
  HashResponseSchema,
  type HashKVRequest,
  type MoveLeaderRequest,
  MoveLeaderResponseSchema,
} from "../gen/etcdserverpb/rpc_pb.js";
import type { MaintenanceApi } from "../server/maintenance.js";
import type { HeaderSource } from "../server/v3-server.js";
import type { ServiceImpl } from "./context.js";

export function maintenanceService(m: MaintenanceApi, headers: HeaderSource): ServiceImpl {
  return {
    status() {
      return m.status();
    },
    hashKV(req: HashKVRequest) {
      return m.hashKV(Number(req.revision));
    },
    hash() {
      const h = m.hashKV(0);
      return create(HashResponseSchema, { header: h.header, hash: h.hash });
    },
    alarm(req: AlarmRequest) {
      return m.alarm(req);
    },
    async moveLeader(req: MoveLeaderRequest) {
      await m.moveLeader(req.targetID);
      return create(MoveLeaderResponseSchema, { header: headers.header() });
    },
    defragment() {
      m.defragment();
      return create(DefragmentResponseSchema, { header: headers.header() });
    },
  };
}
