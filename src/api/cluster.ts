// The Cluster service (etcd's api/v3rpc/member.go): translate requests to
// ClusterOps calls and fill responses as etcd does. The header is taken after
// the operation, so it carries the term the change was applied in.
import { create } from "@bufbuild/protobuf";
import {
  MemberAddResponseSchema,
  MemberListResponseSchema,
  MemberPromoteResponseSchema,
  MemberRemoveResponseSchema,
  MemberSchema,
  MemberUpdateResponseSchema,
  type Member,
  type MemberAddRequest,
  type MemberListRequest,
  type MemberPromoteRequest,
  type MemberRemoveRequest,
  type MemberUpdateRequest,
  type ResponseHeader,
} from "../gen/etcdserverpb/rpc_pb.js";
import type { ClusterOps } from "../server/cluster-ops.js";
import type { MemberInfo } from "../server/member-info.js";
import type { ServiceImpl } from "./context.js";

/** etcd's membersToProtoMembers: every field of every member. */
export function toProtoMember(m: MemberInfo): Member {
  return create(MemberSchema, {
    ID: m.id,
    name: m.name,
    peerURLs: [...m.peerURLs],
    clientURLs: [...m.clientURLs],
    isLearner: m.isLearner,
  });
}

export function clusterService(ops: ClusterOps, header: () => ResponseHeader): ServiceImpl {
  const protoMembers = (ms: MemberInfo[]) => ms.map(toProtoMember);
  return {
    async memberAdd(req: MemberAddRequest) {
      const { member, members } = await ops.memberAdd(req.peerURLs, req.isLearner);
      return create(MemberAddResponseSchema, {
        header: header(),
        // etcd answers with what it built: id, peer URLs, learner flag; no name or client URLs yet.
        member: create(MemberSchema, { ID: member.id, peerURLs: [...member.peerURLs], isLearner: member.isLearner }),
        members: protoMembers(members),
      });
    },
    async memberRemove(req: MemberRemoveRequest) {
      const members = await ops.memberRemove(req.ID);
      return create(MemberRemoveResponseSchema, { header: header(), members: protoMembers(members) });
    },
    async memberUpdate(req: MemberUpdateRequest) {
      const members = await ops.memberUpdate(req.ID, req.peerURLs);
      return create(MemberUpdateResponseSchema, { header: header(), members: protoMembers(members) });
    },
    async memberList(req: MemberListRequest) {
      const members = await ops.memberList(req.linearizable);
      return create(MemberListResponseSchema, { header: header(), members: protoMembers(members) });
    },
    async memberPromote(req: MemberPromoteRequest) {
      const members = await ops.memberPromote(req.ID);
      return create(MemberPromoteResponseSchema, { header: header(), members: protoMembers(members) });
    },
  };
}
