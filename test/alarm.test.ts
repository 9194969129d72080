// --quota-backend-bytes and the NOSPACE alarm, as etcd: writes past the quota
// are refused with etcd's error and raise the alarm; while it is active puts
// are refused and /health is false; compaction + defrag + `alarm disarm`
// make the member writable again. The alarm survives a restart.
import { afterAll, expect, test } from "bun:test";
import { rmSync } from "node:fs";
import { startMember, type Member } from "./harness/server.ts";
import { etcdctl } from "./harness/etcdctl.ts";

let member: Member | undefined;
let keptDir: string | undefined;
afterAll(async () => {
  await member?.stop();
  if (keptDir) rmSync(keptDir, { recursive: true, force: true });
});

test("NOSPACE alarm: raised past the quota, kept across restart, cleared by disarm", async () => {
  member = await startMember({ args: [`--quota-backend-bytes=${24 * 4096}`], keepDataDir: true });
  const ctl = (...args: string[]) => etcdctl(member!.clientUrl, args);
  expect((await ctl("put", "small", "x")).stdout).toBe("OK\n");
  const big = "b".repeat(4096);
  let refused = "";
  for (let i = 0; i < 100 && refused === ""; i++) {
    const r = await ctl("put", "big", big);
    if (r.code !== 0) refused = r.stderr;
  }
  expect(refused).toContain("Error: etcdserver: mvcc: database space exceeded");
  const list = await ctl("alarm", "list");
  expect(list.stdout).toMatch(/^memberID:\d+ alarm:NOSPACE \n$/);
  const health = await fetch(`${member.clientUrl}/health`);
  expect(health.status).toBe(503);
  expect(await health.json()).toEqual({ health: "false", reason: "ALARM NOSPACE" });
  expect((await ctl("put", "small2", "x")).stderr).toContain("etcdserver: mvcc: database space exceeded");
  expect((await ctl("del", "small")).stdout).toBe("1\n"); // deletes still work

  // The alarm went through the log: a restart keeps it.
  const { dataDir, name } = member;
  keptDir = dataDir;
  await member.stop();
  member = await startMember({ dataDir, name, args: [`--quota-backend-bytes=${24 * 4096}`] });
  expect((await ctl("alarm", "list")).stdout).toMatch(/alarm:NOSPACE/);

  const status = JSON.parse((await ctl("endpoint", "status", "-w", "json")).stdout);
  const rev = String(status[0].Status.header.revision);
  expect((await ctl("compaction", "--physical", rev)).stdout).toBe(`compacted revision ${rev}\n`);
  expect((await ctl("defrag")).stdout).toMatch(/^Finished defragmenting etcd member\[/);
  expect((await ctl("alarm", "disarm")).stdout).toMatch(/alarm:NOSPACE/);
  expect((await ctl("alarm", "list")).stdout).toBe("");
  const again = await ctl("put", "again", "x");
  expect(again.stderr).toBe("");
  expect(again.stdout).toBe("OK\n");
  expect(await (await fetch(`${member.clientUrl}/health`)).json()).toEqual({ health: "true", reason: "" });
}, 60_000);
