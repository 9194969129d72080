// The /v3 JSON gateway, byte for byte against real etcd 3.4.23: the same
// POSTs to a fresh tsetcd and a fresh etcd give the same status and body,
// once ids, the version and database sizes are masked.
import { describe, expect, test } from "bun:test";
import { sideBySide, type Member } from "./harness/server.ts";
import { ETCD_BIN, requireTools, SUBJECT_BIN } from "./harness/tools.ts";

const b64 = (s: string) => Buffer.from(s).toString("base64");

/** Run in order on both servers; each later case sees the effects of the earlier ones. A string body is sent as is. */
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
  [
    "/v3/kv/txn",
    {
      compare: [{ key: b64("foo"), result: "EQUAL", target: "VALUE", value: b64("bar") }],
      success: [{ request_put: { key: b64("foo"), value: b64("new") } }, { request_range: { key: b64("foo") } }],
      failure: [{ request_delete_range: { key: b64("foo") } }],
    },
  ],
  ["/v3/kv/txn", { compare: [{ key: b64("foo"), result: "GREATER", target: "VERSION", version: "5" }], failure: [{ request_range: { key: b64("foo2") } }] }],
  ["/v3/kv/deleterange", { key: b64("foo2"), prev_kv: true }],
  ["/v3/kv/compaction", { revision: "3" }],
  ["/v3/kv/compaction", { revision: "2" }],
  ["/v3/kv/range", { key: b64("foo"), revision: "2" }],
  ["/v3/kv/put", {}],
  ["/v3/maintenance/status", {}],
  ["/v3/maintenance/alarm", { action: "GET" }],
  // etcd 3.4.23 has no /v3alpha/ gateway.
  ["/v3alpha/kv/range", { key: b64("foo") }],
  // int64s beyond 2^53 as bare JSON numbers (etcd's e2e suite posts lease ids so).
  ["/v3/lease/grant", '{"ID":7289022282209902492,"TTL":30}'],
  ["/v3/lease/grant", '{"ID":7289022282209902492,"TTL":30}'],
  ["/v3/kv/put", `{"key":"${b64("leased")}","value":"","lease":7289022282209902492}`],
  ["/v3/lease/leases", {}],
  ["/v3/kv/lease/revoke", { ID: "7289022282209902492" }],
  ["/v3/kv/range", { key: b64("leased") }],
  ["/v3/lease/revoke", { ID: "7289022282209902492" }],
  // Users and roles (auth stays disabled).
  ["/v3/auth/user/add", { name: "alice", password: "pw" }],
  ["/v3/auth/user/add", { name: "alice", password: "pw" }],
  // Not here: an empty name without a password (etcd 3.4 answers "password must not be empty") and
  // a grant without a permission (etcd 3.4 panics; tsetcd answers etcd 3.5's "permission not given").
  ["/v3/auth/user/add", { name: "", password: "a" }],
  ["/v3/auth/user/add", { name: "cert", options: { no_password: true } }],
  ["/v3/auth/role/add", { name: "reader" }],
  ["/v3/auth/role/grant", { name: "reader", perm: { permType: "READ", key: b64("a"), range_end: b64("b") } }],
  ["/v3/auth/role/grant", { name: "reader", perm: { permType: "READWRITE", key: b64("k") } }],
  ["/v3/auth/role/grant", { name: "missing", perm: { key: b64("k") } }],
  ["/v3/auth/role/get", { role: "reader" }],
  ["/v3/auth/user/grant", { user: "alice", role: "reader" }],
  ["/v3/auth/user/get", { name: "alice" }],
  ["/v3/auth/user/list", {}],
  ["/v3/auth/role/list", {}],
  ["/v3/auth/user/changepw", { name: "alice", password: "pw2" }],
  ["/v3/auth/role/revoke", { role: "reader", key: b64("k") }],
  ["/v3/auth/user/revoke", { name: "alice", role: "reader" }],
  ["/v3/auth/role/delete", { role: "reader" }],
  ["/v3/auth/user/delete", { name: "alice" }],
  ["/v3/auth/user/get", { name: "alice" }],
];

// Ids derive from the peer URLs, whose ports differ between the two servers.
const mask = (body: string) =>
  body
    .replace(/"(cluster_id|member_id|leader)":"\d+"/g, '"$1":"<id>"')
    .replace(/"version":"3\.\d+\.\d+"/g, '"version":"<v>"')
    .replace(/"(dbSize|dbSizeInUse)":"\d+"/g, '"$1":"<n>"');

const ready = requireTools([SUBJECT_BIN, ETCD_BIN]);
describe.skipIf(!ready)("/v3 gateway: tsetcd vs etcd 3.4.23", () => {
  const pair = sideBySide("gw");

  test("every case answers the same", async () => {
    for (const [path, body] of CASES) {
      const post = async (m: Member) => {
        const res = await fetch(`${m.clientUrl}${path}`, { method: "POST", body: typeof body === "string" ? body : JSON.stringify(body) });
        return { status: res.status, body: mask(await res.text()) };
      };
      const [a, b] = [await post(pair.ours), await post(pair.etcd)];
      expect({ path, request: body, ...a }).toEqual({ path, request: body, ...b });
    }
  }, 30_000);

  test("POST /v3/lease/keepalive streams one result line per request", async () => {
    const keepAlive = async (m: Member) => {
      const grant = await fetch(`${m.clientUrl}/v3/lease/grant`, { method: "POST", body: '{"ID":7289022282209903000,"TTL":60}' });
      expect(grant.status).toBe(200);
      const ac = new AbortController();
      const res = await fetch(`${m.clientUrl}/v3/lease/keepalive`, { method: "POST", body: '{"ID":7289022282209903000} {"ID":"12345"}', signal: ac.signal });
      const reader = res.body!.getReader();
      let text = "";
      const deadline = Date.now() + 5000;
      while (text.split("\n").length < 3 && Date.now() < deadline) {
        const { done, value } = await reader.read();
        if (done) break;
        text += new TextDecoder().decode(value);
      }
      ac.abort();
      return { status: res.status, type: res.headers.get("content-type"), body: mask(text) };
    };
    const [a, b] = [await keepAlive(pair.ours), await keepAlive(pair.etcd)];
    expect(a).toEqual(b);
    expect(a.body).toContain('"ID":"7289022282209903000","TTL":"60"');
  }, 30_000);
});
