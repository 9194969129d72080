// The non-gRPC requests of our own HTTP/2 server as fetch Requests: Connect
// and gRPC-Web through connect's universal handlers, everything else through
// the Hono routes. (HTTP/1.1 keeps connect-node's adapter; both paths call
// the same service implementations.)
import { createConnectRouter } from "@connectrpc/connect";
import { createFetchHandler } from "@connectrpc/connect/protocol";
import type { Hono } from "hono";
import type { ServiceRegistration } from "./context.js";
import { toConnect } from "./connect.js";
import { corsHeaders } from "./http/cors.js";

export type FetchHandler = (req: Request) => Promise<Response>;

export function fetchHandler(registrations: ServiceRegistration[], routes: Hono, opts: { readMaxBytes: number; cors: string[] }): FetchHandler {
  const router = createConnectRouter({ readMaxBytes: opts.readMaxBytes });
  for (const { service, impl } of registrations) router.service(service, toConnect(impl) as any);
  const rpc = new Map(router.handlers.map((h) => [h.requestPath, createFetchHandler(h)]));
  return async (req) => {
    const cors = corsHeaders(opts.cors, req.headers.get("origin"));
    if (cors && req.method === "OPTIONS") return new Response(null, { status: 204, headers: cors });
    const handler = rpc.get(new URL(req.url).pathname);
    const res = handler ? await handler(req) : await routes.fetch(req);
    if (!cors) return res;
    const headers = new Headers(res.headers);
    for (const [k, v] of Object.entries(cors)) headers.set(k, v);
    return new Response(res.body, { status: res.status, statusText: res.statusText, headers });
  };
}
