// In-process members on loopback for driver tests: real Member objects (SQLite in temp dirs,
// the real peer transport), small timeouts, helpers to put/get and wait.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create } from "@bufbuild/protobuf";
import { PutRequestSchema, RangeRequestSchema } from "../gen/etcdserverpb/rpc_pb.js";
import { freePort } from "../testing/ports.js";
import { Member, type MemberConfig, type MemberDeps } from "./member.js";
import { transportNetwork, type NetworkHandlers } from "./peer-network.js";
import { log } from "../log.js";

// Members in the test process would fill its output with their info logs.
log.configure(process.env.TSETCD_TEST_LOG === "1" ? "info" : "error");
import type { MemberInfo } from "./member-info.js";

export const enc = (s: string) => new TextEncoder().encode(s);
export const dec = (b: Uint8Array) => new TextDecoder().decode(b);

export function baseConfig(name: string, dataDir: string, peerUrl: string, initialCluster: string, state: "new" | "existing" = "new"): MemberConfig {
  return {
    name,
    dataDir,
    initialAdvertisePeerUrls: [peerUrl],
    initialCluster,
    initialClusterToken: "review",
    initialClusterState: state,
    listenPeerUrls: [peerUrl],
    advertiseClientUrls: ["http://127.0.0.1:1"],
    heartbeatIntervalMs: 50,
    electionTimeoutMs: 500,
    snapshotCount: 10000,
    preVote: true,
    strictReconfigCheck: false,
    maxRequestBytes: 1.5 * 1024 * 1024,
    quotaBackendBytes: Infinity,
  };
}

export async function newCluster(n: number, tweak: (c: MemberConfig) => void = () => {}, deps: (c: MemberConfig) => MemberDeps = () => ({})) {
  const ports: number[] = [];
  for (let i = 0; i < n; i++) ports.push(await freePort());
  const urls = ports.map((p) => `http://127.0.0.1:${p}`);
  const ic = urls.map((u, i) => `m${i}=${u}`).join(",");
  const cfgs = urls.map((u, i) => {
    const c = baseConfig(`m${i}`, mkdtempSync(join(tmpdir(), "rev-")), u, ic);
    tweak(c);
    return c;
  });
  const members = await Promise.all(cfgs.map((c) => Member.open(c, deps(c))));
  const fatals: string[] = [];
  for (const m of members) m.onFatal = (r, e) => void fatals.push(`${m.config.name}: ${r} ${e ?? ""}`);
  await Promise.all(members.map((m) => m.start()));
  return { members, cfgs, fatals };
}

export async function joinMember(leader: Member, learner: boolean, tweak: (c: MemberConfig) => void = () => {}) {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const res = await leader.clusterOps.memberAdd([url], learner);
  const cfg = baseConfig("joiner", mkdtempSync(join(tmpdir(), "rev-")), url, "", "existing");
  cfg.initialCluster = `joiner=${url}`;
  cfg.joinCluster = async () => ({ clusterId: leader.clusterId, localId: res.member.id, members: leader.members() as MemberInfo[] });
  tweak(cfg);
  const m = await Member.open(cfg);
  return { m, cfg };
}

export const put = (m: Member, k: string, v: string) => m.propose({ case: "put", value: create(PutRequestSchema, { key: enc(k), value: enc(v) }) });
export async function get(m: Member, k: string, serializable = false): Promise<string | undefined> {
  const r = await m.kv.range(create(RangeRequestSchema, { key: enc(k), serializable }));
  return r.kvs[0] ? dec(r.kvs[0].value) : undefined;
}
export async function until(f: () => boolean, ms = 10000, what = "condition") {
  const end = Date.now() + ms;
  while (!f()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(10);
  }
}

/** The real transport, with the member's incoming Raft messages passed through `filter` (false: dropped). */
export function filteredNetwork(c: MemberConfig, filter: (m: Parameters<NetworkHandlers["onMessage"]>[0]) => boolean): MemberDeps {
  const real = transportNetwork({ listenUrls: c.listenPeerUrls, advertiseUrls: c.initialAdvertisePeerUrls, snapshotDir: join(c.dataDir, "member", "snap") });
  return { network: (ids, h) => real(ids, { ...h, onMessage: (m) => (filter(m) ? h.onMessage(m) : undefined) }) };
}
