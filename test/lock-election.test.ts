// Lock and Election (etcd's v3lock and v3election services) and the etcdctl
// commands built on the same recipes (`etcdctl lock`, `etcdctl elect`, which
// run clientv3/concurrency client-side over txn + watch + lease).
//
// The gRPC scenarios run on bin/tsetcd and on real etcd 3.4 and must print the
// same transcript (lease ids and the ids in keys are given symbolic names, and
// cluster/member ids and raft terms are dropped); the facts that matter are
// also asserted on tsetcd's transcript directly.
// To check the test itself: TSETCD_BINARY=/usr/bin/etcd.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { KV, Lease } from "../src/gen/etcdserverpb/rpc_pb.js";
import { Election } from "../src/gen/v3electionpb/v3election_pb.js";
import { Lock } from "../src/gen/v3lockpb/v3lock_pb.js";
import { etcdctl } from "./harness/etcdctl.ts";
import { Cluster } from "./harness/cluster.ts";
import { type Member, startMember, startRealEtcd } from "./harness/server.ts";
import { ETCD_BIN, ETCDCTL_BIN, SUBJECT_BIN, requireTools } from "./harness/tools.ts";

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);

function clients(url: string) {
  const t = createGrpcTransport({ baseUrl: url });
  return { kv: createClient(KV, t), lease: createClient(Lease, t), lock: createClient(Lock, t), election: createClient(Election, t) };
}

/** Settles with "pending" if `p` has not settled within `ms`. */
async function within<T>(p: Promise<T>, ms: number): Promise<T | "pending"> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const r = await Promise.race([p, new Promise<"pending">((res) => (timer = setTimeout(() => res("pending"), ms)))]);
  clearTimeout(timer);
  return r;
}

async function errorOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return "no error";
  } catch (err) {
    const e = ConnectError.from(err);
    return `error ${Code[e.code]}: ${e.rawMessage}`;
  }
}

/** A transcript with server-specific ids replaced: lease ids (decimal and hex) become L1, L2, ... */
class Transcript {
  readonly lines: string[] = [];
  private readonly names = new Map<string, string>();

  lease(id: bigint): string {
    const dec = id.toString();
    let n = this.names.get(dec);
    if (n === undefined) {
      n = `L${this.names.size / 2 + 1}`;
      this.names.set(dec, n);
      this.names.set(id.toString(16), n);
    }
    return n;
  }

  /** Adds `what: value` with bytes as text, int64s as numbers and headers reduced to their revision. */
  add(what: string, value: unknown): void {
    let s =
      typeof value === "string"
        ? value
        : JSON.stringify(value, (k, v) => {
            if (k === "$typeName" || k === "clusterId" || k === "memberId" || k === "raftTerm") return undefined;
            if (typeof v === "bigint") {
              if (k === "lease" || k === "ID") return v === 0n ? "0" : this.lease(v);
              return Number(v);
            }
            if (v instanceof Uint8Array) return dec(v);
            return v;
          });
    for (const [id, name] of this.names) s = s.replaceAll(id, name);
    this.lines.push(`${what}: ${s}`);
  }
}

