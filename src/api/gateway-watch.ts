// POST /v3/watch and POST /v3/lease/keepalive: etcd 3.4's grpc-gateway form of
// its bidi streams, for HTTP/1.1 clients (curl, fetch). The request body is a
// sequence of JSON requests (concatenated, any whitespace between them), read
// as it arrives; the response is one line per response, `{"result":{...}}\n`,
// in grpc-gateway's JSON (proto field names, int64 as strings, enums by
// name, defaults omitted). What etcd 3.4 does, and so what this does:
// - the status line and headers go out with the first response, so a body
//   with no create request gets no answer at all until the client leaves;
// - a first request that is not valid JSON is refused with HTTP 500 and
//   grpc-gateway's error body (code 2); a later bad one only ends the requests
//   (the watchers already created keep streaming);
// - unknown fields are ignored;
// - the stream only ends when the client goes away; an error that ends it
//   from our side is written as a last `{"error":{...}}` object.
import { fromJson, toJson, type DescMessage, type MessageShape } from "@bufbuild/protobuf";
import { STATUS_CODES } from "node:http";
import type { Context } from "hono";
import { parseJsonExact } from "./json-int64.js";
import { Code } from "../errors.js";
import { type CallContext, type ServiceImpl, unbatched } from "./context.js";
import { statusOf } from "./grpc/status.js";
import { HTTP_STATUS } from "./gateway-status.js";

const encoder = new TextEncoder();

/** A bidi method as the gateway streams it: its implementation and message types. */
export interface BidiMethod<I extends DescMessage, O extends DescMessage> {
  impl: ServiceImpl[string];
  input: I;
  output: O;
}

