// Serves one HTTP/2 stream that is not gRPC (Connect, gRPC-Web, /version,
// /health ... over h2c, as etcd serves them) through a fetch handler: the
// request body is collected with a bound, the Response is streamed back.
import type { FetchHandler } from "./fetch-handler.js";

/** The part of an HTTP/2 server stream this needs (node:http2's and ours). */
export interface ServerStreamLike {
  respond(headers: Record<string, string | number>, options?: { endStream?: boolean }): void;
  write(chunk: Uint8Array): boolean;
  end(): void;
  on(event: "data", fn: (chunk: Uint8Array) => void): unknown;
  on(event: "end" | "close" | "drain", fn: () => void): unknown;
  once(event: "drain" | "close", fn: () => void): unknown;
  readonly destroyed: boolean;
}

export function serveStreamWithFetch(
  stream: ServerStreamLike,
  headers: Record<string, string | string[] | undefined>,
  handler: FetchHandler,
  maxBodyBytes: number,
): void {
  const chunks: Uint8Array[] = [];
  let size = 0;
  let tooLarge = false;
  // The stream closing (the client reset it, or the connection went away) aborts the request,
  // so a streaming handler (a server-streaming RPC, /v3/watch) stops instead of waiting forever.
  const gone = new AbortController();
  let reader: ReadableStreamDefaultReader<Uint8Array> | undefined;
  stream.on("close", () => {
    gone.abort();
    void reader?.cancel().catch(() => {});
  });
  stream.on("data", (c) => {
    size += c.length;
    if (size > maxBodyBytes) tooLarge = true;
    else chunks.push(c);
  });
  stream.on("end", () => {
    if (tooLarge) {
      stream.respond({ ":status": 413, "content-type": "text/plain" });
      stream.write(new TextEncoder().encode("request body too large\n"));
      stream.end();
      return;
    }
    void respond();
  });

  async function respond(): Promise<void> {
    const method = String(headers[":method"] ?? "GET");
    const h = new Headers();
    for (const [k, v] of Object.entries(headers)) {
      if (k.startsWith(":") || v === undefined) continue;
      h.set(k, Array.isArray(v) ? v.join(", ") : v);
    }
    const url = `http://${headers[":authority"] ?? "localhost"}${headers[":path"] ?? "/"}`;
    const body = method === "GET" || method === "HEAD" ? undefined : Buffer.concat(chunks);
    let res: Response;
    try {
      res = await handler(new Request(url, { method, headers: h, body, signal: gone.signal }));
    } catch {
      res = new Response("internal error\n", { status: 500 });
    }
    if (stream.destroyed || gone.signal.aborted) {
      void res.body?.cancel().catch(() => {});
      return;
    }
    const out: Record<string, string | number> = { ":status": res.status };
    res.headers.forEach((v, k) => {
      if (k !== "connection" && k !== "transfer-encoding" && k !== "keep-alive") out[k] = v;
    });
    if (!res.body) {
      stream.respond(out, { endStream: true });
      return;
    }
    stream.respond(out);
    const r = (reader = res.body.getReader());
    let finished = false;
    try {
      for (;;) {
        const { done, value } = await r.read();
        if (done) {
          finished = true;
          break;
        }
        if (stream.destroyed) break;
        if (!stream.write(value))
          await new Promise<void>((res) => {
            stream.once("drain", res);
            stream.once("close", res);
          });
      }
    } catch {
      // the body failed, or was canceled because the stream closed
    } finally {
      // A body we stop reading early is canceled, so whatever produces it stops too.
      if (!finished) await r.cancel().catch(() => {});
      r.releaseLock();
      if (!stream.destroyed) stream.end();
    }
  }
}