/** Locks: queueing, reentry by lease, unlock, errors, a canceled waiter, release by lease expiry, session leases. */
async function lockScenario(url: string): Promise<string[]> {
  const c = clients(url);
  const t = new Transcript();
  const grant = async (ttl: number) => {
    const r = await c.lease.leaseGrant({ TTL: BigInt(ttl) });
    t.lease(r.ID);
    return r.ID;
  };
  const a = await grant(30);
  const b = await grant(30);

  const l1 = await c.lock.lock({ name: enc("lk"), lease: a });
  t.add("lock A", l1);
  t.add("lock A again", await c.lock.lock({ name: enc("lk"), lease: a }));
  const waitingB = c.lock.lock({ name: enc("lk"), lease: b });
  t.add("lock B while A holds", String(await within(waitingB, 500)));
  t.add("queue", (await c.kv.range({ key: enc("lk/"), rangeEnd: enc("lk0") })).kvs);
  t.add("unlock A", await c.lock.unlock({ key: l1.key }));
  t.add("lock B", await within(waitingB, 5000));
  t.add("lock with an unknown lease", await errorOf(c.lock.lock({ name: enc("lk"), lease: 12345n })));

  // A waiter whose caller goes away leaves the queue.
  const ac = new AbortController();
  const waitingA = c.lock.lock({ name: enc("lk"), lease: a }, { signal: ac.signal });
  t.add("lock A while B holds", String(await within(waitingA, 500)));
  t.add(
    "queue",
    (await c.kv.range({ key: enc("lk/"), rangeEnd: enc("lk0"), keysOnly: true })).kvs.map((kv) => dec(kv.key)),
  );
  ac.abort();
  await waitingA.catch(() => {});
  let keys: string[] = [];
  for (let i = 0; i < 50; i++) {
    keys = (await c.kv.range({ key: enc("lk/"), rangeEnd: enc("lk0"), keysOnly: true })).kvs.map((kv) => dec(kv.key));
    if (keys.length === 1) break;
    await Bun.sleep(100);
  }
  t.add("queue after the waiter was canceled", keys);

  // The server never keeps a lock's lease alive: its expiry releases the lock.
  const short = await grant(2);
  t.add("lock X on a 2 s lease", await c.lock.lock({ name: enc("lx"), lease: short }));
  const started = performance.now();
  const next = await within(c.lock.lock({ name: enc("lx"), lease: a }), 6000);
  t.add("lock X by A after the lease expired", next === "pending" ? "pending" : { key: next.key, waitedOver1s: performance.now() - started > 1000 });

  // Lease 0: a fresh 60 s lease, never renewed by the server.
  const l0 = await c.lock.lock({ name: enc("ln") });
  const id = BigInt("0x" + dec(l0.key).slice("ln/".length));
  t.lease(id);
  t.add("lock with lease 0", l0);
  const ttl = await c.lease.leaseTimeToLive({ ID: id });
  t.add("its lease", { grantedTTL: ttl.grantedTTL, alive: ttl.TTL > 0n });
  t.add("unlock without a key", await errorOf(c.lock.unlock({})));
  t.add("unlock of an absent key", await c.lock.unlock({ key: enc("nothing") }));
  return t.lines;
}

/** Elections: campaign, queueing, proclaim, observe, resign, and every error. */
async function electionScenario(url: string): Promise<string[]> {
  const c = clients(url);
  const t = new Transcript();
  const a = (await c.lease.leaseGrant({ TTL: 30n })).ID;
  const b = (await c.lease.leaseGrant({ TTL: 30n })).ID;
  t.lease(a);
  t.lease(b);
  const name = enc("el");

  t.add("leader of an empty election", await errorOf(c.election.leader({ name })));
  const observed: unknown[] = [];
  const ac = new AbortController();
  const observing = (async () => {
    for await (const r of c.election.observe({ name }, { signal: ac.signal })) observed.push({ header: r.header, kv: r.kv });
  })().catch(() => {});
  await Bun.sleep(300);

  const ca = await c.election.campaign({ name, lease: a, value: enc("a1") });
  t.add("campaign A", ca);
  const la = ca.leader!;
  const waitingB = c.election.campaign({ name, lease: b, value: enc("b1") });
  t.add("campaign B while A leads", String(await within(waitingB, 500)));
  t.add("proclaim A", await c.election.proclaim({ leader: la, value: enc("a2") }));
  t.add("leader", await c.election.leader({ name }));
  t.add("campaign A again, new value", await c.election.campaign({ name, lease: a, value: enc("a3") }));
  t.add("resign A", await c.election.resign({ leader: la }));
  const cb = await within(waitingB, 5000);
  t.add("campaign B", cb);
  t.add("leader", await c.election.leader({ name }));
  t.add("proclaim by A after resigning", await errorOf(c.election.proclaim({ leader: la, value: enc("x") })));
  t.add("resign A again", await c.election.resign({ leader: la }));
  t.add("proclaim without leader", await errorOf(c.election.proclaim({ value: enc("x") })));
  t.add("resign without leader", await errorOf(c.election.resign({})));
  t.add("campaign with an unknown lease", await errorOf(c.election.campaign({ name, lease: 999n, value: enc("x") })));
  if (cb !== "pending") {
    t.add("proclaim B", await c.election.proclaim({ leader: cb.leader!, value: enc("b2") }));
    t.add("resign B", await c.election.resign({ leader: cb.leader! }));
  }
  t.add("leader after B resigned", await errorOf(c.election.leader({ name })));
  const cc = await c.election.campaign({ name, lease: b, value: enc("b3") });
  t.add("campaign B again", cc);
  for (let i = 0; i < 50 && observed.length < 6; i++) await Bun.sleep(100);
  ac.abort();
  await observing;
  t.add("observed", observed);
  return t.lines;
}

