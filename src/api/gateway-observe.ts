// POST /v3/election/observe (and /v3beta/): etcd 3.4's grpc-gateway form of
// the server-streaming Election.Observe. The body is one JSON LeaderRequest;
// the answer is one line per LeaderResponse, `{"result":{...}}\n`, in
// grpc-gateway's JSON (proto field names, int64s as strings, bytes as
// base64). The status line and headers go out with the first response (an
// election without a leader answers nothing until one is elected); the
// stream lasts until the client leaves. A body that does not decode is
// refused as the unary routes refuse one (HTTP 400, code 3).
import { fromJson, toJson } from "@bufbuild/protobuf";
import type { Context, Hono } from "hono";
import { type LeaderResponse, LeaderRequestSchema, LeaderResponseSchema } from "../gen/v3electionpb/v3election_pb.js";
import { Code, EtcdError } from "../errors.js";
import type { CallContext, ServiceImpl, ServiceRegistration } from "./context.js";
import { statusOf } from "./grpc/status.js";
import { readBounded } from "./gateway-body.js";
import { linkedCall } from "./gateway-watch.js";

const encoder = new TextEncoder();

/** Registers the observe routes; must run before the gateway's catch-all routes. */
export function addObserveRoute(app: Hono, registrations: ServiceRegistration[], maxBodyBytes: number): void {
  const impl = registrations.find((r) => r.service.typeName === "v3electionpb.Election")?.impl;
  const observe = impl?.observe?.bind(impl);
  if (observe === undefined) return;
  for (const version of ["v3", "v3beta"]) {
    app.post(`/${version}/election/observe`, (c) => serveObserve(c, observe, maxBodyBytes));
  }
}

async function serveObserve(c: Context, observe: ServiceImpl[string], maxBodyBytes: number): Promise<Response> {
  let req;
  try {
    const text = await readBounded(c.req.raw, maxBodyBytes);
    try {
      req = fromJson(LeaderRequestSchema, text.trim() === "" ? {} : JSON.parse(text));
    } catch (err) {
      throw new EtcdError(Code.InvalidArgument, (err as Error).message);
    }
  } catch (err) {
    const { code, message } = statusOf(err);
    return c.json({ error: message, message, code }, code === Code.InvalidArgument ? 400 : 429);
  }

  const { ac, ctx, unlink } = linkedCall(c);
  const out = (observe(req, ctx) as AsyncIterable<LeaderResponse>)[Symbol.asyncIterator]();
  const finish = () => {
    unlink();
    ac.abort();
    void out.return?.(undefined);
  };

  // The headers wait for the first response.
  const first = await out.next().catch(() => undefined);
  if (first === undefined || first.done || ac.signal.aborted) {
    finish();
    return new Response(null, { status: ac.signal.aborted ? 499 : 200 });
  }
  let head: Uint8Array | undefined = line(first.value);
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (head !== undefined) {
        controller.enqueue(head);
        head = undefined;
        return;
      }
      const r = await out.next().catch(() => undefined);
      if (r === undefined || r.done) {
        finish();
        controller.close();
        return;
      }
      controller.enqueue(line(r.value));
    },
    cancel() {
      finish();
    },
  });
  return new Response(body, {
    status: 200,
    headers: { "content-type": "application/json", "grpc-metadata-content-type": "application/grpc" },
  });
}

function line(r: LeaderResponse): Uint8Array {
  return encoder.encode(`${JSON.stringify({ result: toJson(LeaderResponseSchema, r, { useProtoFieldName: true }) })}\n`);
}
