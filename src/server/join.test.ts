import { afterEach, describe, expect, test } from "bun:test";
import { freePort } from "../testing/ports.js";
import { startNode, type TestNode } from "../transport/test-support.js";
import {
  assignLocalId,
  decodeMembersResponse,
  encodeMembersResponse,
  fetchClusterFromPeers,
  joinExistingCluster,
  remotePeerUrls,
  verifyJoinExisting,
} from "./join.js";
import type { MemberInfo } from "./member-info.js";

const quiet = { warn: () => {}, info: () => {} };
const nodes: TestNode[] = [];
afterEach(async () => {
  await Promise.all(nodes.splice(0).map((n) => n.t.stop()));
});

const m = (id: bigint, name: string, peer: string[], client: string[] = [], isLearner = false): MemberInfo => ({
  id,
  name,
  peerURLs: peer,
  clientURLs: client,
  isLearner,
});

const remote = {
  clusterId: 0xcdf818194e3a8c32n,
  members: [
    m(0x8e9e05c52164694dn, "infra1", ["http://127.0.0.1:2380"], ["http://127.0.0.1:2379"]),
    m(0x91bc3c398fb3c146n, "", ["http://127.0.0.1:22380", "http://127.0.0.2:22380"], [], true),
  ],
};

describe("members wire format", () => {
  test("round trip, sorted by id, cluster id in body and header", () => {
    const res = encodeMembersResponse(remote.clusterId, [...remote.members].reverse());
    expect(res.status).toBe(200);
    expect(res.headers!["x-tsetcd-cluster-id"]).toBe("cdf818194e3a8c32");
    const back = decodeMembersResponse(res.body as string);
    expect(back).toEqual(remote);
    expect(JSON.parse(res.body as string).members[0].id).toBe("8e9e05c52164694d");
  });

  test("malformed answers are rejected", () => {
    expect(() => decodeMembersResponse("[]")).toThrow();
    expect(() => decodeMembersResponse('{"clusterId":"zz","members":[]}')).toThrow(/cluster id/);
    expect(() => decodeMembersResponse('{"clusterId":"1","members":[{"id":"1","name":"a","peerURLs":"x","clientURLs":[],"isLearner":false}]}')).toThrow(
      /peerURLs/,
    );
    expect(() =>
      decodeMembersResponse('{"clusterId":"1","members":[{"id":"12345678901234567","name":"a","peerURLs":[],"clientURLs":[],"isLearner":false}]}'),
    ).toThrow(/member id/);
  });
});

describe("validation (ValidateClusterAndAssignIDs)", () => {
  const initial = new Map([
    ["infra1", ["http://127.0.0.1:2380"]],
    ["infra2", ["http://127.0.0.2:22380", "http://127.0.0.1:22380"]],
  ]);

  test("the local id is the id of the remote member with our peer URLs (order-insensitive)", () => {
    expect(assignLocalId(initial, "infra2", remote)).toBe(0x91bc3c398fb3c146n);
    expect(assignLocalId(initial, "infra1", remote)).toBe(0x8e9e05c52164694dn);
  });

  test("member count is unequal", () => {
    const more = new Map([...initial, ["infra3", ["http://127.0.0.3:2380"]]]);
    expect(() => assignLocalId(more, "infra3", remote)).toThrow(
      "error validating peerURLs {ClusterID:cdf818194e3a8c32 Members:[" +
        "&{ID:8e9e05c52164694d RaftAttributes:{PeerURLs:[http://127.0.0.1:2380] IsLearner:false} Attributes:{Name:infra1 ClientURLs:[http://127.0.0.1:2379]}} " +
        "&{ID:91bc3c398fb3c146 RaftAttributes:{PeerURLs:[http://127.0.0.1:22380 http://127.0.0.2:22380] IsLearner:true} Attributes:{Name: ClientURLs:[]}}" +
        "] RemovedMemberIDs:[]}: member count is unequal",
    );
  });

  test("no match found for an existing member", () => {
    const wrong = new Map([
      ["infra1", ["http://127.0.0.1:2380"]],
      ["infra2", ["http://127.0.0.1:22380", "http://127.0.0.9:22380"]],
    ]);
    let msg = "";
    try {
      assignLocalId(wrong, "infra2", remote);
    } catch (e) {
      msg = (e as Error).message;
    }
    expect(msg).toStartWith("error validating peerURLs {ClusterID:cdf818194e3a8c32 ");
    expect(msg).toEndWith(
      ': PeerURLs: no match found for existing member (91bc3c398fb3c146, [http://127.0.0.1:22380 http://127.0.0.2:22380]), last resolver error (resolved urls: "http://127.0.0.2:22380" != "http://127.0.0.9:22380")',
    );
    const short = new Map([
      ["infra1", ["http://127.0.0.1:2380"]],
      ["infra2", ["http://127.0.0.1:22380"]],
    ]);
    expect(() => assignLocalId(short, "infra2", remote)).toThrow(
      'last resolver error (len(["http://127.0.0.1:22380" "http://127.0.0.2:22380"]) != len(["http://127.0.0.1:22380"]))',
    );
  });

  test("VerifyJoinExisting texts, remote peer URLs sorted without ours", () => {
    expect(() => verifyJoinExisting(initial, "nope")).toThrow(`couldn't find local name "nope" in the initial cluster configuration`);
    const dup = new Map([
      ["b", ["http://x:1"]],
      ["a", ["http://x:1"]],
    ]);
    expect(() => verifyJoinExisting(dup, "a")).toThrow("initial cluster a=http://x:1,b=http://x:1 has duplicate url");
    expect(() => verifyJoinExisting(initial, "infra1")).not.toThrow();
    expect(remotePeerUrls(initial, "infra1")).toEqual(["http://127.0.0.1:22380", "http://127.0.0.2:22380"]);
  });
});

