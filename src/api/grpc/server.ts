// Our lean gRPC server on the raw node:http2 stream API: the hot path for
// etcdctl, etcd's benchmark and every gRPC client library. One GrpcCall per
// HTTP/2 stream; unary calls take a callback-only path with no async
// iterators; streaming calls get bounded input and write back-pressure.
import type { ServerHttp2Stream, IncomingHttpHeaders } from "node:http2";
import { gunzipSync } from "node:zlib";
import { fromBinary, toBinary, type DescMethod } from "@bufbuild/protobuf";
import { Code, EtcdError } from "../../errors.js";
import { BATCH, ENCODED, type EncodedParts, isBatch, methodPath, type CallContext, type ServiceRegistration } from "../context.js";
import { MessageReader, type Frame } from "./framing.js";
import { InputQueue } from "./input-queue.js";
import { encodeGrpcMessage, statusOf } from "./status.js";
import { parseGrpcTimeout } from "./timeout.js";

interface Route {
  method: DescMethod;
  impl: (input: any, ctx: CallContext) => any;
}

export interface GrpcServerOptions {
  /** Largest request message accepted (etcd: --max-request-bytes + 512 KiB). */
  maxRecvBytes: number;
  /** Largest response message sent (etcd: math.MaxInt32). */
  maxSendBytes: number;
}

const RESPONSE_HEADERS = { ":status": 200, "content-type": "application/grpc" };

export class GrpcServer {
  private readonly routes = new Map<string, Route>();
  private readonly services = new Set<string>();
  /** Calls in flight, so a stopping member can cancel them. */
  readonly active = new Set<GrpcCall>();

  constructor(
    registrations: ServiceRegistration[],
    readonly options: GrpcServerOptions,
  ) {
    for (const { service, impl } of registrations) {
      this.services.add(service.typeName);
      for (const method of service.methods) {
        const fn = impl[method.localName];
        if (fn) this.routes.set(methodPath(service, method), { method, impl: fn.bind(impl) });
      }
    }
  }

  /** Serves one HTTP/2 stream whose content-type is application/grpc[+proto]. */
  handle(stream: ServerHttp2Stream, headers: IncomingHttpHeaders): void {
    const path = headers[":path"] ?? "";
    const route = this.routes.get(path);
    const call = new GrpcCall(this, stream, headers);
    if (!route) {
      call.finish(Code.Unimplemented, this.unknownMessage(path));
      stream.resume();
      return;
    }
    call.start(route);
  }

  private unknownMessage(path: string): string {
    const [, service = "", method = ""] = path.split("/");
    return this.services.has(service) ? `unknown method ${method} for service ${service}` : `unknown service ${service}`;
  }
}

class GrpcCall implements CallContext {
  private headersSent = false;
  private done = false;
  private controller: AbortController | undefined;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private readonly reader: MessageReader;

  constructor(
    private readonly server: GrpcServer,
    private readonly stream: ServerHttp2Stream,
    private readonly headers: IncomingHttpHeaders,
  ) {
    this.reader = new MessageReader(server.options.maxRecvBytes);
  }

  get signal(): AbortSignal {
    this.controller ??= new AbortController();
    return this.controller.signal;
  }

  readonly requestHeader = {
    get: (name: string): string | null => {
      const v = this.headers[name.toLowerCase()];
      if (v === undefined) return null;
      return Array.isArray(v) ? v.join(", ") : String(v);
    },
  };

  start(route: Route): void {
    this.server.active.add(this);
    const timeoutMs = parseGrpcTimeout(this.headers["grpc-timeout"]);
    if (timeoutMs !== undefined) {
      this.timer = setTimeout(() => this.cancel(Code.DeadlineExceeded, "context deadline exceeded"), Math.max(1, timeoutMs));
    }
    // A client that resets the stream (Ctrl-C, cancel) aborts the handler.
    this.stream.on("close", () => this.cancel(Code.Canceled, "context canceled"));
    this.stream.on("error", () => this.cancel(Code.Canceled, "context canceled"));
    const kind = route.method.methodKind;
    if (kind === "unary" || kind === "server_streaming") this.readSingle(route);
    else this.readStream(route);
  }

