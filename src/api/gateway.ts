// etcd's v3 JSON gateway: POST /v3/<service>/<method> with a JSON body,
// answered in grpc-gateway's JSON (proto field names, int64 as strings,
// bytes as base64, defaults omitted) by the same service implementations as
// gRPC. /v3beta/ is accepted as etcd 3.4 does (and /v3alpha/ is not). Streams:
// POST /v3/watch and /v3/lease/keepalive are in gateway-watch.ts, POST
// /v3/election/observe in gateway-observe.ts; the snapshot stream is not here.
import { fromJson, toJson, type DescMethod } from "@bufbuild/protobuf";
import { parseJsonExact } from "./json-int64.js";
import type { Context, Hono } from "hono";
import { Code, EtcdError } from "../errors.js";
import { readBounded } from "./gateway-body.js";
import { addObserveRoute } from "./gateway-observe.js";
import type { CallContext, ServiceImpl, ServiceRegistration } from "./context.js";
import { statusOf } from "./grpc/status.js";
import { HTTP_STATUS } from "./gateway-status.js";
import { gatewayBidi, type BidiMethod } from "./gateway-watch.js";

/** Gateway path (after /v3/) → "package.Service/Method", as etcd's rpc.proto annotations declare. */
const ROUTES: Record<string, string> = {
  "kv/range": "etcdserverpb.KV/Range",
  "kv/put": "etcdserverpb.KV/Put",
  "kv/deleterange": "etcdserverpb.KV/DeleteRange",
  "kv/txn": "etcdserverpb.KV/Txn",
  "kv/compaction": "etcdserverpb.KV/Compact",
  "lease/grant": "etcdserverpb.Lease/LeaseGrant",
  "lease/revoke": "etcdserverpb.Lease/LeaseRevoke",
  "kv/lease/revoke": "etcdserverpb.Lease/LeaseRevoke",
  "lease/timetolive": "etcdserverpb.Lease/LeaseTimeToLive",
  "kv/lease/timetolive": "etcdserverpb.Lease/LeaseTimeToLive",
  "lease/leases": "etcdserverpb.Lease/LeaseLeases",
  "kv/lease/leases": "etcdserverpb.Lease/LeaseLeases",
  "cluster/member/add": "etcdserverpb.Cluster/MemberAdd",
  "cluster/member/remove": "etcdserverpb.Cluster/MemberRemove",
  "cluster/member/update": "etcdserverpb.Cluster/MemberUpdate",
  "cluster/member/list": "etcdserverpb.Cluster/MemberList",
  "cluster/member/promote": "etcdserverpb.Cluster/MemberPromote",
  "maintenance/alarm": "etcdserverpb.Maintenance/Alarm",
  "maintenance/status": "etcdserverpb.Maintenance/Status",
  "maintenance/defragment": "etcdserverpb.Maintenance/Defragment",
  "maintenance/hash": "etcdserverpb.Maintenance/Hash",
  "maintenance/hashkv": "etcdserverpb.Maintenance/HashKV",
  "maintenance/transfer-leadership": "etcdserverpb.Maintenance/MoveLeader",
  "auth/enable": "etcdserverpb.Auth/AuthEnable",
  "auth/disable": "etcdserverpb.Auth/AuthDisable",
  "auth/status": "etcdserverpb.Auth/AuthStatus",
  "auth/authenticate": "etcdserverpb.Auth/Authenticate",
  "auth/user/add": "etcdserverpb.Auth/UserAdd",
  "auth/user/get": "etcdserverpb.Auth/UserGet",
  "auth/user/list": "etcdserverpb.Auth/UserList",
  "auth/user/delete": "etcdserverpb.Auth/UserDelete",
  "auth/user/changepw": "etcdserverpb.Auth/UserChangePassword",
  "auth/user/grant": "etcdserverpb.Auth/UserGrantRole",
  "auth/user/revoke": "etcdserverpb.Auth/UserRevokeRole",
  "auth/role/add": "etcdserverpb.Auth/RoleAdd",
  "auth/role/get": "etcdserverpb.Auth/RoleGet",
  "auth/role/list": "etcdserverpb.Auth/RoleList",
  "auth/role/delete": "etcdserverpb.Auth/RoleDelete",
  "auth/role/grant": "etcdserverpb.Auth/RoleGrantPermission",
  "auth/role/revoke": "etcdserverpb.Auth/RoleRevokePermission",
  "lock/lock": "v3lockpb.Lock/Lock",
  "lock/unlock": "v3lockpb.Lock/Unlock",
  "election/campaign": "v3electionpb.Election/Campaign",
  "election/proclaim": "v3electionpb.Election/Proclaim",
  "election/leader": "v3electionpb.Election/Leader",
  "election/resign": "v3electionpb.Election/Resign",
};

interface Target {
  method: DescMethod;
  impl?: ServiceImpl[string];
}

export function addGatewayRoutes(app: Hono, registrations: ServiceRegistration[], maxBodyBytes: number): void {
  addObserveRoute(app, registrations, maxBodyBytes); // streaming: before the catch-all below
  const byName = new Map<string, Target>();
  for (const { service, impl } of registrations) {
    for (const method of service.methods) {
      const fn = impl[method.localName];
      byName.set(`${service.typeName}/${method.name}`, { method, impl: fn?.bind(impl) });
    }
  }
  const targets = new Map<string, Target>();
  for (const [path, name] of Object.entries(ROUTES)) {
    const target = byName.get(name);
    if (!target) throw new Error(`gateway: no method ${name} is registered`);
    targets.set(path, target);
  }
  // The bidi streams, by gateway path.
  const streams = new Map<string, BidiMethod<any, any>>();
  for (const [path, name] of [
    ["watch", "etcdserverpb.Watch/Watch"],
    ["lease/keepalive", "etcdserverpb.Lease/LeaseKeepAlive"],
  ]) {
    const t = byName.get(name);
    if (t?.impl) streams.set(path, { impl: t.impl, input: t.method.input, output: t.method.output });
  }
  // etcd 3.4.23 serves its gateway under /v3/ and /v3beta/ (rewritten to /v3/); /v3alpha/ is 404.
  for (const version of ["v3", "v3beta"]) {
    app.post(`/${version}/*`, (c) => {
      const path = c.req.path.slice(version.length + 2);
      const stream = streams.get(path);
      if (stream) return gatewayBidi(c, stream, maxBodyBytes);
      const target = targets.get(path);
      return target ? call(c, target, maxBodyBytes) : c.text("Not Found\n", 404);
    });
  }
}

async function call(c: Context, { method, impl }: Target, maxBodyBytes: number): Promise<Response> {
  try {
    if (!impl) throw new EtcdError(Code.Unimplemented, `unknown method ${method.name}`);
    const text = await readBounded(c.req.raw, maxBodyBytes);
    let input;
    try {
      input = fromJson(method.input, text.trim() === "" ? {} : parseJsonExact(text));
    } catch (err) {
      throw new EtcdError(Code.InvalidArgument, (err as Error).message);
    }
    const ctx: CallContext = {
      signal: c.req.raw.signal,
      requestHeader: { get: (name: string) => c.req.header(name) ?? null },
    };
    const output = await impl(input, ctx);
    return c.json(toJson(method.output, output, { useProtoFieldName: true }) as object);
  } catch (err) {
    const { code, message } = statusOf(err);
    return c.json({ error: message, message, code }, (HTTP_STATUS[code] ?? 500) as any);
  }
}