/** Gateway answers (status and body) for the error cases. */
async function gatewayErrors(url: string): Promise<string[]> {
  const b64 = (s: string) => Buffer.from(s).toString("base64");
  const out: string[] = [];
  const calls: Array<[string, object]> = [
    ["lock/lock", { name: b64("g"), lease: "12345" }],
    ["lock/unlock", {}],
    ["election/leader", { name: b64("nobody") }],
    ["election/proclaim", {}],
    ["election/resign", {}],
    ["election/proclaim", { leader: { name: b64("g"), key: b64("g/1"), rev: "1", lease: "0" }, value: b64("v") }],
    ["election/campaign", { name: b64("g"), lease: "999", value: b64("v") }],
  ];
  for (const [path, body] of calls) {
    const r = await fetch(`${url}/v3/${path}`, { method: "POST", body: JSON.stringify(body), signal: AbortSignal.timeout(5000) });
    out.push(`${path} ${JSON.stringify(body)} -> ${r.status} ${await r.text()}`);
  }
  // And a lock taken and released (ids masked; the key's lease id too).
  const mask = (t: string) =>
    t.replace(/"(cluster_id|member_id|raft_term)":"\d+"/g, '"$1":"<$1>"').replace(
      /"key":"([^"]+)"/g,
      (_m, k: string) =>
        `"key":"${Buffer.from(k, "base64")
          .toString()
          .replace(/[0-9a-f]+$/, "<lease>")}"`,
    );
  const post = (path: string, body: object) => fetch(`${url}/v3/${path}`, { method: "POST", body: JSON.stringify(body), signal: AbortSignal.timeout(5000) });
  const locked = await post("lock/lock", { name: b64("gl") });
  const lockText = await locked.text();
  out.push(`lock/lock -> ${locked.status} ${mask(lockText)}`);
  const unlocked = await post("lock/unlock", { key: JSON.parse(lockText).key });
  out.push(`lock/unlock -> ${unlocked.status} ${mask(await unlocked.text())}`);
  return out;
}

/** POST /v3/election/observe while campaign/proclaim/resign/campaign run through the gateway: the lines it streams. */
async function gatewayObserve(url: string): Promise<string[]> {
  const b64 = (s: string) => Buffer.from(s).toString("base64");
  const post = async (path: string, body: object) => {
    const r = await fetch(`${url}/v3/${path}`, { method: "POST", body: JSON.stringify(body), signal: AbortSignal.timeout(5000) });
    return (await r.json()) as any;
  };
  const name = b64("gw-el");
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), 10_000);
  // The response (headers included) only comes with the first leader.
  const res = fetch(`${url}/v3/election/observe`, { method: "POST", body: JSON.stringify({ name }), signal: ac.signal });
  await Bun.sleep(300);
  const a = await post("election/campaign", { name, value: b64("v1") });
  await post("election/proclaim", { leader: a.leader, value: b64("v2") });
  await post("election/resign", { leader: a.leader });
  await post("election/campaign", { name, value: b64("v3") });
  const lines: string[] = [];
  try {
    const r = await res;
    lines.push(`status ${r.status} ${r.headers.get("content-type")}`);
    const reader = r.body!.getReader();
    let text = "";
    while (text.split("\n").length <= 3) {
      const { done, value } = await reader.read();
      if (done) break;
      text += new TextDecoder().decode(value);
    }
    lines.push(...text.trim().split("\n"));
  } catch (err) {
    lines.push(`error ${(err as Error).message}`);
  } finally {
    clearTimeout(timer);
    ac.abort();
  }
  // Mask what differs between servers: ids, terms, and the lease id in keys.
  return lines.map((l) =>
    l.replace(/"(cluster_id|member_id|raft_term|lease)":"\d+"/g, '"$1":"<$1>"').replace(
      /"key":"([^"]+)"/g,
      (_m, k: string) =>
        `"key":"${Buffer.from(k, "base64")
          .toString()
          .replace(/[0-9a-f]+$/, "<lease>")}"`,
    ),
  );
}