  /** Ends the call with a status, aborting the handler; safe to call twice. */
  cancel(code: Code, message: string): void {
    if (this.done) return;
    this.controller?.abort(new EtcdError(code, message));
    this.finish(code, message);
  }

  private decode(route: Route, frame: Frame): unknown {
    let data = frame.data;
    if (frame.compressed) {
      const encoding = this.headers["grpc-encoding"];
      if (encoding !== "gzip") {
        throw new EtcdError(Code.Unimplemented, `grpc: Decompressor is not installed for grpc-encoding "${encoding ?? ""}"`);
      }
      data = gunzipSync(data, { maxOutputLength: this.server.options.maxRecvBytes });
    }
    try {
      return fromBinary(route.method.input, data);
    } catch (err) {
      throw new EtcdError(Code.Internal, `grpc: error unmarshalling request: ${(err as Error).message}`);
    }
  }

  /** Unary and server-streaming: exactly one request message, then END_STREAM. */
  private readSingle(route: Route): void {
    let request: Frame | undefined;
    let count = 0;
    this.stream.on("data", (chunk: Uint8Array) => {
      if (this.done) return;
      try {
        for (const f of this.reader.push(chunk)) {
          request = f;
          count++;
        }
      } catch (err) {
        this.fail(err);
      }
    });
    this.stream.on("end", () => {
      if (this.done) return;
      if (count !== 1 || this.reader.hasPartial) {
        const what =
          count === 0
            ? "grpc: client streaming protocol violation: get <nil>, want <EOF>"
            : "grpc: client streaming protocol violation: get <data>, want <EOF>";
        this.finish(Code.Internal, what);
        return;
      }
      let input: unknown;
      try {
        input = this.decode(route, request as Frame);
      } catch (err) {
        this.fail(err);
        return;
      }
      if (route.method.methodKind === "unary") this.runUnary(route, input);
      else void this.runStreaming(route, route.impl(input, this));
    });
  }

  private runUnary(route: Route, input: unknown): void {
    let result: unknown;
    try {
      result = route.impl(input, this);
    } catch (err) {
      this.fail(err);
      return;
    }
    if (result instanceof Promise) {
      result.then(
        (out) => this.sendUnary(route, out),
        (err) => this.fail(err),
      );
    } else {
      this.sendUnary(route, result);
    }
  }

  private sendUnary(route: Route, output: unknown): void {
    if (this.done) return;
    try {
      this.writeMessage(route, output);
    } catch (err) {
      this.fail(err);
      return;
    }
    this.finish(Code.OK, "");
  }

  /** Client-streaming and bidi: request messages flow into a bounded queue. */
  private readStream(route: Route): void {
    const input = new InputQueue<unknown>(
      () => this.stream.pause(),
      () => this.stream.resume(),
    );
    this.stream.on("data", (chunk: Uint8Array) => {
      if (this.done) return;
      try {
        for (const f of this.reader.push(chunk)) input.push(this.decode(route, f));
      } catch (err) {
        input.fail(err);
        this.fail(err);
      }
    });
    this.stream.on("end", () => input.end());
    const output = route.impl(input, this);
    if (route.method.methodKind === "client_streaming") {
      Promise.resolve(output).then(
        (out) => this.sendUnary(route, out),
        (err) => this.fail(err),
      );
    } else {
      void this.runStreaming(route, output);
    }
  }

  private async runStreaming(route: Route, output: AsyncIterable<unknown>): Promise<void> {
    try {
      for await (const message of output) {
        if (this.done) return;
        const ok = isBatch(message) ? this.writeBatch(route, message[BATCH]) : this.writeMessage(route, message);
        if (!ok) await this.drained();
      }
      this.finish(Code.OK, "");
    } catch (err) {
      this.fail(err);
    }
  }

