// Linearizability of a real 3-process cluster under faults (issue 4): concurrent clients
// run put / linearizable get / compare-and-swap (txn) on a few keys through all members
// while a nemesis kills (-9, then restarts), pauses (SIGSTOP/SIGCONT) and partitions (peer
// proxies) one member at a time. Every call is recorded with its invocation and response
// time; an error or timeout is recorded as "outcome unknown" (it may or may not have taken
// effect). The history is checked with the project's checker (src/testing/linearizability).
//
// Binary: CLUSTER_BINARY=etcd runs this against /usr/bin/etcd; default bin/tsetcd.
// Timing: --heartbeat-interval=100 --election-timeout=1000 (etcd's defaults).
import { afterEach, describe, expect, test } from "bun:test";
import { create } from "@bufbuild/protobuf";
import { Cluster, CLUSTER_BIN, type ClusterMember } from "./harness/cluster.ts";
import { dec, enc } from "./harness/grpc-client.ts";
import { ETCDCTL_BIN, requireTools } from "./harness/tools.ts";
import { checkLinearizable } from "../src/testing/linearizability/check.ts";
import type { Operation } from "../src/testing/linearizability/history.ts";
import { kvModel, type KvInput, type KvOutput } from "../src/testing/linearizability/model.ts";
import { mulberry32, randInt } from "../src/testing/prng.ts";
import { CompareSchema, Compare_CompareResult, Compare_CompareTarget, PutRequestSchema, RequestOpSchema } from "../src/gen/etcdserverpb/rpc_pb.js";

const haveTools = requireTools([CLUSTER_BIN, ETCDCTL_BIN]);
const NEMESIS_MS = Number(process.env.CLUSTER_HISTORY_MS ?? 25_000);
const CLIENTS = 6;
const KEYS = ["x", "y", "z"];
const OP_TIMEOUT_MS = 2000;
const SEED = Number(process.env.CLUSTER_HISTORY_SEED ?? Date.now() % 1_000_000);

type Op = Operation<KvInput, KvOutput>;

let cluster: Cluster | undefined;
afterEach(async () => {
  await cluster?.destroy();
  cluster = undefined;
});

async function runOp(m: ClusterMember, input: KvInput): Promise<KvOutput> {
  const key = enc(input.key);
  switch (input.op) {
    case "get": {
      const r = await m.client.kv.range({ key }, { timeoutMs: OP_TIMEOUT_MS });
      return r.kvs[0] ? dec(r.kvs[0].value) : null;
    }
    case "put":
      await m.client.kv.put({ key, value: enc(input.value) }, { timeoutMs: OP_TIMEOUT_MS });
      return null;
    case "cas": {
      const compare =
        input.expected === null
          ? create(CompareSchema, {
              key,
              result: Compare_CompareResult.EQUAL,
              target: Compare_CompareTarget.CREATE,
              targetUnion: { case: "createRevision", value: 0n },
            })
          : create(CompareSchema, {
              key,
              result: Compare_CompareResult.EQUAL,
              target: Compare_CompareTarget.VALUE,
              targetUnion: { case: "value", value: enc(input.expected) },
            });
      const put = create(RequestOpSchema, {
        request: { case: "requestPut", value: create(PutRequestSchema, { key, value: enc(input.value) }) },
      });
      const r = await m.client.kv.txn({ compare: [compare], success: [put] }, { timeoutMs: OP_TIMEOUT_MS });
      return r.succeeded;
    }
    case "del":
      await m.client.kv.deleteRange({ key }, { timeoutMs: OP_TIMEOUT_MS });
      return null;
  }
}

describe.skipIf(!haveTools)("history", () => {
  test("concurrent clients under kill -9 / SIGSTOP / partition: linearizable", async () => {
    console.log(`seed ${SEED} (CLUSTER_HISTORY_SEED=${SEED} to replay the nemesis schedule)`);
    const rand = mulberry32(SEED);
    cluster = await Cluster.start({ proxies: true, args: ["--heartbeat-interval=100", "--election-timeout=1000"] });
    const c = cluster;
    const t0 = performance.now();
    const now = () => performance.now() - t0;
    const history: Op[] = [];
    let stop = false;
    let acked = 0;
    let failed = 0;

    const client = async (id: number) => {
      const r = mulberry32(SEED * 31 + id);
      let target = id % c.members.length;
      const lastSeen = new Map<string, string | null>();
      for (let n = 0; !stop; n++) {
        const key = KEYS[randInt(r, KEYS.length)]!;
        const roll = r();
        const input: KvInput =
          roll < 0.4
            ? { op: "get", key }
            : roll < 0.8
              ? { op: "put", key, value: `c${id}.${n}` }
              : { op: "cas", key, expected: lastSeen.get(key) ?? null, value: `c${id}.${n}` };
        const m = c.members[target]!;
        const op: Op = { clientId: id, input, call: now() };
        history.push(op);
        try {
          if (!m.running) throw new Error("member down");
          const out = await runOp(m, input);
          op.ret = now();
          op.output = out;
          acked++;
          if (input.op === "get") lastSeen.set(key, out as string | null);
          else if (input.op === "put" || out === true) lastSeen.set(key, input.value);
        } catch {
          // Outcome unknown: leave ret undefined. Try another member after a short pause.
          failed++;
          target = randInt(r, c.members.length);
          await Bun.sleep(100);
        }
        await Bun.sleep(5);
      }
    };
    const clients = Array.from({ length: CLIENTS }, (_, i) => client(i));

    const faults: string[] = [];
    const nemesisEnd = Date.now() + NEMESIS_MS;
    while (Date.now() < nemesisEnd) {
      await Bun.sleep(700 + randInt(rand, 600));
      // Half the faults hit the leader (elections), half a random member.
      let m = c.members[randInt(rand, c.members.length)]!;
      if (rand() < 0.5) m = await c.leader(5000).catch(() => m);
      const kind = ["kill", "pause", "partition"][randInt(rand, 3)]!;
      const hold = 1500 + randInt(rand, 1500);
      faults.push(`${Math.round(now())}ms ${kind} ${m.name} ${hold}ms`);
      if (kind === "kill") {
        await m.kill9();
        await Bun.sleep(hold);
        await m.restart();
      } else if (kind === "pause") {
        m.sigstop();
        await Bun.sleep(hold);
        m.sigcont();
      } else {
        c.isolate(m);
        await Bun.sleep(hold);
        c.heal();
      }
    }
    console.log(`faults: ${faults.join("; ")}`);
    // Quiet period: everything healed, let the clients finish with a working cluster.
    await c.waitLeader({ timeoutMs: 15_000 });
    await Bun.sleep(1000);
    stop = true;
    await Promise.all(clients);

    const byKind = (k: KvInput["op"]) => history.filter((o) => o.input.op === k && o.ret !== undefined).length;
    console.log(`${history.length} operations: ${acked} answered (${byKind("get")} get, ${byKind("put")} put, ${byKind("cas")} cas), ${failed} unknown`);
    // Enough for the check to mean something: successes of every kind on every key.
    expect(acked).toBeGreaterThan(500);
    for (const k of ["get", "put", "cas"] as const) expect(byKind(k)).toBeGreaterThan(50);
    const tc = Date.now();
    const result = checkLinearizable(kvModel, history, { timeoutMs: 30_000 });
    console.log(`checked in ${Date.now() - tc} ms: ${JSON.stringify(result.ok)}`);
    if (result.ok === false) console.log(result.explanation.split("\n").slice(-40).join("\n"));
    expect(result.ok).toBe(true);
  }, 90_000);
});
