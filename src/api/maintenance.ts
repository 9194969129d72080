// The Maintenance service: what a single member can answer today.
import { create } from "@bufbuild/protobuf";
import { DefragmentResponseSchema, HashResponseSchema, type HashKVRequest } from "../gen/etcdserverpb/rpc_pb.js";
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
    defragment() {
      member.defragment();
      return create(DefragmentResponseSchema, { header: member.header() });
    },
  };
}
