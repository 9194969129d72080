// bootstrap(): a new cluster's log and ids as etcd derives them, a restart that ignores the
// --initial-* flags, a data dir of another cluster refused, and the one-time migration of a
// single-member data dir (issue 2's format) into a Raft snapshot.
import { describe, expect, test } from "bun:test";
import { openDatabase } from "../storage/db.ts";
import { MetaStore } from "../storage/meta-store.ts";
import { SqliteRaftStorage } from "../storage/raft-storage.ts";
import { decodeConfChange } from "../raft/confchange.ts";
import { ConfChangeType, EntryType } from "../raft/types.ts";
import { APPLIED_INDEX, bootstrap, LOCAL_META, type BootstrapConfig } from "./bootstrap.ts";
import { clusterId, memberId } from "./ids.ts";
import { decodeMemberContext } from "./membership.ts";

const IC = "a=http://127.0.0.1:1,b=http://127.0.0.1:2,c=http://127.0.0.1:3";

function cfg(over: Partial<BootstrapConfig> = {}): BootstrapConfig {
  return {
    name: "b",
    dataDir: "/nowhere",
    initialCluster: IC,
    initialClusterToken: "tok",
    initialClusterState: "new",
    initialAdvertisePeerUrls: ["http://127.0.0.1:2"],
    ...over,
  };
}

describe("bootstrap", () => {
  test("new: etcd's ids, one committed AddNode per member (sorted by id) carrying name and URLs", async () => {
    const db = openDatabase(":memory:");
    const id = await bootstrap(db, cfg());
    const ids = ["http://127.0.0.1:1", "http://127.0.0.1:2", "http://127.0.0.1:3"].map((u) => memberId([u], "tok"));
    expect(id).toEqual({ memberId: ids[1], clusterId: clusterId(ids), how: "new" });
    const s = new SqliteRaftStorage(db);
    expect(s.initialState().hardState).toEqual({ term: 1, vote: 0n, commit: 3 });
    const entries = s.entries(1, 4, Infinity);
    expect(entries.every((e) => e.type === EntryType.ConfChange && e.term === 1)).toBe(true);
    const ccs = entries.map((e) => decodeConfChange(e.data));
    expect(ccs.map((c) => c.type)).toEqual([ConfChangeType.AddNode, ConfChangeType.AddNode, ConfChangeType.AddNode]);
    expect(ccs.map((c) => c.nodeId)).toEqual([...ids].sort((x, y) => (x < y ? -1 : 1)));
    const m = decodeMemberContext(ccs.find((c) => c.nodeId === ids[0])!.context);
    expect({ name: m.name, peerURLs: m.peerURLs }).toEqual({ name: "a", peerURLs: ["http://127.0.0.1:1"] });
  });

  test("new: etcd's messages for a missing name and mismatched advertise URLs", async () => {
    await expect(bootstrap(openDatabase(":memory:"), cfg({ name: "zz" }))).rejects.toThrow(
      'couldn\'t find local name "zz" in the initial cluster configuration',
    );
    await expect(bootstrap(openDatabase(":memory:"), cfg({ initialAdvertisePeerUrls: ["http://127.0.0.1:9"] }))).rejects.toThrow(
      "--initial-cluster has b=http://127.0.0.1:2 but missing from --initial-advertise-peer-urls=http://127.0.0.1:9",
    );
  });

  test("restart ignores the --initial-* flags; a data dir of another cluster (token) is refused", async () => {
    const db = openDatabase(":memory:");
    const first = await bootstrap(db, cfg());
    const again = await bootstrap(db, cfg({ initialCluster: "x=http://10.0.0.1:1", name: "x", initialAdvertisePeerUrls: ["http://10.0.0.1:1"] }));
    expect(again).toEqual({ ...first, how: "restart" });
    await expect(bootstrap(db, cfg({ initialClusterToken: "other" }))).rejects.toThrow(/belongs to cluster .* refusing to start/);
  });

  test("existing: ids come from the running cluster; the log starts empty", async () => {
    const db = openDatabase(":memory:");
    const id = await bootstrap(db, cfg({ initialClusterState: "existing", joinCluster: async () => ({ clusterId: 77n, localId: 5n, members: [] }) }));
    expect(id).toMatchObject({ memberId: 5n, clusterId: 77n, how: "existing" });
    const s = new SqliteRaftStorage(db);
    expect(s.lastIndex()).toBe(0);
    expect(new MetaStore(db).getBigInt(LOCAL_META.memberId)).toBe(5n);
  });

  test("existing: a restart before the first entries arrive restarts the joiner, peers included (not a one-member cluster)", async () => {
    const db = openDatabase(":memory:");
    const members = [{ id: 1n, name: "a", peerURLs: ["http://127.0.0.1:1"], clientURLs: [], isLearner: false }];
    const joining = cfg({ initialClusterState: "existing", joinCluster: async () => ({ clusterId: 77n, localId: 5n, members }) });
    await bootstrap(db, joining);
    // The crash came before any entry or snapshot: the data dir holds only what the join wrote.
    const again = await bootstrap(db, joining);
    expect(again).toEqual({ memberId: 5n, clusterId: 77n, how: "restart", remoteMembers: members });
    const s = new SqliteRaftStorage(db);
    expect(s.snapshot().meta.confState).toEqual({ voters: [], learners: [] });
    expect(s.lastIndex()).toBe(0);
    expect(s.initialState().hardState).toEqual({ term: 0, vote: 0n, commit: 0 });
  });

  test("a single-member data dir (issue 2) becomes a snapshot at its applied index", async () => {
    const db = openDatabase(":memory:");
    const meta = new MetaStore(db);
    meta.setBigInt(LOCAL_META.memberId, 9n);
    meta.setBigInt(LOCAL_META.clusterId, 10n);
    meta.setNumber(APPLIED_INDEX, 42);
    meta.setNumber("term", 7);
    db.run("INSERT INTO log (idx, term, type, data) VALUES (42, 7, 2, x'00')");
    const id = await bootstrap(db, cfg());
    expect(id).toEqual({ memberId: 9n, clusterId: 10n, how: "restart" });
    const s = new SqliteRaftStorage(db);
    expect(s.snapshot().meta).toEqual({ index: 42, term: 7, confState: { voters: [9n], learners: [] } });
    expect(s.initialState().hardState).toEqual({ term: 7, vote: 9n, commit: 42 });
    expect(s.lastIndex()).toBe(42);
    expect(meta.getNumber("term")).toBeUndefined();
    // Once migrated, a second start is a plain restart.
    expect(await bootstrap(db, cfg())).toEqual(id);
  });
});