/** Serves one POST of a bidi stream (Watch.Watch, Lease.LeaseKeepAlive). */
export async function gatewayBidi<I extends DescMessage, O extends DescMessage>(
  c: Context,
  method: BidiMethod<I, O>,
  maxObjectBytes: number,
): Promise<Response> {
  type Req = MessageShape<I>;
  type Resp = MessageShape<O>;
  const requests = jsonObjects(c.req.raw.body, method.input, maxObjectBytes)[Symbol.asyncIterator]();
  let first: IteratorResult<Req>;
  try {
    first = await requests.next();
  } catch (err) {
    // grpc-gateway answers a first request it cannot decode with code Unknown.
    const message = (err as Error).message;
    return c.json({ error: message, message, code: Code.Unknown }, 500);
  }
  const reqs = (async function* (): AsyncGenerator<Req> {
    if (first.done) return;
    yield first.value;
    try {
      for (;;) {
        const n = await requests.next();
        if (n.done) return;
        yield n.value;
      }
    } catch {
      // As grpc-gateway: a request that does not decode ends the requests, not the stream.
    }
  })();

  const { ac, ctx, unlink } = linkedCall(c);
  const out = unbatched(method.impl(reqs, ctx) as AsyncIterable<Resp>)[Symbol.asyncIterator]();
  const line = (r: Resp) => encoder.encode(`${JSON.stringify({ result: toJson(method.output, r, { useProtoFieldName: true }) })}\n`);
  const finish = () => {
    unlink();
    ac.abort();
    void out.return?.(undefined);
    void requests.return?.(undefined);
  };

  // The headers wait for the first response, as etcd's do.
  let head: Uint8Array;
  let ended = false;
  try {
    const r = await next(out, ac.signal);
    if (r === undefined) {
      finish();
      return new Response(null, { status: 499 }); // the client left before anything was sent
    }
    head = r.done ? ((ended = true), new Uint8Array()) : line(r.value);
  } catch (err) {
    finish();
    const { code, message } = statusOf(err);
    return c.json({ error: message, message, code }, (HTTP_STATUS[code] ?? 500) as any);
  }

  let sentHead = false;
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (!sentHead) {
        sentHead = true;
        if (head.length > 0) controller.enqueue(head);
        if (ended) {
          finish();
          controller.close();
        }
        return;
      }
      try {
        const r = await next(out, ac.signal);
        if (r === undefined || r.done) {
          finish();
          controller.close();
          return;
        }
        controller.enqueue(line(r.value));
      } catch (err) {
        finish();
        controller.enqueue(errorObject(err));
        controller.close();
      }
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

/**
 * A call context for a streamed gateway request: aborted when the client leaves or when the
 * server ends the stream (ac.abort()); unlink() stops listening to the request.
 */
export function linkedCall(c: Context): { ac: AbortController; ctx: CallContext; unlink: () => void } {
  const ac = new AbortController();
  const reqSignal = c.req.raw.signal;
  const onAbort = () => ac.abort();
  if (reqSignal.aborted) ac.abort();
  else reqSignal.addEventListener("abort", onAbort, { once: true });
  const ctx: CallContext = { signal: ac.signal, requestHeader: { get: (name: string) => c.req.header(name) ?? null } };
  return { ac, ctx, unlink: () => reqSignal.removeEventListener("abort", onAbort) };
}

/** The iterator's next result, or undefined once `signal` aborts first. */
function next<T>(it: AsyncIterator<T>, signal: AbortSignal): Promise<IteratorResult<T> | undefined> {
  if (signal.aborted) return Promise.resolve(undefined);
  return new Promise((resolve, reject) => {
    const onAbort = () => resolve(undefined);
    signal.addEventListener("abort", onAbort, { once: true });
    it.next().then(
      (r) => {
        signal.removeEventListener("abort", onAbort);
        resolve(r);
      },
      (err) => {
        signal.removeEventListener("abort", onAbort);
        reject(err);
      },
    );
  });
}

/** grpc-gateway's last object on a stream that failed (no newline after it). */
function errorObject(err: unknown): Uint8Array {
  const { code, message } = statusOf(err);
  const http = HTTP_STATUS[code] ?? 500;
  return encoder.encode(JSON.stringify({ error: { grpc_code: code, http_code: http, message, http_status: STATUS_CODES[http] ?? "" } }));
}

/**
 * The requests of a body of concatenated JSON objects, each decoded as soon as its closing
 * brace arrives (int64s beyond 2^53 kept exact). Throws on anything that is not an object, on
 * an object larger than `maxBytes` (counted in UTF-16 units, close enough for a bound) and on
 * one that does not decode as `schema`.
 */
export async function* jsonObjects<I extends DescMessage>(
  body: ReadableStream<Uint8Array> | null,
  schema: I,
  maxBytes: number,
): AsyncGenerator<MessageShape<I>> {
  if (!body) return;
  const decoder = new TextDecoder();
  const reader = body.getReader();
  let buf = ""; // text of the object being read
  let depth = 0;
  let inString = false;
  let escaped = false;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      const text = done ? decoder.decode() : decoder.decode(value, { stream: true });
      for (const ch of text) {
        if (depth === 0) {
          if (ch === " " || ch === "\n" || ch === "\r" || ch === "\t") continue;
          if (ch !== "{") throw new SyntaxError(`invalid character '${ch}' looking for beginning of value`);
          buf = "{";
          depth = 1;
          continue;
        }
        buf += ch;
        if (buf.length > maxBytes) throw new RangeError(`request larger than ${maxBytes} bytes`);
        if (inString) {
          if (escaped) escaped = false;
          else if (ch === "\\") escaped = true;
          else if (ch === '"') inString = false;
          continue;
        }
        if (ch === '"') inString = true;
        else if (ch === "{" || ch === "[") depth++;
        else if (ch === "}" || ch === "]") {
          depth--;
          if (depth === 0) {
            const json = parseJsonExact(buf);
            buf = "";
            yield fromJson(schema, json, { ignoreUnknownFields: true });
          }
        }
      }
      if (done) {
        if (depth > 0) throw new SyntaxError("unexpected EOF");
        return;
      }
    }
  } finally {
    reader.releaseLock();
    void body.cancel().catch(() => {});
  }
}
