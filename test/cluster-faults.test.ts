// Faults on a real 3-process cluster (issue 4): kill -9 of the leader under write load,
// SIGSTOP of the leader past the election timeout, and a network partition (through the peer
// proxies of test/harness/peer-proxy.ts) that leaves one member in the minority.
//
// Timing flags are etcd's defaults, given explicitly: --heartbeat-interval=100
// --election-timeout=1000 (ms).
//
// Binary: CLUSTER_BINARY=etcd runs these against /usr/bin/etcd; default bin/tsetcd.
import { afterEach, describe, expect, test } from "bun:test";
import { Cluster, CLUSTER_BIN, tableRecords } from "./harness/cluster.ts";
import { dec, enc } from "./harness/grpc-client.ts";
import { ETCDCTL_BIN, requireTools } from "./harness/tools.ts";

const ELECTION_MS = 1000;
const TIMING = ["--heartbeat-interval=100", `--election-timeout=${ELECTION_MS}`];

const haveTools = requireTools([CLUSTER_BIN, ETCDCTL_BIN]);
let cluster: Cluster | undefined;
afterEach(async () => {
  await cluster?.destroy();
  cluster = undefined;
});

/** Wait until every running member reports the same revision; returns it. */
async function waitSameRevision(c: Cluster, timeoutMs = 15_000): Promise<bigint> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const sts = await c.statuses();
    const revs = new Set(sts.map((s) => (s instanceof Error ? `error: ${s.message}` : String(s.revision))));
    if (revs.size === 1 && !sts.some((s) => s instanceof Error)) return (sts[0] as { revision: bigint }).revision;
    if (Date.now() > deadline) throw new Error(`members disagree on the revision: ${[...revs].join(", ")}`);
    await Bun.sleep(100);
  }
}

