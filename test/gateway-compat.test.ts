// The /v3 JSON gateway, byte for byte against real etcd 3.4.23: the same
// POSTs to a fresh tsetcd and a fresh etcd give the same status and body,
// once ids, the version and database sizes are masked.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { startMember, startRealEtcd, type Member } from "./harness/server.ts";
import { ETCD_BIN, requireTools, SUBJECT_BIN } from "./harness/tools.ts";

const b64 = (s: string) => Buffer.from(s).toString("base64");

/** Run in order on both servers; each later case sees the effects of the earlier ones. */
const CASES: [path: string, body: unknown][] = [
  ["/v3/kv/put", { key: b64("foo"), value: b64("bar") }],
  ["/v3/kv/put", { key: b64("foo2"), value: b64("baz"), prev_kv: true }],
  ["/v3/kv/put", { key: b64("foo2"), value: b64("qux"), prev_kv: true }],
  ["/v3/kv/range", { key: b64("foo") }],
  ["/v3/kv/range", { key: b64("foo"), range_end: b64("fop"), sort_order: "DESCEND", sort_target: "VALUE" }],
  ["/v3beta/kv/range", { key: b64("f"), range_end: b64("g"), limit: "1" }],
  ["/v3/kv/range", { key: b64("\0"), range_end: b64("\0"), count_only: true }],
  ["/v3/kv/range", { key: b64("foo"), keys_only: true, revision: "2" }],
  ["/v3/kv/range", { key: "" }],
  ["/v3/kv/range", { key: b64("foo"), revision: "1000" }],
  ["/v3/kv/txn", {
    compare: [{ key: b64("foo"), result: "EQUAL", target: "VALUE", value: b64("bar") }],
    success: [{ request_put: { key: b64("foo"), value: b64("new") } }, { request_range: { key: b64("foo") } }],
    failure: [{ request_delete_range: { key: b64("foo") } }],
  }],
  ["/v3/kv/txn", { compare: [{ key: b64("foo"), result: "GREATER", target: "VERSION", version: "5" }], failure: [{ request_range: { key: b64("foo2") } }] }],
  ["/v3/kv/deleterange", { key: b64("foo2"), prev_kv: true }],
  ["/v3/kv/compaction", { revision: "3" }],
  ["/v3/kv/compaction", { revision: "2" }],
  ["/v3/kv/range", { key: b64("foo"), revision: "2" }],
  ["/v3/kv/put", {}],
  ["/v3/maintenance/status", {}],
  ["/v3/maintenance/alarm", { action: "GET" }],
];

// Ids derive from the peer URLs, whose ports differ between the two servers.
const mask = (body: string) =>
  body.replace(/"(cluster_id|member_id|leader)":"\d+"/g, '"$1":"<id>"').replace(/"version":"3\.\d+\.\d+"/g, '"version":"<v>"').replace(/"(dbSize|dbSizeInUse)":"\d+"/g, '"$1":"<n>"');

const ready = requireTools([SUBJECT_BIN, ETCD_BIN]);
let ours: Member;
let etcd: Member;

describe.skipIf(!ready)("/v3 gateway: tsetcd vs etcd 3.4.23", () => {
  beforeAll(async () => {
    [ours, etcd] = await Promise.all([startMember({ name: "gw" }), startRealEtcd({ name: "gw" })]);
  });
  afterAll(async () => {
    await Promise.all([ours?.stop(), etcd?.stop()]);
  });

  test("every case answers the same", async () => {
    for (const [path, body] of CASES) {
      const post = async (m: Member) => {
        const res = await fetch(`${m.clientUrl}${path}`, { method: "POST", body: JSON.stringify(body) });
        return { status: res.status, body: mask(await res.text()) };
      };
      const [a, b] = [await post(ours), await post(etcd)];
      expect({ path, request: body, ...a }).toEqual({ path, request: body, ...b });
    }
  }, 30_000);
});
