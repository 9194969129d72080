// The Maintenance service.
import { create } from "@bufbuild/protobuf";
import {
  AlarmRequest_AlarmAction,
  AlarmResponseSchema,
  AlarmType,
  DefragmentResponseSchema,
  HashResponseSchema,
  type AlarmRequest,
  type HashKVRequest,
  type MoveLeaderRequest,
  MoveLeaderResponseSchema,
} from "../gen/etcdserverpb/rpc_pb.js";
import type { Member } from "../server/member.js";
import type { ServiceImpl } from "./context.js";

export function maintenanceService(member: Member): ServiceImpl {
  return {
    status() {
      return member.status();
    },
    hashKV(req: HashKVRequest) {
      return member.hashKV(Number(req.revision));
    },
    hash() {
      const h = member.hashKV(0);
      return create(HashResponseSchema, { header: h.header, hash: h.hash });
    },
    // etcd answers Alarm without a response header (its maintenance server never fills one).
    async alarm(req: AlarmRequest) {
      if (req.action === AlarmRequest_AlarmAction.GET) {
        const alarms = member.alarms.list().filter((a) => req.alarm === AlarmType.NONE || a.alarm === req.alarm);
        return create(AlarmResponseSchema, { alarms });
      }
      const resp = await member.propose({ case: "alarm", value: req });
      resp.header = undefined;
      return resp;
    },
    async moveLeader(req: MoveLeaderRequest) {
      await member.moveLeader(req.targetID);
      return create(MoveLeaderResponseSchema, { header: member.header() });
    },
    defragment() {
      member.defragment();
      return create(DefragmentResponseSchema, { header: member.header() });
    },
  };
}