  private drained(): Promise<void> {
    return new Promise((resolve) => {
      const onDone = () => {
        this.stream.off("drain", onDone);
        this.stream.off("close", onDone);
        resolve();
      };
      this.stream.on("drain", onDone);
      this.stream.on("close", onDone);
    });
  }

  /** Returns false when the stream asks the writer to wait for 'drain'. */
  private writeMessage(route: Route, message: unknown): boolean {
    return this.writeFrames([this.encode(route, message)]);
  }

  /** Many messages framed into one buffer and one write. */
  private writeBatch(route: Route, messages: unknown[]): boolean {
    return this.writeFrames(messages.map((m) => this.encode(route, m)));
  }

  /** gRPC frames (flag byte, length, message) of the encoded messages, in one write. */
  private writeFrames(messages: EncodedParts[]): boolean {
    const lengths = messages.map(partsLength);
    let size = 0;
    for (const n of lengths) size += 5 + n;
    const out = Buffer.allocUnsafe(size);
    let at = 0;
    for (let i = 0; i < messages.length; i++) {
      const m = messages[i];
      const n = lengths[i];
      out[at] = 0;
      out[at + 1] = n >>> 24;
      out[at + 2] = (n >>> 16) & 0xff;
      out[at + 3] = (n >>> 8) & 0xff;
      out[at + 4] = n & 0xff;
      at += 5;
      if (m instanceof Uint8Array) at = copyInto(out, m, at);
      else for (const p of m) at = copyInto(out, p, at);
    }
    this.sendHeaders();
    if (this.stream.destroyed || this.stream.closed) return true;
    return this.stream.write(out);
  }

  private encode(route: Route, message: unknown): EncodedParts {
    const own = (message as { [ENCODED]?: EncodedParts })[ENCODED];
    // Parts are made by our own encoders, bounded by the request size: only encodings are checked.
    if (own !== undefined) return own;
    const bytes = toBinary(route.method.output, message as any);
    const length = bytes.length;
    if (length > this.server.options.maxSendBytes) {
      throw new EtcdError(Code.ResourceExhausted, `grpc: trying to send message larger than max (${length} vs. ${this.server.options.maxSendBytes})`);
    }
    return bytes;
  }

  private sendHeaders(): void {
    if (this.headersSent) return;
    this.headersSent = true;
    if (this.stream.destroyed || this.stream.closed) return;
    this.stream.respond(RESPONSE_HEADERS, { waitForTrailers: true });
  }

  private fail(err: unknown): void {
    const status = statusOf(err);
    this.finish(status.code, status.message);
  }

  /** Sends the status in real trailers (Go's client requires them) and ends the stream. */
  finish(code: number, message: string): void {
    if (this.done) return;
    this.done = true;
    if (this.timer) clearTimeout(this.timer);
    this.server.active.delete(this);
    const stream = this.stream;
    if (stream.destroyed || stream.closed) return;
    this.sendHeaders();
    const trailers: Record<string, string> = { "grpc-status": String(code) };
    if (message) trailers["grpc-message"] = encodeGrpcMessage(message);
    stream.once("wantTrailers", () => {
      if (!stream.destroyed && !stream.closed) stream.sendTrailers(trailers);
    });
    stream.end();
  }
}

function partsLength(m: EncodedParts): number {
  if (m instanceof Uint8Array) return m.length;
  let n = 0;
  for (const p of m) n += p.length;
  return n;
}

/** Copies `src` into `out` at `at`; a byte loop for the few-byte parts (a native set() costs more there). */
function copyInto(out: Uint8Array, src: Uint8Array, at: number): number {
  const n = src.length;
  if (n < 16) {
    for (let i = 0; i < n; i++) out[at + i] = src[i];
  } else {
    out.set(src, at);
  }
  return at + n;
}
