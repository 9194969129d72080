// Membership: the apply-time rules (etcd's ValidateConfigurationChange), what
// a refused change looks like (neutralized + error), persistence, reload, and
// the replay rule that rebuilds raft's configuration after a restart.
import { Database } from "bun:sqlite";
import { describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { EtcdError, Errors } from "../errors.ts";
import { applyChange } from "../raft/confchange.ts";
import { type ConfChange, ConfChangeType, type ConfState } from "../raft/types.ts";
import { openDatabase } from "../storage/db.ts";
import { SCHEMA_VERSION } from "../storage/schema.ts";
import { mulberry32 } from "../testing/prng.ts";
import type { MemberInfo } from "./member-info.ts";
import { decodeContext, decodeMemberContext, encodeMemberContext, Membership } from "./membership.ts";

const BIG = (1n << 64n) - 5n; // above 2^63: negative as a signed SQLite integer

function member(id: bigint, port: number, over: Partial<MemberInfo> = {}): MemberInfo {
  return { id, name: "", peerURLs: [`http://127.0.0.1:${port}`], clientURLs: [], isLearner: false, ...over };
}

function add(m: MemberInfo): ConfChange {
  return { type: m.isLearner ? ConfChangeType.AddLearnerNode : ConfChangeType.AddNode, nodeId: m.id, context: encodeMemberContext(m) };
}
function promote(id: bigint): ConfChange {
  return { type: ConfChangeType.AddNode, nodeId: id, context: encodeMemberContext(member(id, 1), true) };
}
function remove(id: bigint): ConfChange {
  return { type: ConfChangeType.RemoveNode, nodeId: id, context: new Uint8Array(0) };
}
function update(id: bigint, peerURLs: string[]): ConfChange {
  return { type: ConfChangeType.UpdateNode, nodeId: id, context: encodeMemberContext({ ...member(id, 1), peerURLs }) };
}

function fresh(): { db: Database; ms: Membership } {
  const db = openDatabase(":memory:");
  return { db, ms: new Membership(db) };
}

/** Applies and expects acceptance: the change comes back untouched. */
function accept(ms: Membership, cc: ConfChange): void {
  const r = ms.applyConfChange(cc);
  expect(r.error).toBeUndefined();
  expect(r).toBe(cc);
}

/** Applies and expects refusal with `want`'s message, node id cleared, nothing changed. */
function refuse(ms: Membership, cc: ConfChange, want: EtcdError): void {
  const before = ms.list();
  const removedBefore = before.map((m) => ms.isRemoved(m.id));
  const r = ms.applyConfChange(cc);
  expect(r.error).toBeInstanceOf(EtcdError);
  expect(r.error!.message).toBe(want.message);
  expect(r.error!.code).toBe(want.code);
  expect(r).toEqual({ ...cc, nodeId: 0n, error: r.error });
  expect(cc.nodeId).not.toBe(0n); // the entry's change is not mutated
  expect(ms.list()).toEqual(before);
  expect(before.map((m) => ms.isRemoved(m.id))).toEqual(removedBefore);
}

describe("context", () => {
  test("round trip keeps 64-bit ids and every field", () => {
    const m: MemberInfo = { id: BIG, name: "n1", peerURLs: ["http://a:1", "http://b:2"], clientURLs: ["http://c:3"], isLearner: true };
    expect(decodeMemberContext(encodeMemberContext(m))).toEqual(m);
    expect(decodeContext(encodeMemberContext(m)).promote).toBe(false);
    expect(decodeContext(encodeMemberContext(m, true)).promote).toBe(true);
    // The id is a decimal string in the JSON, never a lossy number.
    expect(new TextDecoder().decode(encodeMemberContext(m))).toContain(`"id":"${BIG}"`);
  });

  test("bad bytes throw", () => {
    const enc = (s: string) => new TextEncoder().encode(s);
    const good = { id: "5", name: "", peerURLs: [], clientURLs: [], isLearner: false };
    const bad: Uint8Array[] = [
      new Uint8Array(0),
      new Uint8Array([0xff, 0xfe]),
      enc("not json"),
      enc("[]"),
      enc("null"),
      enc(JSON.stringify({ ...good, id: 5 })),
      enc(JSON.stringify({ ...good, id: "0" })),
      enc(JSON.stringify({ ...good, id: "-1" })),
      enc(JSON.stringify({ ...good, id: (1n << 64n).toString() })),
      enc(JSON.stringify({ ...good, peerURLs: [1] })),
      enc(JSON.stringify({ ...good, clientURLs: "x" })),
      enc(JSON.stringify({ ...good, name: undefined })),
      enc(JSON.stringify({ ...good, isLearner: "no" })),
      enc(JSON.stringify({ ...good, isPromote: 1 })),
    ];
    for (const b of bad) expect(() => decodeMemberContext(b)).toThrow();
    expect(decodeMemberContext(enc(JSON.stringify(good))).id).toBe(5n);
  });
});

describe("apply: add", () => {
  test("adds voters and a learner; list() is sorted by unsigned id; get() copies", () => {
    const { ms } = fresh();
    accept(ms, add(member(BIG, 1, { name: "big" })));
    accept(ms, add(member(7n, 2)));
    accept(ms, add(member(300n, 3, { isLearner: true })));
    expect(ms.list().map((m) => m.id)).toEqual([7n, 300n, BIG]);
    expect(ms.get(BIG)).toEqual(member(BIG, 1, { name: "big" }));
    expect(ms.get(300n)!.isLearner).toBe(true);
    expect(ms.voters().map((m) => m.id)).toEqual([7n, BIG]);
    expect(ms.confState()).toEqual({ voters: [7n, BIG], learners: [300n] });
    ms.get(7n)!.peerURLs.push("http://evil:1");
    ms.list()[0].peerURLs.push("http://evil:1");
    expect(ms.get(7n)!.peerURLs).toEqual(["http://127.0.0.1:2"]);
  });

  test("an existing id → memberExist, even with the same data", () => {
    const { ms } = fresh();
    accept(ms, add(member(1n, 1)));
    refuse(ms, add(member(1n, 1)), Errors.memberExist());
    refuse(ms, add(member(1n, 9)), Errors.memberExist());
    refuse(ms, add(member(1n, 9, { isLearner: true })), Errors.memberExist());
  });

  test("a removed id → memberNotFound (etcd's ErrIDRemoved), whatever the change", () => {
    const { ms } = fresh();
    accept(ms, add(member(1n, 1)));
    accept(ms, add(member(2n, 2)));
    accept(ms, remove(2n));
    refuse(ms, add(member(2n, 3)), Errors.memberNotFound());
    refuse(ms, add(member(2n, 3, { isLearner: true })), Errors.memberNotFound());
    refuse(ms, promote(2n), Errors.memberNotFound());
    refuse(ms, remove(2n), Errors.memberNotFound());
    refuse(ms, update(2n, ["http://x:1"]), Errors.memberNotFound());
  });

  test("a peer URL any member uses → peerURLExist", () => {
    const { ms } = fresh();
    accept(ms, add({ ...member(1n, 1), peerURLs: ["http://a:1", "http://b:1"] }));
    refuse(ms, add({ ...member(2n, 1), peerURLs: ["http://c:1", "http://b:1"] }), Errors.peerURLExist());
    refuse(ms, add({ ...member(2n, 1), peerURLs: ["http://a:1"], isLearner: true }), Errors.peerURLExist());
    accept(ms, add({ ...member(2n, 1), peerURLs: ["http://c:1"] }));
  });

  test("a second learner → tooManyLearners; a voter is still welcome", () => {
    const { ms } = fresh();
    accept(ms, add(member(1n, 1)));
    accept(ms, add(member(2n, 2, { isLearner: true })));
    refuse(ms, add(member(3n, 3, { isLearner: true })), Errors.tooManyLearners());
    accept(ms, add(member(3n, 3)));
    // Once the learner is promoted there is room for another.
    accept(ms, promote(2n));
    accept(ms, add(member(4n, 4, { isLearner: true })));
  });

  test("checks run in etcd's order: exists before peer URL before learner count", () => {
    const { ms } = fresh();
    accept(ms, add(member(1n, 1)));
    accept(ms, add(member(2n, 2, { isLearner: true })));
    refuse(ms, add(member(2n, 1, { isLearner: true })), Errors.memberExist());
    refuse(ms, add(member(3n, 1, { isLearner: true })), Errors.peerURLExist());
  });

  test("a context for another id, a type that disagrees with isLearner, or bad bytes throw", () => {
    const { ms } = fresh();
    expect(() => ms.applyConfChange({ ...add(member(1n, 1)), nodeId: 2n })).toThrow();
    expect(() => ms.applyConfChange({ ...add(member(1n, 1)), type: ConfChangeType.AddLearnerNode })).toThrow();
    expect(() => ms.applyConfChange({ ...add(member(1n, 1, { isLearner: true })), type: ConfChangeType.AddNode })).toThrow();
    expect(() => ms.applyConfChange({ type: ConfChangeType.AddNode, nodeId: 1n, context: new Uint8Array(0) })).toThrow();
    expect(ms.list()).toEqual([]);
  });

  test("node id 0 (already neutral) passes through and changes nothing", () => {
    const { ms } = fresh();
    const cc: ConfChange = { type: ConfChangeType.AddNode, nodeId: 0n, context: new Uint8Array(0) };
    expect(ms.applyConfChange(cc)).toBe(cc);
    expect(ms.list()).toEqual([]);
  });
});

describe("apply: promote, remove, update", () => {
  test("promote: a learner becomes a voter; unknown → memberNotFound; a voter → memberNotLearner", () => {
    const { ms } = fresh();
    accept(ms, add(member(1n, 1)));
    accept(ms, add(member(2n, 2, { isLearner: true, name: "l" })));
    refuse(ms, promote(9n), Errors.memberNotFound());
    refuse(ms, promote(1n), Errors.memberNotLearner());
    accept(ms, promote(2n));
    expect(ms.get(2n)).toEqual(member(2n, 2, { name: "l" }));
    refuse(ms, promote(2n), Errors.memberNotLearner());
    // A promotion must be an AddNode.
    expect(() => ms.applyConfChange({ ...promote(1n), type: ConfChangeType.AddLearnerNode })).toThrow();
  });

  test("remove: gone and remembered; unknown → memberNotFound", () => {
    const { ms } = fresh();
    accept(ms, add(member(1n, 1)));
    accept(ms, add(member(BIG, 2)));
    refuse(ms, remove(5n), Errors.memberNotFound());
    expect(ms.isRemoved(5n)).toBe(false);
    accept(ms, remove(BIG));
    expect(ms.get(BIG)).toBeUndefined();
    expect(ms.isRemoved(BIG)).toBe(true);
    expect(ms.list().map((m) => m.id)).toEqual([1n]);
    // Its peer URL is free again (etcd only looks at current members).
    accept(ms, add(member(3n, 2)));
  });

  test("update: replaces peer URLs only (name, client URLs, learner flag kept)", () => {
    const { ms } = fresh();
    accept(ms, add(member(1n, 1)));
    accept(ms, add(member(2n, 2, { isLearner: true, name: "l", clientURLs: ["http://c:1"] })));
    accept(ms, update(2n, ["http://new:1", "http://new:2"]));
    expect(ms.get(2n)).toEqual({ id: 2n, name: "l", peerURLs: ["http://new:1", "http://new:2"], clientURLs: ["http://c:1"], isLearner: true });
    // Keeping one's own URL is fine; taking another member's is not.
    accept(ms, update(2n, ["http://new:1"]));
    refuse(ms, update(2n, ["http://127.0.0.1:1"]), Errors.peerURLExist());
    refuse(ms, update(9n, ["http://x:1"]), Errors.memberNotFound());
    expect(() => ms.applyConfChange({ ...update(2n, ["http://z:1"]), nodeId: 1n })).toThrow();
  });

  test("attributes: published for a member; ignored for unknown and removed ids", () => {
    const { ms } = fresh();
    accept(ms, add(member(1n, 1)));
    accept(ms, add(member(2n, 2)));
    accept(ms, remove(2n));
    ms.applyAttributes(1n, "one", ["http://c:1"]);
    ms.applyAttributes(2n, "two", ["http://c:2"]);
    ms.applyAttributes(3n, "three", ["http://c:3"]);
    expect(ms.list()).toEqual([{ ...member(1n, 1), name: "one", clientURLs: ["http://c:1"] }]);
    expect(ms.isRemoved(3n)).toBe(false);
  });
});

describe("persistence", () => {
  test("a second Membership on the same database sees everything", () => {
    const { db, ms } = fresh();
    accept(ms, add(member(BIG, 1)));
    accept(ms, add(member(2n, 2, { isLearner: true })));
    accept(ms, add(member(3n, 3)));
    accept(ms, remove(3n));
    ms.applyAttributes(BIG, "big", ["http://c:1"]);
    ms.applyClusterVersion("3.5.0");
    const again = new Membership(db);
    expect(again.list()).toEqual(ms.list());
    expect(again.isRemoved(3n)).toBe(true);
    expect(again.clusterVersion()).toBe("3.5.0");
    expect(fresh().ms.clusterVersion()).toBe("");
  });

  test("writes join the caller's transaction: a rollback undoes them, reload() resyncs memory", () => {
    const { db, ms } = fresh();
    accept(ms, add(member(1n, 1)));
    expect(() =>
      db.transaction(() => {
        accept(ms, add(member(2n, 2)));
        accept(ms, remove(1n));
        ms.applyClusterVersion("3.5.0");
        throw new Error("apply failed");
      })(),
    ).toThrow("apply failed");
    ms.reload();
    expect(ms.list().map((m) => m.id)).toEqual([1n]);
    expect(ms.isRemoved(1n)).toBe(false);
    expect(ms.clusterVersion()).toBe("");
  });

  test("reload() picks up tables replaced underneath (a snapshot install)", () => {
    const { db, ms } = fresh();
    accept(ms, add(member(1n, 1)));
    const other = fresh();
    accept(other.ms, add(member(5n, 5)));
    accept(other.ms, add(member(6n, 6)));
    accept(other.ms, remove(6n));
    db.transaction(() => {
      db.exec("DELETE FROM members; DELETE FROM members_removed;");
      for (const r of other.db.query("SELECT * FROM members").all() as Record<string, string | number>[]) {
        db.query("INSERT INTO members VALUES (?1, ?2, ?3, ?4, ?5)").run(r.id, r.name, r.peer_urls, r.client_urls, r.is_learner);
      }
      db.query("INSERT INTO members_removed VALUES ('6')").run();
    })();
    ms.reload();
    expect(ms.list()).toEqual(other.ms.list());
    expect(ms.isRemoved(6n)).toBe(true);
    expect(ms.get(1n)).toBeUndefined();
  });

  test("a version-1 database file upgrades to the members tables", () => {
    const dir = mkdtempSync(join(tmpdir(), "membership-"));
    try {
      const path = join(dir, "db.sqlite");
      const v1 = new Database(path, { create: true });
      v1.exec("CREATE TABLE meta (name TEXT PRIMARY KEY NOT NULL, value); INSERT INTO meta VALUES ('member_id', '7');");
      v1.exec("PRAGMA user_version = 1");
      v1.close();
      const db = openDatabase(path);
      expect((db.query("PRAGMA user_version").get() as { user_version: number }).user_version).toBe(SCHEMA_VERSION);
      expect(SCHEMA_VERSION).toBe(4);
      expect(db.query("SELECT count(*) AS n FROM leases").get()).toEqual({ n: 0 });
      const ms = new Membership(db);
      accept(ms, add(member(1n, 1)));
      expect((db.query("SELECT value FROM meta WHERE name = 'member_id'").get() as { value: string }).value).toBe("7");
      db.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("replay", () => {
  const sameConf = (a: ConfState, b: ConfState) => {
    const sorted = (x: bigint[]) => [...x].sort((p, q) => (p < q ? -1 : p > q ? 1 : 0));
    expect({ voters: sorted(a.voters), learners: sorted(a.learners) }).toEqual({ voters: sorted(b.voters), learners: sorted(b.learners) });
  };

  test("replay changes nothing and decides by the final state", () => {
    const { ms } = fresh();
    accept(ms, add(member(1n, 1)));
    accept(ms, add(member(2n, 2, { isLearner: true })));
    accept(ms, promote(2n));
    accept(ms, add(member(3n, 3, { isLearner: true })));
    accept(ms, add(member(4n, 4)));
    accept(ms, remove(4n));
    const before = ms.list();
    const pass = (cc: ConfChange) => expect(ms.applyConfChange(cc, true)).toBe(cc);
    // No error on replay: nobody waits for an entry applied before the restart.
    const neutral = (cc: ConfChange) => expect(ms.applyConfChange(cc, true)).toEqual({ ...cc, nodeId: 0n });
    pass(add(member(1n, 1))); // re-adding an existing voter with the same data: through (raft ignores it)
    neutral(add(member(2n, 2, { isLearner: true }))); // 2 is a voter now: never hand raft a demotion
    pass(promote(2n));
    pass(add(member(3n, 3, { isLearner: true })));
    neutral(promote(3n)); // 3 is still a learner: its promotion never happened
    neutral(add(member(4n, 4))); // removed in the end
    pass(remove(4n)); // removing an already removed id: through (a no-op for raft)
    neutral(remove(9n));
    neutral(add(member(9n, 9)));
    pass(update(1n, ["http://z:1"]));
    neutral(update(9n, ["http://z:1"]));
    expect(ms.list()).toEqual(before);
    expect(ms.get(1n)!.peerURLs).toEqual(["http://127.0.0.1:1"]);
  });

  // Random histories (with duplicates and refusals) applied the normal way,
  // tracking raft's configuration; then a restart from every earlier
  // configuration (a raft snapshot) re-applies the rest with replay = true and
  // must end in the same configuration, which is also the membership's.
  test("re-applying from any snapshot point rebuilds raft's configuration", () => {
    for (let seed = 1; seed <= 200; seed++) {
      const rand = mulberry32(seed);
      const pick = (n: number) => Math.floor(rand() * n);
      const { ms } = fresh();
      const history: ConfChange[] = [];
      const confs: ConfState[] = [{ voters: [], learners: [] }];
      let conf = confs[0];
      const step = (cc: ConfChange) => {
        const r = ms.applyConfChange(cc);
        conf = applyChange(conf, r);
        history.push(cc);
        confs.push(conf);
      };
      step(add(member(1n, 1)));
      for (let i = 0; i < 30; i++) {
        const id = BigInt(1 + pick(6));
        switch (pick(5)) {
          case 0:
            step(add(member(id, Number(id))));
            break;
          case 1:
            step(add(member(id, Number(id), { isLearner: true })));
            break;
          case 2:
            step(promote(id));
            break;
          case 3:
            if (id !== 1n) step(remove(id)); // keep a voter, as a real cluster does
            break;
          case 4:
            step(update(id, [`http://h${i}:1`]));
            break;
        }
      }
      sameConf(conf, ms.confState());
      for (let k = 0; k < history.length; k++) {
        let c = confs[k];
        for (const cc of history.slice(k)) c = applyChange(c, ms.applyConfChange(cc, true));
        sameConf(c, conf);
      }
    }
  });
});
