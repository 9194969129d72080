// One HTTP/2 stream on the server side, with the subset of node:http2's
// ServerHttp2Stream that our gRPC layer uses: respond / write / end /
// sendTrailers, events data / end / close / error / drain / wantTrailers,
// pause / resume, and the destroyed / closed flags. Same semantics, far less
// machinery: the stream frames its data straight into the connection's output
// buffer when the flow-control windows allow and queues it otherwise.
import { Emitter } from "./emitter.js";
import { ErrorCode } from "./frames.js";
import { encodeHeaders, GRPC_OK_TRAILER_BLOCK, GRPC_RESPONSE_BLOCK, isGrpcOkTrailer, isGrpcResponse, type OutgoingHeaders } from "./hpack.js";

/** write() returns false once this many bytes wait for flow-control window. */
const HIGH_WATER = 64 * 1024;
const EMPTY = new Uint8Array(0);

export interface RespondOptions {
  /** Emit 'wantTrailers' after end() and the last DATA; the handler calls sendTrailers(). */
  waitForTrailers?: boolean;
  /** Headers only: no body follows. */
  endStream?: boolean;
}

/**
 * What a stream needs from its connection: the connection-level window and frame size, and
 * the frames it writes on the stream's behalf. H2Connection implements it; the stream is typed
 * against this rather than the class, so connection.ts and stream.ts do not import each other.
 */
export interface StreamConnection {
  /** What the peer lets us send on the connection: the stream spends it as it sends DATA. */
  sendWindow: number;
  readonly peerMaxFrameSize: number;
  /** Grant a stream more window once it has consumed this much. */
  readonly streamCreditThreshold: number;
  canWriteData(): boolean;
  sendHeaders(id: number, block: Uint8Array, endStream: boolean): void;
  sendData(id: number, data: Uint8Array, start: number, end: number, endStream: boolean): void;
  sendRst(id: number, code: ErrorCode): void;
  sendWindowUpdate(id: number, increment: number): void;
  /** Received bytes that are gone from the stream's buffers, for the connection's window. */
  creditConnection(n: number): void;
  /** The stream has DATA waiting for window or socket room: the connection pumps it again when there is some. */
  dataBlocked(stream: H2Stream): void;
  /** The stream wants 'wantTrailers' emitted once its last DATA is out. */
  askTrailers(stream: H2Stream): void;
  streamClosed(stream: H2Stream): void;
  /** A handler of the stream's events threw. */
  handlerFailed(stream: H2Stream, err: unknown): void;
}

export class H2Stream extends Emitter {
  /** What the peer lets us send on this stream (may go negative after a SETTINGS change). */
  sendWindow: number;
  /** What the peer may still send on this stream before we grant more. */
  recvWindow: number;
  private recvUnacked = 0;

  /** The peer sent END_STREAM. */
  remoteEnded = false;
  /** We sent END_STREAM (or reset the stream). */
  localEnded = false;
  closed = false;
  destroyed = false;
  headersSent = false;
  /** The RST_STREAM code when the stream was reset (by either side). */
  rstCode: number | undefined;

  private waitForTrailers = false;
  /** end() was called: no more writes. */
  private ending = false;
  private trailersAsked = false;
  private trailers: Uint8Array | null = null;

  // Data that did not fit the peer's windows, oldest first.
  private queue: Uint8Array[] | null = null;
  private queued = 0;
  private needDrain = false;

  // Received data held while the stream is paused or nobody listens yet.
  private flowing = false;
  private paused = false;
  private inbox: Uint8Array[] | null = null;
  private inboxBytes = 0;
  private endEmitted = false;
  private deliverScheduled = false;

  constructor(
    private readonly conn: StreamConnection,
    readonly id: number,
    sendWindow: number,
    recvWindow: number,
  ) {
    super();
    this.sendWindow = sendWindow;
    this.recvWindow = recvWindow;
  }

  // --- the node:http2 surface ----------------------------------------------

  respond(headers: OutgoingHeaders = { ":status": 200 }, options?: RespondOptions): void {
    if (this.headersSent || this.closed) return;
    this.headersSent = true;
    this.waitForTrailers = options?.waitForTrailers === true;
    const block = isGrpcResponse(headers) ? GRPC_RESPONSE_BLOCK : encodeHeaders(headers);
    const endStream = options?.endStream === true;
    this.conn.sendHeaders(this.id, block, endStream);
    if (endStream) {
      this.ending = true;
      this.endLocal();
    }
  }

