import { afterEach, describe, expect, test } from "bun:test";
import { freePort } from "../testing/ports.js";
import { Code, EtcdError, Errors } from "../errors.js";
import { systemClock } from "../runtime/time.js";
import { peerRequest, PeerRequestError } from "../transport/transport.js";
import { startNode, type TestNode } from "../transport/test-support.js";
import type { MemberInfo } from "./member-info.js";
import type { PeerCaller } from "./peer-network.js";
import { decodePromoteReply, encodePromoteResponse, forwardPromote, parsePromotePath, PROMOTE_PREFIX, promoteBadPathResponse, promotePath } from "./promote.js";

const nodes: TestNode[] = [];
afterEach(async () => {
  await Promise.all(nodes.splice(0).map((n) => n.t.stop()));
});

const members: MemberInfo[] = [{ id: 0xabcdefn, name: "a", peerURLs: ["http://x:1"], clientURLs: ["http://x:2"], isLearner: false }];

/** A leader whose handler runs `promote` as the lead's member would. */
async function leader(promote: (id: bigint) => MemberInfo[] | Promise<MemberInfo[]>, calls: bigint[] = []): Promise<TestNode> {
  const n = await startNode(BigInt(nodes.length + 1), {
    onPeerRequest: async (req) => {
      if (req.method !== "POST" || !req.path.startsWith(PROMOTE_PREFIX)) return { status: 404, body: "" };
      const id = parsePromotePath(req.path);
      if (id === undefined) return promoteBadPathResponse(req.path);
      calls.push(id);
      try {
        return encodePromoteResponse(await promote(id));
      } catch (err) {
        return encodePromoteResponse(err);
      }
    },
  });
  nodes.push(n);
  return n;
}

describe("promote wire format", () => {
  test("paths", () => {
    expect(promotePath(0xabcdefn)).toBe("/members/promote/abcdef");
    expect(parsePromotePath("/members/promote/ABCDEF")).toBe(0xabcdefn);
    expect(parsePromotePath("/members/promote/")).toBeUndefined();
    expect(parsePromotePath("/members/promote/12345678901234567")).toBeUndefined();
    expect(parsePromotePath("/members")).toBeUndefined();
  });

  test("errors keep their code and message; statuses as etcd's handler", () => {
    const cases: Array<[EtcdError, number]> = [
      [Errors.memberNotFound(), 404],
      [Errors.memberNotLearner(), 412],
      [Errors.learnerNotReady(), 412],
      [Errors.timeout(), 408],
      [Errors.notLeader(), 500],
    ];
    for (const [err, status] of cases) {
      const res = encodePromoteResponse(err);
      expect(res.status).toBe(status);
      let thrown: unknown;
      try {
        decodePromoteReply(res.status, res.body);
      } catch (e) {
        thrown = e;
      }
      expect(thrown).toBeInstanceOf(EtcdError);
      expect((thrown as EtcdError).code).toBe(err.code);
      expect((thrown as EtcdError).message).toBe(err.message);
    }
    const other = encodePromoteResponse(new Error("disk on fire"));
    expect(() => decodePromoteReply(other.status, other.body)).toThrow("disk on fire");
    const ok = encodePromoteResponse(members);
    expect(decodePromoteReply(ok.status, ok.body)).toEqual(members);
    // etcd-style plain-text answers still map.
    expect(() => decodePromoteReply(404, "member 5 not found")).toThrow(Errors.memberNotFound().message);
    expect(() => decodePromoteReply(412, "etcdserver: can only promote a learner member which is in sync with leader\n")).toThrow(
      Errors.learnerNotReady().message,
    );
    expect(() => decodePromoteReply(502, "bad gateway")).toThrow("member promote: unknown error(bad gateway)");
  });
});

/** Each call on a connection of its own, as the member's network makes unpooled calls. */
const directCaller: PeerCaller = async (urls, call) => {
  const r = await peerRequest(urls, call.path, { method: call.method, body: call.body, timeoutMs: call.timeoutMs });
  return { status: r.status, body: r.body };
};

describe("forwardPromote", () => {
  test("resolves with the leader's members", async () => {
    const calls: bigint[] = [];
    const l = await leader(() => members, calls);
    expect(await forwardPromote([l.url], 0x42n, 2000, directCaller, systemClock)).toEqual(members);
    expect(calls).toEqual([0x42n]);
  });

  test("final errors stop at once; others try the next URL; unreachable is a PeerRequestError", async () => {
    const firstCalls: bigint[] = [];
    const secondCalls: bigint[] = [];
    const notLearner = await leader(() => {
      throw Errors.memberNotLearner();
    }, firstCalls);
    const ok = await leader(() => members, secondCalls);
    const err = await forwardPromote([notLearner.url, ok.url], 7n, 2000, directCaller, systemClock).catch((e) => e);
    expect(err).toBeInstanceOf(EtcdError);
    expect(err.message).toBe("etcdserver: can only promote a learner member");
    expect(err.code).toBe(Code.FailedPrecondition);
    expect(secondCalls).toEqual([]);

    const notLeader = await leader(() => {
      throw Errors.notLeader();
    });
    expect(await forwardPromote([notLeader.url, ok.url], 7n, 2000, directCaller, systemClock)).toEqual(members);
    expect(secondCalls).toEqual([7n]);

    const dead = `http://127.0.0.1:${await freePort()}`;
    await expect(forwardPromote([dead], 7n, 1000, directCaller, systemClock)).rejects.toBeInstanceOf(PeerRequestError);
    const last = await forwardPromote([dead, notLeader.url], 7n, 1000, directCaller, systemClock).catch((e) => e);
    expect(last.message).toBe("etcdserver: not leader");
  });
});
