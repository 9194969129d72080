// CORS per etcd's --cors (comma-separated origins, "*" = any, etcd's default),
// so a browser page on another origin can call gRPC-Web, Connect and /v3.
import type { IncomingMessage, ServerResponse } from "node:http";

const ALLOW_HEADERS = [
  "accept", "content-type", "authorization", "token",
  "x-grpc-web", "x-user-agent", "grpc-timeout", "connect-protocol-version", "connect-timeout-ms",
].join(", ");
const EXPOSE_HEADERS = ["grpc-status", "grpc-message", "grpc-status-details-bin"].join(", ");

/** Returns true when the request was a preflight and has been answered. */
export function applyCors(allowed: string[], req: IncomingMessage, res: ServerResponse): boolean {
  const origin = req.headers.origin;
  if (!origin || !(allowed.includes("*") || allowed.includes(origin))) return false;
  res.setHeader("Access-Control-Allow-Origin", allowed.includes("*") ? "*" : origin);
  res.setHeader("Access-Control-Allow-Methods", "POST, GET, OPTIONS, PUT, DELETE");
  res.setHeader("Access-Control-Allow-Headers", ALLOW_HEADERS);
  res.setHeader("Access-Control-Expose-Headers", EXPOSE_HEADERS);
  if (req.method !== "OPTIONS") return false;
  res.statusCode = 204;
  res.end();
  return true;
}