  /** Returns false when the caller should wait for 'drain' before writing more. */
  write(chunk: Uint8Array | string, encoding?: unknown, cb?: () => void): boolean {
    if (typeof encoding === "function") cb = encoding as () => void;
    if (cb) queueMicrotask(cb);
    if (this.closed || this.ending) return false;
    if (!this.headersSent) this.respond();
    const data = typeof chunk === "string" ? Buffer.from(chunk) : chunk;
    if (data.length === 0) return true;
    if (this.queued === 0) {
      const sent = this.send(data, 0);
      if (sent === data.length) return true;
      this.enqueue(sent === 0 ? data : data.subarray(sent));
    } else {
      this.enqueue(data);
    }
    this.conn.dataBlocked(this);
    if (this.queued >= HIGH_WATER) {
      this.needDrain = true;
      return false;
    }
    return true;
  }

  end(chunk?: Uint8Array | string | (() => void), encoding?: unknown, cb?: () => void): this {
    if (typeof chunk === "function") {
      cb = chunk;
      chunk = undefined;
    } else if (typeof encoding === "function") {
      cb = encoding as () => void;
    }
    if (chunk !== undefined && chunk.length > 0) this.write(chunk);
    if (cb) this.once("finish", cb);
    if (this.ending || this.closed) return this;
    if (!this.headersSent) this.respond();
    this.ending = true;
    this.maybeFinish();
    return this;
  }

  /** Sends the trailers (HEADERS with END_STREAM) once all data is out. */
  sendTrailers(trailers: OutgoingHeaders): void {
    if (this.closed || this.localEnded || this.trailers !== null) return;
    this.trailers = isGrpcOkTrailer(trailers) ? GRPC_OK_TRAILER_BLOCK : encodeHeaders(trailers);
    this.ending = true;
    this.maybeFinish();
  }

  pause(): this {
    this.paused = true;
    this.flowing = false;
    return this;
  }

  resume(): this {
    this.paused = false;
    this.flowing = true;
    this.scheduleDelivery();
    return this;
  }

  /** Resets the stream with `code` (node's stream.close). */
  close(code: number = ErrorCode.NO_ERROR): void {
    if (this.closed) return;
    this.conn.sendRst(this.id, code);
    this.finishClose(code);
  }

  destroy(err?: unknown): this {
    this.close(err ? ErrorCode.INTERNAL_ERROR : ErrorCode.CANCEL);
    return this;
  }

  protected override onListenerAdded(name: string): void {
    // Like a node Readable: attaching 'data' starts the flow unless paused.
    if (name === "data" && !this.paused && !this.flowing) {
      this.flowing = true;
      this.scheduleDelivery();
    }
  }

  // --- output, driven by the connection ------------------------------------

  /** Frames as much of `data[from..]` as the windows allow; returns the new offset. */
  private send(data: Uint8Array, from: number): number {
    const conn = this.conn;
    while (from < data.length) {
      const room = Math.min(this.sendWindow, conn.sendWindow, conn.peerMaxFrameSize);
      if (room <= 0 || !conn.canWriteData()) break;
      const n = Math.min(room, data.length - from);
      conn.sendData(this.id, data, from, from + n, false);
      this.sendWindow -= n;
      conn.sendWindow -= n;
      from += n;
    }
    if (conn.sendWindow < 0) throw new Error("h2: connection send window went negative");
    return from;
  }

  private enqueue(data: Uint8Array): void {
    (this.queue ??= []).push(data);
    this.queued += data.length;
  }

  /**
   * Sends queued data the windows now allow. Returns true when nothing is
   * left queued (the connection then stops tracking this stream).
   */
  pump(): boolean {
    const q = this.queue;
    if (this.closed || q === null) return true;
    while (q.length > 0) {
      const chunk = q[0];
      const sent = this.send(chunk, 0);
      this.queued -= sent;
      if (sent < chunk.length) {
        q[0] = chunk.subarray(sent);
        return false;
      }
      q.shift();
    }
    if (this.needDrain) {
      this.needDrain = false;
      this.emit("drain");
    }
    this.maybeFinish();
    return this.queued === 0;
  }

  /** After end(): once the queue is empty, ask for trailers or end the stream. */
  private maybeFinish(): void {
    if (!this.ending || this.localEnded || this.closed || this.queued > 0) return;
    if (this.trailers !== null) {
      this.conn.sendHeaders(this.id, this.trailers, true);
      this.endLocal();
    } else if (!this.waitForTrailers) {
      this.conn.sendData(this.id, EMPTY, 0, 0, true);
      this.endLocal();
    } else if (!this.trailersAsked) {
      // Node emits 'wantTrailers' asynchronously; the connection does it
      // just before its next flush, so the trailers join the same write.
      this.trailersAsked = true;
      this.conn.askTrailers(this);
    }
  }