describe.skipIf(!haveTools)("faults", () => {
  test("kill -9 the leader under write load: quick failover, no acknowledged write lost", async () => {
    cluster = await Cluster.start({ args: TIMING });
    const c = cluster;
    const acked = new Map<string, string>();
    let stop = false;
    let errors = 0;
    const ackTimes: number[] = [];
    const WRITERS = 8;
    const writer = async (w: number) => {
      let target = w % c.members.length;
      for (let i = 0; !stop; i++) {
        const m = c.members[target]!;
        const key = `k/${w}/${i}`;
        const value = `v${w}.${i}`;
        try {
          if (!m.running) throw new Error("down");
          await m.client.kv.put({ key: enc(key), value: enc(value) }, { timeoutMs: 3000 });
          acked.set(key, value);
          ackTimes.push(Date.now());
        } catch {
          errors++;
          target = (target + 1) % c.members.length; // try another member
          await Bun.sleep(20);
        }
      }
    };
    const writers = Array.from({ length: WRITERS }, (_, w) => writer(w));
    await Bun.sleep(1000);
    const old = await c.leader();
    const oldId = (await old.status()).id;
    const before = acked.size;
    const t0 = Date.now();
    await old.kill9();
    const { leader, term } = await c.waitLeader({ notId: oldId, timeoutMs: 10 * ELECTION_MS });
    const failoverMs = Date.now() - t0;
    console.log(`kill -9 leader ${old.name}: new leader ${leader.name} (term ${term}) after ${failoverMs} ms; ${before} writes acked before`);
    // Detection takes one randomized election timeout [1, 2) x 1000 ms, then one vote round.
    expect(failoverMs).toBeLessThan(3 * ELECTION_MS);
    // Writes resume: acknowledgements after the new leader was seen.
    const tLeader = Date.now();
    const resumeDeadline = tLeader + 5000;
    while (ackTimes.filter((t) => t > tLeader).length < 50 && Date.now() < resumeDeadline) await Bun.sleep(50);
    expect(ackTimes.filter((t) => t > tLeader).length).toBeGreaterThanOrEqual(50);
    stop = true;
    await Promise.all(writers);
    console.log(`acked ${acked.size} writes, ${errors} errors`);

    // Restart everything (the crashed one too) and compare.
    await Promise.all(c.members.map((m) => m.kill9()));
    await c.restartStopped();
    await c.waitLeader();
    const revision = await waitSameRevision(c);
    for (const m of c.members) {
      const r = await m.client.kv.range({ key: enc("k/"), rangeEnd: enc("k0"), serializable: true }, { timeoutMs: 5000 });
      const got = new Map(r.kvs.map((kv) => [dec(kv.key), dec(kv.value)]));
      const missing = [...acked].filter(([k, v]) => got.get(k) !== v);
      expect(missing).toEqual([]);
      expect(r.header!.revision).toBe(revision);
    }
    const hk = await c.ctl(["endpoint", "hashkv", "--cluster", "-w", "table"]);
    expect(hk.code).toBe(0);
    const hashes = tableRecords(hk.stdout);
    expect(hashes.length).toBe(3);
    expect(new Set(hashes.map((h) => h.HASH)).size).toBe(1);
  }, 60_000);

  test("SIGSTOP the leader past the election timeout: it steps down, no stale read after SIGCONT", async () => {
    cluster = await Cluster.start({ args: TIMING });
    const c = cluster;
    const old = await c.leader();
    const oldId = (await old.status()).id;
    expect((await old.ctl(["put", "k", "old"])).code).toBe(0);
    old.sigstop();
    const others = c.members.filter((m) => m !== old);
    const { leader } = await c.waitLeader({ among: others, notId: oldId, timeoutMs: 10 * ELECTION_MS });
    const put = await leader.ctl(["put", "k", "new"]);
    expect([put.code, put.stdout]).toEqual([0, "OK\n"]);
    await Bun.sleep(ELECTION_MS); // stopped well past the election timeout
    old.sigcont();
    // At once, before it has necessarily heard of the new term: linearizable reads through it.
    const reads = await Promise.all(
      Array.from({ length: 5 }, () =>
        old.client.kv
          .range({ key: enc("k") }, { timeoutMs: 5000 })
          .then((r) => (r.kvs[0] ? dec(r.kvs[0].value) : "<absent>"))
          .catch((e: unknown) => `error: ${(e as Error).message}`),
      ),
    );
    const viaCtl = await old.ctl(["get", "k", "--print-value-only"]);
    console.log(
      `reads through the resumed old leader: ${JSON.stringify(reads)}; etcdctl: ${JSON.stringify([viaCtl.code, viaCtl.stdout, viaCtl.stderr.trim().split("\n").pop()])}`,
    );
    for (const r of reads) expect(r === "new" || r.startsWith("error: ")).toBe(true);
    expect(viaCtl.code === 0 ? viaCtl.stdout : "new\n").toBe("new\n");
    // It is a follower of the new leader now.
    const after = await c.waitLeader({ timeoutMs: 10 * ELECTION_MS });
    const st = await old.status();
    expect(st.leader).not.toBe(oldId);
    expect(after.leader).not.toBe(old);
  }, 60_000);

  test("partition: the minority member cannot commit nor read linearizably; heals without disruption", async () => {
    // --pre-vote=true: without it (etcd 3.4's default is false) the cut-off member keeps
    // raising its term while campaigning, and on heal its higher term makes the leader step
    // down (etcd 3.4 then shows a new term, often the same leader). Pre-vote is what keeps a
    // rejoining member from disrupting the leader, which this test checks.
    cluster = await Cluster.start({ args: [...TIMING, "--pre-vote=true"], proxies: true });
    const c = cluster;
    const before = await c.waitLeader();
    const leader = before.leader;
    const minority = c.members.find((m) => m !== leader)!;
    expect((await leader.ctl(["put", "k", "v1"])).code).toBe(0);
    await waitSameRevision(c);

    c.isolate(minority);
    await Bun.sleep(200);
    const majority = c.members.filter((m) => m !== minority);
    // The majority side commits.
    const okPut = await leader.ctl(["put", "k", "v2"]);
    expect([okPut.code, okPut.stdout]).toEqual([0, "OK\n"]);
    // Through the minority member: no commit, no linearizable read (error or timeout).
    let grpcPut = "ok";
    const [put, lget, sget] = await Promise.all([
      minority.ctl(["put", "k", "v3", "--command-timeout=3s"]),
      minority.ctl(["get", "k", "--consistency=l", "--command-timeout=3s"]),
      minority.ctl(["get", "k", "--consistency=s", "--command-timeout=3s"]),
      minority.client.kv.put({ key: enc("k"), value: enc("v4") }, { timeoutMs: 3000 }).catch((e: unknown) => (grpcPut = (e as Error).message)),
    ]);
    const last = (s: string) => s.trim().split("\n").pop();
    console.log(
      `minority ${minority.name}: put -> ${put.code} ${JSON.stringify(last(put.stderr))}; get -l -> ${lget.code} ${JSON.stringify(last(lget.stderr))}; get -s -> ${sget.code} ${JSON.stringify(sget.stdout)}; grpc put -> ${grpcPut}`,
    );
    expect(put.code).not.toBe(0);
    expect(put.stdout).toBe("");
    expect(lget.code).not.toBe(0);
    expect(lget.stdout).toBe("");
    expect(grpcPut).not.toBe("ok");
    // A serializable read may answer, from the member's own (old) state.
    if (sget.code === 0) expect(sget.stdout).toBe("k\nv1\n");
    // The majority still has the leader it had, and nothing from the minority was committed.
    const during = await c.waitLeader({ among: majority });
    expect(during.leader).toBe(leader);
    expect((await leader.ctl(["get", "k", "--print-value-only"])).stdout).toBe("v2\n");

    c.heal();
    const deadline = Date.now() + 15_000;
    let rejoined = false;
    while (!rejoined && Date.now() < deadline) {
      const st = await minority.status().catch(() => null);
      rejoined = st !== null && st.leader === (await leader.status()).id;
      if (!rejoined) await Bun.sleep(100);
    }
    expect(rejoined).toBe(true);
    await waitSameRevision(c);
    // The minority's timed-out puts had unknown outcomes: the proxy holds (does not drop) what
    // was in flight, so a proposal the member forwarded may reach the leader after the heal
    // and commit then (etcd does this). Any of the three values is right; all members agree.
    const got = await minority.ctl(["get", "k", "--print-value-only"]);
    expect(["v2\n", "v3\n", "v4\n"]).toContain(got.stdout);
    expect((await leader.ctl(["get", "k", "--print-value-only", "--consistency=s"])).stdout).toBe(got.stdout);
    const after = await c.waitLeader();
    expect(after.leader).toBe(leader);
    expect(after.term).toBe(before.term);
  }, 60_000);
});
