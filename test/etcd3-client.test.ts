// The `etcd3` npm client (a real client library, over @grpc/grpc-js) against
// bin/tsetcd, and the same tests against real etcd 3.4 so a failure here is a
// difference between the servers, not a quirk of the client: KV, watchers,
// leases kept alive and left to expire, etcd3's locks and its election helpers.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Etcd3, EtcdLockFailedError } from "etcd3";
import { type Member, startMember, startRealEtcd } from "./harness/server.ts";
import { ETCD_BIN, SUBJECT_BIN, requireTools } from "./harness/tools.ts";

/** Resolves once `cond()` holds; fails after `ms`. */
async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  const end = performance.now() + ms;
  while (!cond()) {
    if (performance.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await Bun.sleep(20);
  }
}

const servers: Array<[string, () => Promise<Member>]> = [
  ["tsetcd", () => startMember()],
  ["etcd 3.4", () => startRealEtcd()],
];

describe.skipIf(!requireTools([SUBJECT_BIN, ETCD_BIN]))("etcd3 npm client", () => {
  describe.each(servers)("against %s", (_name, start) => {
    let member: Member;
    let client: Etcd3;

    beforeAll(async () => {
      member = await start();
      client = new Etcd3({ hosts: member.clientUrl });
    });
    afterAll(async () => {
      client?.close();
      await member?.stop();
    });

    test("KV: put, get, prefix, count, delete, transactions", async () => {
      await client.put("kv/a").value("1");
      await client.put("kv/b").value("2");
      await client.put("kv/c").value("3");
      await client.put("kw").value("outside");
      expect(await client.get("kv/a").string()).toBe("1");
      expect(await client.get("kv/none").string()).toBeNull();
      expect(await client.getAll().prefix("kv/").strings()).toEqual({ "kv/a": "1", "kv/b": "2", "kv/c": "3" });
      expect(await client.getAll().prefix("kv/").count()).toBe(3);
      expect(await client.getAll().prefix("kv/").sort("Key", "Descend").limit(2).keys()).toEqual(["kv/c", "kv/b"]);
      const put = await client.put("kv/a").value("1b").getPrevious();
      expect(put?.value.toString()).toBe("1");
      const del = await client.delete().key("kv/b").getPrevious();
      expect(del.map((kv) => kv.value.toString())).toEqual(["2"]);
      expect(await client.getAll().prefix("kv/").keys()).toEqual(["kv/a", "kv/c"]);
      // A compare-and-swap both ways.
      const ok = await client.if("kv/a", "Value", "==", "1b").then(client.put("kv/a").value("swapped")).commit();
      expect(ok.succeeded).toBe(true);
      const no = await client.if("kv/a", "Value", "==", "1b").then(client.put("kv/a").value("again")).else(client.get("kv/c")).commit();
      expect(no.succeeded).toBe(false);
      expect(no.responses[0]!.response_range!.kvs[0]!.value.toString()).toBe("3");
      expect(await client.get("kv/a").string()).toBe("swapped");
      await client.delete().prefix("kv/");
      expect(await client.getAll().prefix("kv/").count()).toBe(0);
    });

    test("watch: a key and a prefix, every event in order", async () => {
      const onKey: string[] = [];
      const onPrefix: string[] = [];
      const wk = await client.watch().key("w/one").create();
      const wp = await client.watch().prefix("w/").create();
      wk.on("put", (kv) => onKey.push(`put ${kv.key} ${kv.value} ${kv.mod_revision}`));
      wk.on("delete", (kv) => onKey.push(`delete ${kv.key} ${kv.mod_revision}`));
      wp.on("put", (kv) => onPrefix.push(`put ${kv.key} ${kv.value} ${kv.mod_revision}`));
      wp.on("delete", (kv) => onPrefix.push(`delete ${kv.key} ${kv.mod_revision}`));
      const revs: string[] = [];
      const put = async (k: string, v: string) => revs.push((await client.put(k).value(v)).header.revision);
      await put("w/one", "1");
      await put("w/two", "2");
      await put("x/outside", "no");
      for (let i = 0; i < 20; i++) await put("w/one", `n${i}`);
      revs.push((await client.delete().key("w/one")).header.revision);
      const [r1, r2, , ...rest] = revs;
      const rDel = rest.pop()!;
      const loop = rest.map((r, i) => `put w/one n${i} ${r}`);
      const keyWant = [`put w/one 1 ${r1}`, ...loop, `delete w/one ${rDel}`];
      const prefixWant = [`put w/one 1 ${r1}`, `put w/two 2 ${r2}`, ...loop, `delete w/one ${rDel}`];
      await until(() => onKey.length >= keyWant.length && onPrefix.length >= prefixWant.length, 5000, "watch events");
      expect(onKey).toEqual(keyWant);
      expect(onPrefix).toEqual(prefixWant);
      await wk.cancel();
      await wp.cancel();
    });

    test("lease: kept alive past its TTL, expires once released", async () => {
      const lease = client.lease(2);
      const id = await lease.grant();
      await lease.put("lease/k").value("v");
      let lost = false;
      lease.on("lost", () => (lost = true));
      await Bun.sleep(3500); // well past the 2 s TTL: the client's keep-alives hold it
      expect(lost).toBe(false);
      expect(await client.get("lease/k").string()).toBe("v");
      lease.release(); // stop the keep-alives without revoking
      const released = performance.now();
      let gone = false;
      for (let i = 0; i < 60 && !gone; i++) {
        gone = (await client.get("lease/k").string()) === null;
        if (!gone) await Bun.sleep(100);
      }
      expect(gone).toBe(true);
      // It lived until its TTL ran out after the last renewal, not less than a second more.
      expect(performance.now() - released).toBeGreaterThan(500);
      const leases = await client.leaseClient.leaseLeases();
      expect((leases.leases ?? []).map((l) => l.ID)).not.toContain(id);
    }, 20_000);

    test("lock: several concurrent holders, never two at once", async () => {
      let inside = 0;
      let maxInside = 0;
      let done = 0;
      let refused = 0;
      const worker = async (n: number) => {
        for (let i = 0; i < 3;) {
          try {
            await client
              .lock("etcd3-lock")
              .ttl(5)
              .do(async () => {
                inside++;
                maxInside = Math.max(maxInside, inside);
                await Bun.sleep(30);
                inside--;
              });
            i++;
            done++;
          } catch (err) {
            if (!(err instanceof EtcdLockFailedError)) throw err;
            refused++;
            await Bun.sleep(10 + ((n * 7) % 13));
          }
        }
      };
      await Promise.all([1, 2, 3, 4, 5].map(worker));
      expect(done).toBe(15);
      expect(maxInside).toBe(1);
      expect(refused).toBeGreaterThan(0); // they did contend
      expect(await client.getAll().prefix("etcd3-lock").count()).toBe(0);
    }, 30_000);

    test("election: campaign, observe, leader change on resign", async () => {
      const election = client.election("etcd3-el", 5);
      const observer = await election.observe();
      const seen: Array<string | undefined> = [];
      observer.on("change", (v) => seen.push(v));
      const a = election.campaign("a");
      await a.wait();
      expect(await election.leader()).toBe("a");
      // etcd3's observer, while it waits for a first leader, takes the LAST put of a watch
      // response as the leader (etcd's Go observer takes the first). Real etcd delivers a catch-up
      // watcher's events in batches (every 100 ms), so a second candidate put right away can be
      // taken for the leader there; let the observer see "a" before anyone else campaigns.
      await until(() => observer.leader() === "a", 5000, "observer sees a");
      const b = election.campaign("b");
      let bElected = false;
      b.on("elected", () => (bElected = true));
      await Bun.sleep(300);
      expect(bElected).toBe(false);
      await a.proclaim("a2");
      await until(() => seen.includes("a2"), 5000, "observer sees a2");
      expect(await election.leader()).toBe("a2");
      await a.resign();
      await b.wait();
      expect(bElected).toBe(true);
      expect(await election.leader()).toBe("b");
      await until(() => observer.leader() === "b", 5000, "observer sees b");
      await b.resign();
      await until(() => observer.leader() === undefined, 5000, "observer sees no leader");
      await observer.cancel();
      expect(await election.leader()).toBeUndefined();
      expect(seen).toEqual(["a", "a2", "b", undefined]);
    }, 30_000);
  });
});
