// The Cluster service: each method's response as etcd's v3rpc/member.go fills
// it (header taken after the operation, members in id order, MemberAdd's own
// member without name / client URLs), and errors passed through untouched.
import { describe, expect, test } from "bun:test";
import { create } from "@bufbuild/protobuf";
import { EtcdError, Errors } from "../errors.ts";
import {
  MemberAddRequestSchema,
  MemberListRequestSchema,
  MemberPromoteRequestSchema,
  MemberRemoveRequestSchema,
  MemberUpdateRequestSchema,
  ResponseHeaderSchema,
  type ResponseHeader,
} from "../gen/etcdserverpb/rpc_pb.js";
import { ConfChangeType } from "../raft/types.ts";
import { openDatabase } from "../storage/db.ts";
import { ClusterOps, type ClusterDeps } from "../server/cluster-ops.ts";
import { encodeMemberContext, Membership } from "../server/membership.ts";
import type { MemberInfo } from "../server/member-info.ts";
import { clusterService } from "./cluster.ts";

const NOW = 1_700_000_000_000;

function setup() {
  const db = openDatabase(":memory:");
  const membership = new Membership(db);
  const seed: MemberInfo[] = [
    { id: 0xfffffffffffffff0n, name: "big", peerURLs: ["http://b:2380"], clientURLs: ["http://b:2379"], isLearner: false },
    { id: 5n, name: "five", peerURLs: ["http://f:2380"], clientURLs: ["http://f:2379"], isLearner: false },
  ];
  for (const m of seed) membership.applyConfChange({ type: ConfChangeType.AddNode, nodeId: m.id, context: encodeMemberContext(m) });
  let term = 1n;
  const state = { barriers: 0 };
  const deps: ClusterDeps = {
    selfId: 5n,
    strictReconfigCheck: true,
    membership,
    isLeader: () => true,
    leaderId: () => 5n,
    progress: () =>
      new Map([
        [5n, 10],
        [0xfffffffffffffff0n, 10],
      ]),
    activeSince: () => NOW - 60_000,
    now: () => NOW,
    async proposeConfChange(cc) {
      term++; // the header must be read after the change
      const r = membership.applyConfChange(cc);
      if (r.error) throw r.error;
    },
    async linearizableBarrier() {
      state.barriers++;
    },
    async forwardPromote() {
      throw new Error("not a follower");
    },
  };
  const header = (): ResponseHeader => create(ResponseHeaderSchema, { clusterId: 77n, memberId: 5n, raftTerm: term });
  return { svc: clusterService(new ClusterOps(deps), header), membership, state };
}

describe("cluster service", () => {
  test("MemberList: header, every field of every member, in id order; linearizable waits", async () => {
    const { svc, state } = setup();
    const r = await svc.memberList(create(MemberListRequestSchema, {}), undefined as never);
    expect(r.header.clusterId).toBe(77n);
    expect(r.header.memberId).toBe(5n);
    expect(r.members.map((m: { ID: bigint }) => m.ID)).toEqual([5n, 0xfffffffffffffff0n]);
    const five = r.members[0];
    expect([five.name, five.peerURLs, five.clientURLs, five.isLearner]).toEqual(["five", ["http://f:2380"], ["http://f:2379"], false]);
    expect(state.barriers).toBe(0);
    await svc.memberList(create(MemberListRequestSchema, { linearizable: true }), undefined as never);
    expect(state.barriers).toBe(1);
  });

  test("MemberAdd: the new member (id, sorted peer URLs, learner flag only) and the list after", async () => {
    const { svc } = setup();
    const r = await svc.memberAdd(create(MemberAddRequestSchema, { peerURLs: ["http://z:1", "http://a:1"], isLearner: true }), undefined as never);
    expect(r.header.raftTerm).toBe(2n);
    expect(r.member.ID).not.toBe(0n);
    expect(r.member.peerURLs).toEqual(["http://a:1", "http://z:1"]);
    expect(r.member.isLearner).toBe(true);
    expect(r.member.name).toBe("");
    expect(r.member.clientURLs).toEqual([]);
    expect(r.members).toHaveLength(3);
    expect(r.members.some((m: { ID: bigint; isLearner: boolean }) => m.ID === r.member.ID && m.isLearner)).toBe(true);
  });

  test("MemberUpdate, MemberPromote, MemberRemove answer with the list after", async () => {
    const { svc } = setup();
    const u = await svc.memberUpdate(create(MemberUpdateRequestSchema, { ID: 5n, peerURLs: ["http://g:2380"] }), undefined as never);
    expect(u.members[0].peerURLs).toEqual(["http://g:2380"]);
    const added = await svc.memberAdd(create(MemberAddRequestSchema, { peerURLs: ["http://l:1"], isLearner: true }), undefined as never);
    const p = await svc.memberPromote(create(MemberPromoteRequestSchema, { ID: added.member.ID }), undefined as never).catch((e: unknown) => e);
    // The learner has no raft progress in this fake: etcd 3.5 answers memberNotFound.
    expect((p as EtcdError).message).toBe(Errors.memberNotFound().message);
    const rm = await svc.memberRemove(create(MemberRemoveRequestSchema, { ID: added.member.ID }), undefined as never);
    expect(rm.header.raftTerm).toBe(4n);
    expect(rm.members.map((m: { ID: bigint }) => m.ID)).toEqual([5n, 0xfffffffffffffff0n]);
  });

  test("errors pass through as EtcdError", async () => {
    const { svc } = setup();
    const e = await svc.memberRemove(create(MemberRemoveRequestSchema, { ID: 9n }), undefined as never).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(EtcdError);
    expect((e as EtcdError).message).toBe("etcdserver: member not found");
    const b = await svc.memberAdd(create(MemberAddRequestSchema, { peerURLs: ["bad"] }), undefined as never).catch((x: unknown) => x);
    expect((b as EtcdError).message).toBe("etcdserver: given member URLs are invalid");
  });
});