describe("fetching the cluster from peers", () => {
  async function server(answer: () => { status: number; body: string; headers?: Record<string, string> }): Promise<TestNode> {
    const n = await startNode(BigInt(nodes.length + 1), {
      onPeerRequest: (req) => (req.path === "/members" && req.method === "GET" ? answer() : { status: 404, body: "" }),
    });
    nodes.push(n);
    return n;
  }
  const dead = async () => `http://127.0.0.1:${await freePort()}`;

  test("skips dead and unusable peers, takes the first good answer", async () => {
    const garbage = await server(() => ({ status: 200, body: "not json" }));
    const notFound = await server(() => ({ status: 404, body: "404 page not found" }));
    const good = await server(() => encodeMembersResponse(remote.clusterId, remote.members) as { status: number; body: string });
    const got = await fetchClusterFromPeers([await dead(), garbage.url, notFound.url, good.url], undefined, 1000, quiet);
    expect(got).toEqual(remote);
  });

  test("etcd's error texts", async () => {
    await expect(fetchClusterFromPeers([await dead(), await dead()], undefined, 1000, quiet)).rejects.toThrow(
      "cannot fetch cluster info from peer urls: could not retrieve cluster information from the given URLs",
    );
    await expect(fetchClusterFromPeers([], undefined, 1000, quiet)).rejects.toThrow("could not retrieve cluster information from the given URLs");
    const empty = await server(() => encodeMembersResponse(7n, []) as { status: number; body: string });
    await expect(fetchClusterFromPeers([empty.url], undefined, 1000, quiet)).rejects.toThrow(
      "cannot fetch cluster info from peer urls: failed to get raft cluster member(s) from the given URLs",
    );
    // A header contradicting the body: that peer is skipped.
    const liar = await server(() => ({
      ...(encodeMembersResponse(7n, remote.members) as { status: number; body: string }),
      headers: { "x-tsetcd-cluster-id": "8" },
    }));
    await expect(fetchClusterFromPeers([liar.url], undefined, 1000, quiet)).rejects.toThrow("could not retrieve cluster information");
  });

  test("joinExistingCluster: our id and the cluster id from a running member", async () => {
    const port = await freePort();
    const me = `http://127.0.0.1:${port}`;
    let members: MemberInfo[] = [];
    const existing = await server(() => encodeMembersResponse(0xabcn, members) as { status: number; body: string });
    members = [m(0x1111n, "infra1", [existing.url], ["http://127.0.0.1:1"]), m(0x2222n, "", [me])];
    const initialCluster = new Map([
      ["infra1", [existing.url]],
      ["infra2", [me]],
    ]);
    const r = await joinExistingCluster({ name: "infra2", initialCluster, tls: undefined, timeoutMs: 1000, logger: quiet });
    expect(r).toEqual({ clusterId: 0xabcn, localId: 0x2222n, members });
  });
});
