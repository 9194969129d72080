// CORS per etcd's --cors (comma-separated origins, "*" = any, etcd's default),
// so a browser page on another origin can call gRPC-Web, Connect and /v3.
// One decision function, used by the node-style and the fetch-style paths.
import type { IncomingMessage, ServerResponse } from "node:http";

const ALLOW_HEADERS = [
  "accept",
  "content-type",
  "authorization",
  "token",
  "x-grpc-web",
  "x-user-agent",
  "grpc-timeout",
  "connect-protocol-version",
  "connect-timeout-ms",
].join(", ");
const EXPOSE_HEADERS = ["grpc-status", "grpc-message", "grpc-status-details-bin"].join(", ");

/** The CORS response headers for a request from `origin`, or undefined when not allowed. */
export function corsHeaders(allowed: string[], origin: string | null | undefined): Record<string, string> | undefined {
  if (!origin || !(allowed.includes("*") || allowed.includes(origin))) return undefined;
  return {
    "access-control-allow-origin": allowed.includes("*") ? "*" : origin,
    "access-control-allow-methods": "POST, GET, OPTIONS, PUT, DELETE",
    "access-control-allow-headers": ALLOW_HEADERS,
    "access-control-expose-headers": EXPOSE_HEADERS,
  };
}

/** Node-style: sets the headers; returns true when the request was a preflight and has been answered. */
export function applyCors(allowed: string[], req: IncomingMessage, res: ServerResponse): boolean {
  const headers = corsHeaders(allowed, req.headers.origin);
  if (!headers) return false;
  for (const [k, v] of Object.entries(headers)) res.setHeader(k, v);
  if (req.method !== "OPTIONS") return false;
  res.statusCode = 204;
  res.end();
  return true;
}
