// gRPC-Web and Connect (JSON and binary) through connect-node, for browsers,
// curl and HTTP/1.1 clients. Everything that is not an RPC falls through to
// the Hono routes. Same service implementations as the gRPC hot path.
import type { IncomingMessage, ServerResponse } from "node:http";
import { Code as ConnectCode, ConnectError, type ConnectRouter } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { getRequestListener } from "@hono/node-server";
import type { Hono } from "hono";
import { EtcdError } from "../errors.js";
import { type ServiceImpl, type ServiceRegistration, unbatched } from "./context.js";
import { applyCors } from "./http/cors.js";

export type NodeHandler = (req: IncomingMessage, res: ServerResponse) => void;

export function connectHandler(registrations: ServiceRegistration[], routes: Hono, opts: { readMaxBytes: number; cors: string[] }): NodeHandler {
  const fallback = getRequestListener(routes.fetch) as unknown as NodeHandler;
  const adapter = connectNodeAdapter({
    routes(router: ConnectRouter) {
      for (const { service, impl } of registrations) router.service(service, toConnect(impl) as any);
    },
    readMaxBytes: opts.readMaxBytes,
    fallback: fallback as any,
  });
  return (req, res) => {
    if (applyCors(opts.cors, req, res)) return;
    adapter(req, res);
  };
}

/** Connect renders ConnectError; ours carry the same gRPC code and etcd's text. */
export function toConnect(impl: ServiceImpl): ServiceImpl {
  const out: ServiceImpl = {};
  for (const [name, fn] of Object.entries(impl)) {
    out[name] = (input, ctx) => {
      try {
        const result = fn.call(impl, input, ctx);
        if (result instanceof Promise) return result.catch(rethrow);
        if (result && typeof result[Symbol.asyncIterator] === "function") return mapIterable(result);
        return result;
      } catch (err) {
        rethrow(err);
      }
    };
  }
  return out;
}

async function* mapIterable(source: AsyncIterable<unknown>) {
  try {
    yield* unbatched(source);
  } catch (err) {
    rethrow(err);
  }
}

function rethrow(err: unknown): never {
  if (err instanceof EtcdError) throw new ConnectError(err.message, err.code as number as ConnectCode);
  throw err;
}