// ---- etcdctl --------------------------------------------------------------------------------

function ctlEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith("ETCDCTL_")) env[k] = v;
  env.ETCDCTL_API = "3";
  return env;
}

interface Running {
  proc: ReturnType<typeof Bun.spawn>;
  out: () => string;
  /** Resolves when stdout contains `text` (false after `ms`). */
  printed: (text: string, ms: number) => Promise<boolean>;
  done: Promise<number | null>;
}

/** Starts `etcdctl --endpoints=URL ...args` in the background, collecting stdout+stderr. */
function spawnCtl(url: string, args: string[]): Running {
  const proc = Bun.spawn([ETCDCTL_BIN, `--endpoints=${url}`, ...args], { env: ctlEnv(), stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  let text = "";
  const read = async (s: ReadableStream<Uint8Array>) => {
    const d = new TextDecoder();
    const reader = s.getReader();
    for (let r = await reader.read(); !r.done; r = await reader.read()) text += d.decode(r.value, { stream: true });
  };
  const pumps = Promise.all([read(proc.stdout as ReadableStream<Uint8Array>), read(proc.stderr as ReadableStream<Uint8Array>)]);
  const killer = setTimeout(() => proc.kill("SIGKILL"), 30_000); // never outlive the test
  const done = proc.exited.then(async (code) => {
    clearTimeout(killer);
    await pumps;
    return code;
  });
  return {
    proc,
    out: () => text,
    done,
    async printed(s, ms) {
      const end = performance.now() + ms;
      while (!text.includes(s)) {
        if (performance.now() > end) return false;
        await Bun.sleep(50);
      }
      return true;
    },
  };
}

/** `etcdctl elect`: an observer, a leader, a second candidate, the leader interrupted; both outputs. */
async function electCtlScenario(url: string): Promise<{ observer: string; first: string; second: string }> {
  const observer = spawnCtl(url, ["elect", "-l", "ctl-el"]);
  await Bun.sleep(500);
  const first = spawnCtl(url, ["elect", "ctl-el", "p1"]);
  expect(await first.printed("p1", 5000)).toBe(true);
  const second = spawnCtl(url, ["elect", "ctl-el", "p2"]);
  await Bun.sleep(500);
  expect(second.out()).toBe(""); // not elected while p1 leads
  expect(await observer.printed("p1", 5000)).toBe(true);
  first.proc.kill("SIGINT"); // resigns
  expect(await first.done).toBe(0);
  expect(await second.printed("p2", 5000)).toBe(true);
  expect(await observer.printed("p2", 5000)).toBe(true);
  second.proc.kill("SIGINT");
  observer.proc.kill("SIGINT");
  await Promise.all([second.done, observer.done]);
  // Keys carry the session's lease id.
  const mask = (s: string) => s.replace(/ctl-el\/[0-9a-f]+/g, "ctl-el/<lease>");
  return { observer: mask(observer.out()), first: mask(first.out()), second: mask(second.out()) };
}

// ---- tests ----------------------------------------------------------------------------------

const haveTools = requireTools([SUBJECT_BIN, ETCD_BIN, ETCDCTL_BIN]);

describe.skipIf(!haveTools)("Lock and Election", () => {
  let ours: Member;
  let etcd: Member;

  beforeAll(async () => {
    [ours, etcd] = await Promise.all([startMember(), startRealEtcd()]);
  });
  afterAll(async () => {
    await Promise.all([ours?.stop(), etcd?.stop()]);
  });

  test("Lock/Unlock over gRPC: same transcript as etcd 3.4", async () => {
    const [mine, theirs] = await Promise.all([lockScenario(ours.clientUrl), lockScenario(etcd.clientUrl)]);
    expect(mine).toEqual(theirs);
    const line = (p: string) => mine.find((l) => l.startsWith(p + ": "))!;
    expect(line("lock A")).toContain('"key":"lk/L1"');
    expect(line("lock B while A holds")).toBe("lock B while A holds: pending");
    expect(line("lock B")).toContain('"key":"lk/L2"');
    expect(line("lock with an unknown lease")).toBe("lock with an unknown lease: error Unknown: etcdserver: requested lease not found");
    expect(line("queue after the waiter was canceled")).toBe('queue after the waiter was canceled: ["lk/L2"]');
    expect(line("lock X by A after the lease expired")).toBe('lock X by A after the lease expired: {"key":"lx/L1","waitedOver1s":true}');
    expect(line("its lease")).toBe('its lease: {"grantedTTL":60,"alive":true}');
    expect(line("unlock without a key")).toBe("unlock without a key: error Unknown: etcdserver: key is not provided");
  }, 30_000);

  test("Campaign/Proclaim/Leader/Observe/Resign over gRPC: same transcript as etcd 3.4", async () => {
    const [mine, theirs] = await Promise.all([electionScenario(ours.clientUrl), electionScenario(etcd.clientUrl)]);
    expect(mine).toEqual(theirs);
    const line = (p: string) => mine.find((l) => l.startsWith(p + ": "))!;
    expect(line("leader of an empty election")).toBe("leader of an empty election: error Unknown: election: no leader");
    expect(line("campaign B while A leads")).toBe("campaign B while A leads: pending");
    expect(line("proclaim by A after resigning")).toBe("proclaim by A after resigning: error Unknown: election: not leader");
    expect(line("proclaim without leader")).toBe('proclaim without leader: error Unknown: "leader" field must be provided');
    const observed = JSON.parse(line("observed").slice("observed: ".length)) as Array<{ kv: { value: string } }>;
    expect(observed.map((o) => o.kv.value)).toEqual(["a1", "a2", "a3", "b1", "b2", "b3"]);
  }, 30_000);

  test("gateway: the same statuses and bodies as etcd 3.4 for the error cases and a lock/unlock", async () => {
    const [mine, theirs] = await Promise.all([gatewayErrors(ours.clientUrl), gatewayErrors(etcd.clientUrl)]);
    expect(mine).toEqual(theirs);
    expect(mine[2]).toContain('-> 500 {"error":"election: no leader","message":"election: no leader","code":2}');
    expect(mine.at(-2)).toMatch(/^lock\/lock -> 200 \{"header":\{.*"revision":"\d+".*\},"key":"gl\/<lease>"\}$/);
  }, 30_000);

  test("gateway: POST /v3/election/observe streams what etcd 3.4 streams", async () => {
    const [mine, theirs] = await Promise.all([gatewayObserve(ours.clientUrl), gatewayObserve(etcd.clientUrl)]);
    expect(mine).toEqual(theirs);
    expect(mine[0]).toBe("status 200 application/json");
    expect(mine.slice(1).map((l) => Buffer.from(JSON.parse(l).result.kv.value, "base64").toString())).toEqual(["v1", "v2", "v3"]);
  }, 30_000);

  test("etcdctl lock: contenders in parallel never overlap", async () => {
    const dir = mkdtempSync(join(tmpdir(), "tsetcd-lock-"));
    try {
      const file = join(dir, "log");
      // Without the lock the four 0.3 s critical sections would interleave.
      const body = `echo "in $1" >> ${file}; sleep 0.3; echo "out $1" >> ${file}`;
      const runs = [1, 2, 3, 4].map((i) => spawnCtl(ours.clientUrl, ["lock", "--ttl=5", "ctl-lock", "--", "sh", "-c", body, "sh", String(i)]));
      const codes = await Promise.all(runs.map((r) => r.done));
      expect(codes).toEqual([0, 0, 0, 0]);
      const lines = readFileSync(file, "utf8").trim().split("\n");
      expect(lines.length).toBe(8);
      for (let i = 0; i < 8; i += 2) {
        const who = lines[i]!.slice(3);
        expect([lines[i], lines[i + 1]]).toEqual([`in ${who}`, `out ${who}`]);
      }
      // Every contender released its key.
      const left = await etcdctl(ours.clientUrl, ["get", "--prefix", "ctl-lock/", "--keys-only"]);
      expect(left.stdout).toBe("");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 30_000);

  test("etcdctl lock: a holder killed with SIGKILL loses the lock when its lease expires", async () => {
    const holder = spawnCtl(ours.clientUrl, ["lock", "--ttl=2", "ctl-kill"]);
    expect(await holder.printed("ctl-kill/", 5000)).toBe(true);
    const waiter = spawnCtl(ours.clientUrl, ["lock", "--ttl=5", "ctl-kill", "echo", "acquired"]);
    expect(await waiter.printed("acquired", 700)).toBe(false);
    holder.proc.kill("SIGKILL");
    const killedAt = performance.now();
    await holder.done;
    // The lease (TTL 2 s, last renewed at most ~0.7 s before the kill) expires within TTL + 1 s.
    expect(await waiter.printed("acquired", 4000)).toBe(true);
    const waited = performance.now() - killedAt;
    expect(waited).toBeGreaterThan(500);
    expect(await waiter.done).toBe(0);
  }, 30_000);

  test("etcdctl elect: observer and campaigners print what they print on etcd 3.4", async () => {
    const [mine, theirs] = await Promise.all([electCtlScenario(ours.clientUrl), electCtlScenario(etcd.clientUrl)]);
    expect(mine).toEqual(theirs);
    expect(mine.first).toBe("ctl-el/<lease>\np1\n");
    expect(mine.observer).toBe("ctl-el/<lease>\np1\nctl-el/<lease>\np2\n");
  }, 30_000);
});

describe.skipIf(!haveTools)("Lock and Election in a 3-member cluster", () => {
  let cluster: Cluster;
  beforeAll(async () => {
    cluster = await Cluster.start({ size: 3 });
  }, 60_000);
  afterAll(async () => {
    await cluster?.destroy();
  });

  test("a lock queued through one follower is granted when it is unlocked through the leader; observe through the other follower", async () => {
    const leader = await cluster.leader();
    const [f1, f2] = await cluster.followers();
    const [cl, c1, c2] = [clients(leader.clientUrl), clients(f1!.clientUrl), clients(f2!.clientUrl)];
    const a = (await c1.lease.leaseGrant({ TTL: 30n })).ID;
    const b = (await c2.lease.leaseGrant({ TTL: 30n })).ID;
    const held = await c1.lock.lock({ name: enc("cl"), lease: a });
    expect(dec(held.key)).toBe(`cl/${a.toString(16)}`);
    const waiting = c2.lock.lock({ name: enc("cl"), lease: b });
    expect(await within(waiting, 500)).toBe("pending");
    await cl.lock.unlock({ key: held.key });
    const got = await within(waiting, 5000);
    expect(got === "pending" ? "pending" : dec(got.key)).toBe(`cl/${b.toString(16)}`);

    const seen: string[] = [];
    const ac = new AbortController();
    const observing = (async () => {
      for await (const r of c2.election.observe({ name: enc("ce") }, { signal: ac.signal })) seen.push(dec(r.kv!.value));
    })().catch(() => {});
    const won = await c1.election.campaign({ name: enc("ce"), lease: a, value: enc("one") });
    await cl.election.proclaim({ leader: won.leader!, value: enc("two") });
    expect(dec((await c2.election.leader({ name: enc("ce") })).kv!.value)).toBe("two");
    for (let i = 0; i < 50 && seen.length < 2; i++) await Bun.sleep(100);
    ac.abort();
    await observing;
    expect(seen).toEqual(["one", "two"]);
  }, 30_000);
});
