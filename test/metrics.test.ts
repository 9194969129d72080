// /metrics on the client port: Prometheus text with etcd's metric names, and
// values that follow the member (commit index, fsync histogram, db size).
import { afterAll, beforeAll, expect, test } from "bun:test";
import { startMember, type Member } from "./harness/server.ts";
import { enc, grpcClient } from "./harness/grpc-client.ts";

let member: Member;
beforeAll(async () => {
  member = await startMember();
});
afterAll(() => member.stop());

function value(text: string, name: string): number {
  const line = text.split("\n").find((l) => l.startsWith(`${name} `));
  if (!line) throw new Error(`metric ${name} missing`);
  return Number(line.slice(name.length + 1));
}

test("etcd's metrics are served and move with the member", async () => {
  const scrape = async () => {
    const res = await fetch(`${member.clientUrl}/metrics`);
    expect(res.headers.get("content-type")).toContain("text/plain");
    return res.text();
  };
  const before = await scrape();
  expect(value(before, "etcd_server_has_leader")).toBe(1);
  expect(value(before, "etcd_server_proposals_committed_total")).toBe(4); // etcd's 4 start entries
  expect(before).toContain(`etcd_server_version{server_version="3.5.17"} 1`);
  const kv = grpcClient(member.clientUrl).kv;
  for (let i = 0; i < 10; i++) await kv.put({ key: enc(`m${i}`), value: enc("v") });
  await kv.put({ key: new Uint8Array(), value: enc("v") }).catch(() => {}); // refused before the log
  const after = await scrape();
  expect(value(after, "etcd_server_proposals_committed_total")).toBe(14);
  expect(value(after, "etcd_server_proposals_applied_total")).toBe(14);
  expect(value(after, "etcd_disk_wal_fsync_duration_seconds_count")).toBeGreaterThanOrEqual(10);
  expect(value(after, "etcd_mvcc_db_total_size_in_bytes")).toBeGreaterThan(0);
});