  /** Called by the connection before a flush. */
  emitWantTrailers(): void {
    if (this.closed || this.localEnded) return;
    if (this.listenerCount("wantTrailers") === 0) {
      // Nobody will send trailers: end with an empty HEADERS rather than hang.
      this.sendTrailers({});
      return;
    }
    this.emit("wantTrailers");
  }

  private endLocal(): void {
    this.localEnded = true;
    this.emit("finish");
    if (this.closed) return;
    if (this.remoteEnded) {
      this.finishClose(undefined);
    } else {
      // The response is complete before the request: ask the client to stop
      // sending without an error (RFC 9113 section 8.1).
      this.conn.sendRst(this.id, ErrorCode.NO_ERROR);
      this.finishClose(undefined);
    }
  }

  // --- input, driven by the connection -------------------------------------

  /** DATA (already counted against the windows) and/or END_STREAM from the peer. */
  receive(data: Uint8Array, endStream: boolean): void {
    if (data.length > 0) {
      if (this.flowing && this.inbox === null) {
        this.emit("data", data);
        this.consumed(data.length);
      } else {
        // Copy: the bytes are a view on a socket chunk we do not own.
        (this.inbox ??= []).push(data.slice());
        this.inboxBytes += data.length;
        if (this.flowing) this.scheduleDelivery();
      }
    }
    if (endStream) {
      this.remoteEnded = true;
      if (this.inbox === null && this.flowing) this.emitEnd();
      else if (this.flowing) this.scheduleDelivery();
      if (this.localEnded) this.finishClose(undefined);
    }
  }

  /** Bytes the application took (or padding): grant them back to the peer. */
  consumed(n: number): void {
    this.conn.creditConnection(n);
    if (this.remoteEnded || this.closed) return;
    this.recvUnacked += n;
    if (this.recvUnacked >= this.conn.streamCreditThreshold) {
      this.conn.sendWindowUpdate(this.id, this.recvUnacked);
      this.recvWindow += this.recvUnacked;
      this.recvUnacked = 0;
    }
  }

  private scheduleDelivery(): void {
    if (this.deliverScheduled || (this.inbox === null && !(this.remoteEnded && !this.endEmitted))) return;
    this.deliverScheduled = true;
    // Asynchronous, as node's resume(): a caller inside a 'data' handler
    // (a bounded queue resuming its producer) must not re-enter itself.
    queueMicrotask(() => this.deliver());
  }

  private deliver(): void {
    this.deliverScheduled = false;
    try {
      const inbox = this.inbox;
      while (inbox !== null && inbox.length > 0 && this.flowing && !this.closed) {
        const chunk = inbox.shift() as Uint8Array;
        this.inboxBytes -= chunk.length;
        this.emit("data", chunk);
        this.consumed(chunk.length);
      }
      if (inbox !== null && inbox.length === 0) this.inbox = null;
      if (this.inbox === null && this.flowing && this.remoteEnded && !this.closed) this.emitEnd();
    } catch (err) {
      this.conn.handlerFailed(this, err);
    }
  }

  private emitEnd(): void {
    if (this.endEmitted) return;
    this.endEmitted = true;
    this.emit("end");
  }

  /** RST_STREAM from the peer. */
  peerReset(code: number): void {
    if (this.closed) return;
    if (code !== ErrorCode.NO_ERROR && code !== ErrorCode.CANCEL && this.listenerCount("error") > 0) {
      const err = Object.assign(new Error(`Stream closed with error code ${code}`), { code: "ERR_HTTP2_STREAM_ERROR" });
      this.rstCode = code;
      this.emit("error", err);
    }
    if (!this.remoteEnded) this.emit("aborted");
    this.finishClose(code);
  }

  /** The stream ends without an exchange of frames (connection gone, or reset by us). */
  abort(code: number): void {
    if (this.closed) return;
    if (!this.remoteEnded) this.emit("aborted");
    this.finishClose(code);
  }

  private finishClose(code: number | undefined): void {
    if (this.closed) return;
    this.closed = true;
    this.destroyed = true;
    this.localEnded = true;
    if (code !== undefined) this.rstCode = code;
    this.queue = null;
    this.queued = 0;
    // Data nobody will read still used the connection's window: give it back.
    if (this.inboxBytes > 0) this.conn.creditConnection(this.inboxBytes);
    this.inbox = null;
    this.inboxBytes = 0;
    this.conn.streamClosed(this);
    this.emit("close");
  }
}
