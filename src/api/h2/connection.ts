// The server side of one HTTP/2 connection (RFC 9113) on an accepted socket:
// frame parsing and dispatch, stream table and ids, both directions of flow
// control, SETTINGS / PING / GOAWAY, and batched output (one socket write per
// event-loop turn). Protocol errors end the connection with GOAWAY or reset
// one stream; nothing a peer sends can throw out of here.
import {
  connectionError,
  DEFAULT_WINDOW,
  ErrorCode,
  Flag,
  FrameType,
  H2Error,
  MAX_MAX_FRAME_SIZE,
  MAX_WINDOW,
  MIN_MAX_FRAME_SIZE,
  parseSettings,
  readU32,
  Setting,
  streamError,
  padLength,
  writeData,
  writeGoaway,
  writeHeaders,
  writePingAck,
  writeRstStream,
  writeSettings,
  writeSettingsAck,
  writeWindowUpdate,
} from "./frames.js";
import {
  HAS_PSEUDO,
  HpackDecoder,
  HpackError,
  MALFORMED_NAME,
  MALFORMED_VALUE,
  PSEUDO_AFTER_REGULAR,
  TABLE_SIZE_ZERO,
  TOO_LARGE,
  UNKNOWN_PSEUDO,
  type HeaderMap,
} from "./hpack.js";
import { Output } from "./output.js";
import { FrameReader } from "./reader.js";
import { H2Stream, type StreamConnection } from "./stream.js";

export interface H2Options {
  /** SETTINGS_MAX_CONCURRENT_STREAMS; streams beyond it are refused (REFUSED_STREAM). */
  maxConcurrentStreams: number;
  /** Called for every new stream, with its request headers (lower-case names). */
  onStream(stream: H2Stream, headers: HeaderMap): void;
  /** Our per-stream receive window (SETTINGS_INITIAL_WINDOW_SIZE). Default 4 MiB. */
  initialWindowSize?: number;
  /** Our connection receive window. Default 16 MiB. */
  connectionWindowSize?: number;
  /** Largest frame we accept (SETTINGS_MAX_FRAME_SIZE). Default 16 KiB. */
  maxFrameSize?: number;
  /** Largest header list we keep (SETTINGS_MAX_HEADER_LIST_SIZE). Default 64 KiB. */
  maxHeaderListSize?: number;
  /** Output we hold for a socket that is not taking it before we stop reading requests. Default 1 MiB. */
  maxOutputBuffer?: number;
  /** A stream handler threw: the stream was reset; report it here (default: console.error). */
  onError?(err: unknown): void;
}

/**
 * The socket surface we use: a node:net Socket has it, and so does BunSocket
 * (Bun.listen), so the connection does not care which one it runs on.
 */
export interface H2Socket {
  /** Returns false when the bytes were buffered: wait for 'drain'. */
  write(data: Uint8Array): boolean;
  end(): unknown;
  destroy(): unknown;
  pause(): unknown;
  resume(): unknown;
  /** Events used: data (Uint8Array), drain, error, close. */
  on(event: string, listener: (...args: any[]) => void): unknown;
  readonly destroyed: boolean;
  setNoDelay?(noDelay?: boolean): unknown;
}

/** Our HPACK table size (SETTINGS_HEADER_TABLE_SIZE, left at its default). */
const HEADER_TABLE_SIZE = 4096;
/** A header block may span at most this many CONTINUATION frames. */
const MAX_CONTINUATIONS = 64;
/** Stream ids we reset, remembered so the peer's in-flight HEADERS for them are ignored. */
const RECENT_RESETS = 256;
/** After a fatal error, how long the peer gets to read our GOAWAY. */
const LINGER_MS = 1000;
const EMPTY = new Uint8Array(0);

export class H2Connection implements StreamConnection {
  // --- read by streams ---
  /** What the peer lets us send on the connection. */
  sendWindow = DEFAULT_WINDOW;
  peerMaxFrameSize = MIN_MAX_FRAME_SIZE;
  /** Grant a stream more window once it has consumed this much. */
  readonly streamCreditThreshold: number;

  private readonly out = new Output();
  private readonly decoder: HpackDecoder;
  private readonly streams = new Map<number, H2Stream>();
  /** Streams with data waiting for window or for the socket, in service order. */
  private readonly blocked = new Set<H2Stream>();
  private trailerWaiters: H2Stream[] = [];
  private readonly recentResets: number[] = [];
  private readonly recentResetSet = new Set<number>();

  private readonly localWindow: number;
  private readonly connWindow: number;
  private readonly localMaxFrame: number;
  private readonly maxHeaderListSize: number;
  /** Output waiting in our buffer beyond which a blocked socket stops us reading requests. */
  private readonly outputHighWater: number;
  private peerInitialWindow = DEFAULT_WINDOW;
  /** What the peer may still send on the connection. */
  private recvWindow: number;
  private recvUnacked = 0;
  private lastStreamId = 0;

  private readonly reader: FrameReader;
  private settingsSeen = false;
  // A header block split over CONTINUATION frames.
  private blockStream = 0;
  private blockFlags = 0;
  private blockParts: Uint8Array[] = [];
  private blockBytes = 0;
  private selfDependent = false;

  /** Peers lower their HPACK table with SETTINGS; our first block empties it for good. */
  private tableSizeUpdatePending = true;
  private flushScheduled = false;
  private socketBlocked = false;
  private readingPaused = false;
  private goawaySent = false;
  private peerGoaway = false;
  private resetWindowStart = 0;
  private resetsInWindow = 0;
  private readonly maxResetsPerSecond: number;
  private dead = false;
  private resolveClosed!: () => void;
  /** Resolves when the socket has closed. */
  readonly closed: Promise<void> = new Promise((r) => (this.resolveClosed = r));

  constructor(
    private readonly socket: H2Socket,
    private readonly opts: H2Options,
  ) {
    this.localWindow = opts.initialWindowSize ?? 4 * 1024 * 1024;
    this.connWindow = opts.connectionWindowSize ?? 16 * 1024 * 1024;
    this.localMaxFrame = opts.maxFrameSize ?? MIN_MAX_FRAME_SIZE;
    this.maxHeaderListSize = opts.maxHeaderListSize ?? 64 * 1024;
    this.outputHighWater = opts.maxOutputBuffer ?? 1024 * 1024;
    this.maxResetsPerSecond = Math.max(100, opts.maxConcurrentStreams);
    if (this.localWindow > MAX_WINDOW || this.connWindow > MAX_WINDOW || this.connWindow < DEFAULT_WINDOW) throw new RangeError("h2: window out of range");
    if (this.localMaxFrame < MIN_MAX_FRAME_SIZE || this.localMaxFrame > MAX_MAX_FRAME_SIZE) throw new RangeError("h2: maxFrameSize out of range");
    this.streamCreditThreshold = Math.max(1, this.localWindow >>> 2);
    this.recvWindow = this.connWindow;
    this.decoder = new HpackDecoder(HEADER_TABLE_SIZE, this.maxHeaderListSize);
    this.reader = new FrameReader(this.localMaxFrame, this.onFrame);
  }

  /** Sends our preface and starts reading; `initial` are bytes read before the handoff. */
  start(initial: Uint8Array): void {
    const settings: [Setting, number][] = [
      [Setting.MAX_CONCURRENT_STREAMS, this.opts.maxConcurrentStreams],
      [Setting.INITIAL_WINDOW_SIZE, this.localWindow],
      [Setting.MAX_HEADER_LIST_SIZE, this.maxHeaderListSize],
    ];
    if (this.localMaxFrame !== MIN_MAX_FRAME_SIZE) settings.push([Setting.MAX_FRAME_SIZE, this.localMaxFrame]);
    writeSettings(this.out, settings);
    if (this.connWindow > DEFAULT_WINDOW) writeWindowUpdate(this.out, 0, this.connWindow - DEFAULT_WINDOW);
    const socket = this.socket;
    socket.setNoDelay?.(true);
    socket.on("data", (chunk: Uint8Array) => this.onData(chunk));
    socket.on("drain", () => this.onDrain());
    socket.on("error", () => this.teardown());
    socket.on("close", () => this.teardown());
    this.writeOut();
    if (initial.length > 0) this.onData(initial);
    socket.resume();
  }

  /** Graceful close: GOAWAY now, then end the socket when every stream is done. */
  close(): Promise<void> {
    if (!this.dead && !this.goawaySent) {
      this.goawaySent = true;
      writeGoaway(this.out, this.lastStreamId, ErrorCode.NO_ERROR, "");
      this.scheduleFlush();
      if (this.streams.size === 0) this.endSocket();
    }
    return this.closed;
  }

  /** Immediate close: every stream is aborted. */
  destroy(): void {
    this.teardown();
    this.socket.destroy();
  }

  get activeStreams(): number {
    return this.streams.size;
  }

  // --- input ----------------------------------------------------------------

  private onData(chunk: Uint8Array): void {
    if (this.dead) return;
    try {
      this.reader.push(chunk);
    } catch (err) {
      // The reader throws only connection errors (preface, frame size).
      return this.fail(err instanceof H2Error ? err : connectionError(ErrorCode.INTERNAL_ERROR, String(err)));
    }
    this.checkBackpressure();
  }

  /** One frame, `b[s, e)` its payload; returns false once the connection is dead. */
  private readonly onFrame = (type: number, flags: number, id: number, b: Uint8Array, s: number, e: number): boolean => {
    try {
      this.dispatch(type, flags, id, b, s, e);
    } catch (err) {
      this.onFrameError(id, err);
    }
    return !this.dead;
  };

  private dispatch(type: number, flags: number, id: number, b: Uint8Array, s: number, e: number): void {
    if (this.blockStream !== 0 && (type !== FrameType.CONTINUATION || id !== this.blockStream)) {
      throw connectionError(ErrorCode.PROTOCOL_ERROR, "expected CONTINUATION");
    }
    if (!this.settingsSeen && (type !== FrameType.SETTINGS || (flags & Flag.ACK) !== 0)) {
      throw connectionError(ErrorCode.PROTOCOL_ERROR, "first frame must be SETTINGS");
    }
    switch (type) {
      case FrameType.DATA:
        return this.onDataFrame(flags, id, b, s, e);
      case FrameType.HEADERS:
        return this.onHeadersFrame(flags, id, b, s, e);
      case FrameType.PRIORITY:
        // Advisory, and we schedule by arrival: only its framing is checked.
        if (id === 0) throw connectionError(ErrorCode.PROTOCOL_ERROR, "PRIORITY on stream 0");
        if (e - s !== 5) throw streamError(id, ErrorCode.FRAME_SIZE_ERROR, "PRIORITY length");
        return;
      case FrameType.RST_STREAM:
        return this.onRstStream(id, b, s, e);
      case FrameType.SETTINGS:
        return this.onSettings(flags, id, b, s, e);
      case FrameType.PUSH_PROMISE:
        throw connectionError(ErrorCode.PROTOCOL_ERROR, "client sent PUSH_PROMISE");
      case FrameType.PING:
        if (id !== 0) throw connectionError(ErrorCode.PROTOCOL_ERROR, "PING on a stream");
        if (e - s !== 8) throw connectionError(ErrorCode.FRAME_SIZE_ERROR, "PING length");
        // Answer every ping: Go's client measures bandwidth-delay with them.
        if ((flags & Flag.ACK) === 0) {
          writePingAck(this.out, b, s);
          this.scheduleFlush();
        }
        return;
      case FrameType.GOAWAY:
        if (id !== 0) throw connectionError(ErrorCode.PROTOCOL_ERROR, "GOAWAY on a stream");
        if (e - s < 8) throw connectionError(ErrorCode.FRAME_SIZE_ERROR, "GOAWAY length");
        this.peerGoaway = true;
        if (this.streams.size === 0) this.close();
        return;
      case FrameType.WINDOW_UPDATE:
        return this.onWindowUpdate(id, b, s, e);
      case FrameType.CONTINUATION:
        return this.onContinuation(flags, id, b, s, e);
      default:
        // Unknown frame types are ignored (section 4.1).
        return;
    }
  }

  private onDataFrame(flags: number, id: number, b: Uint8Array, s: number, e: number): void {
    if (id === 0) throw connectionError(ErrorCode.PROTOCOL_ERROR, "DATA on stream 0");
    const length = e - s;
    if (length > this.recvWindow) throw connectionError(ErrorCode.FLOW_CONTROL_ERROR, "DATA beyond the connection window");
    this.recvWindow -= length;
    const stream = this.streams.get(id);
    if (stream === undefined) {
      this.creditConnection(length);
      if (id > this.lastStreamId || (id & 1) === 0) throw connectionError(ErrorCode.PROTOCOL_ERROR, "DATA on an idle stream");
      // A stream we closed or reset: frames in flight are expected; drop them.
      return;
    }
    if (stream.remoteEnded) {
      this.creditConnection(length);
      throw streamError(id, ErrorCode.STREAM_CLOSED, "DATA after END_STREAM");
    }
    if (length > stream.recvWindow) {
      this.creditConnection(length);
      throw streamError(id, ErrorCode.FLOW_CONTROL_ERROR, "DATA beyond the stream window");
    }
    stream.recvWindow -= length;
    const pad = padLength(flags, b, s, e);
    const start = (flags & Flag.PADDED) === 0 ? s : s + 1;
    const end = e - pad;
    // Padding is flow-controlled but never delivered: grant it back at once.
    if (length > end - start) stream.consumed(length - (end - start));
    stream.receive(end > start ? b.subarray(start, end) : EMPTY, (flags & Flag.END_STREAM) !== 0);
  }

  private onHeadersFrame(flags: number, id: number, b: Uint8Array, s: number, e: number): void {
    if (id === 0) throw connectionError(ErrorCode.PROTOCOL_ERROR, "HEADERS on stream 0");
    const pad = padLength(flags, b, s, e);
    let start = (flags & Flag.PADDED) === 0 ? s : s + 1;
    const end = e - pad;
    this.selfDependent = false;
    if ((flags & Flag.PRIORITY) !== 0) {
      if (end - start < 5) throw connectionError(ErrorCode.FRAME_SIZE_ERROR, "HEADERS too short for its priority");
      // Priority is ignored, but a stream depending on itself is an error (section 5.3.1).
      this.selfDependent = (readU32(b, start) & 0x7fff_ffff) === id;
      start += 5;
    }
    if ((flags & Flag.END_HEADERS) !== 0) {
      this.onHeaderBlock(id, flags, b, start, end);
      return;
    }
    this.blockStream = id;
    this.blockFlags = flags;
    this.blockParts = [b.slice(start, end)];
    this.blockBytes = end - start;
  }

  private onContinuation(flags: number, id: number, b: Uint8Array, s: number, e: number): void {
    if (this.blockStream === 0 || id !== this.blockStream) throw connectionError(ErrorCode.PROTOCOL_ERROR, "unexpected CONTINUATION");
    this.blockBytes += e - s;
    this.blockParts.push(b.slice(s, e));
    // Bound what a peer can make us hold before the block is even decoded.
    if (this.blockBytes > 2 * this.maxHeaderListSize || this.blockParts.length > MAX_CONTINUATIONS) {
      throw connectionError(ErrorCode.ENHANCE_YOUR_CALM, "header block too large");
    }
    if ((flags & Flag.END_HEADERS) === 0) return;
    const block = new Uint8Array(this.blockBytes);
    let off = 0;
    for (const part of this.blockParts) {
      block.set(part, off);
      off += part.length;
    }
    const streamFlags = this.blockFlags;
    this.blockStream = 0;
    this.blockParts = [];
    this.blockBytes = 0;
    this.onHeaderBlock(id, streamFlags, block, 0, block.length);
  }

  private onHeaderBlock(id: number, flags: number, block: Uint8Array, start: number, end: number): void {
    let headers: HeaderMap;
    try {
      // Always decode, even for a stream we will refuse: the table must stay in step.
      headers = this.decoder.decode(block, start, end);
    } catch (err) {
      if (err instanceof HpackError) throw connectionError(ErrorCode.COMPRESSION_ERROR, err.message);
      throw err;
    }
    const decoded = this.decoder.flags;
    const malformed = (decoded & (MALFORMED_NAME | MALFORMED_VALUE | PSEUDO_AFTER_REGULAR | UNKNOWN_PSEUDO)) !== 0;
    const endStream = (flags & Flag.END_STREAM) !== 0;
    const existing = this.streams.get(id);
    if (existing !== undefined) {
      // Trailers.
      if (existing.remoteEnded) throw streamError(id, ErrorCode.STREAM_CLOSED, "HEADERS after END_STREAM");
      if (!endStream) throw streamError(id, ErrorCode.PROTOCOL_ERROR, "trailers without END_STREAM");
      if (malformed || (decoded & HAS_PSEUDO) !== 0) throw streamError(id, ErrorCode.PROTOCOL_ERROR, "malformed trailers");
      existing.emit("trailers", headers);
      existing.receive(EMPTY, true);
      return;
    }
    if ((id & 1) === 0) throw connectionError(ErrorCode.PROTOCOL_ERROR, `stream id ${id} is even`);
    if (id <= this.lastStreamId) {
      if (this.recentResetSet.has(id)) return; // in flight when we reset it
      throw connectionError(ErrorCode.PROTOCOL_ERROR, `stream id ${id} not above ${this.lastStreamId}`);
    }
    this.lastStreamId = id;
    if (this.goawaySent || this.streams.size >= this.opts.maxConcurrentStreams) {
      this.refuse(id, ErrorCode.REFUSED_STREAM);
      return;
    }
    if (this.selfDependent || malformed || !validRequest(headers)) {
      this.refuse(id, ErrorCode.PROTOCOL_ERROR);
      return;
    }
    const stream = new H2Stream(this, id, this.peerInitialWindow, this.localWindow);
    this.streams.set(id, stream);
    if ((decoded & TOO_LARGE) !== 0) {
      // Part of the list was dropped: answer 431 instead of passing on a truncated request.
      stream.respond({ ":status": 431 }, { endStream: true });
      return;
    }
    this.opts.onStream(stream, headers);
    // END_STREAM only after the handler could attach its listeners.
    if (endStream && !stream.closed) stream.receive(EMPTY, true);
  }

  private onRstStream(id: number, b: Uint8Array, s: number, e: number): void {
    if (id === 0) throw connectionError(ErrorCode.PROTOCOL_ERROR, "RST_STREAM on stream 0");
    if (e - s !== 4) throw connectionError(ErrorCode.FRAME_SIZE_ERROR, "RST_STREAM length");
    const stream = this.streams.get(id);
    if (stream === undefined) {
      if (id > this.lastStreamId) throw connectionError(ErrorCode.PROTOCOL_ERROR, "RST_STREAM on an idle stream");
      return;
    }
    // "Rapid reset" (CVE-2023-44487): opening and cancelling streams in a loop
    // starts handler work at no cost to the peer. Bound cancels per second.
    const now = Date.now();
    if (now - this.resetWindowStart >= 1000) {
      this.resetWindowStart = now;
      this.resetsInWindow = 0;
    }
    if (++this.resetsInWindow > this.maxResetsPerSecond) throw connectionError(ErrorCode.ENHANCE_YOUR_CALM, "too many stream resets");
    stream.peerReset(readU32(b, s));
  }

  private onSettings(flags: number, id: number, b: Uint8Array, s: number, e: number): void {
    if (id !== 0) throw connectionError(ErrorCode.PROTOCOL_ERROR, "SETTINGS on a stream");
    if ((flags & Flag.ACK) !== 0) {
      if (e !== s) throw connectionError(ErrorCode.FRAME_SIZE_ERROR, "SETTINGS ACK with a payload");
      return;
    }
    const settings = parseSettings(b, s, e);
    this.settingsSeen = true;
    if (settings.headerTableSize !== undefined) this.tableSizeUpdatePending = true;
    if (settings.maxFrameSize !== undefined) this.peerMaxFrameSize = settings.maxFrameSize;
    if (settings.initialWindowSize !== undefined) {
      // The change applies to every open stream, and may make windows negative (section 6.9.2).
      const delta = settings.initialWindowSize - this.peerInitialWindow;
      this.peerInitialWindow = settings.initialWindowSize;
      for (const stream of this.streams.values()) {
        stream.sendWindow += delta;
        if (stream.sendWindow > MAX_WINDOW) throw connectionError(ErrorCode.FLOW_CONTROL_ERROR, "stream window above 2^31-1");
      }
    }
    writeSettingsAck(this.out);
    this.scheduleFlush();
    if (settings.initialWindowSize !== undefined) this.pumpBlocked();
  }

  private onWindowUpdate(id: number, b: Uint8Array, s: number, e: number): void {
    if (e - s !== 4) throw connectionError(ErrorCode.FRAME_SIZE_ERROR, "WINDOW_UPDATE length");
    const increment = readU32(b, s) & 0x7fff_ffff;
    if (id === 0) {
      if (increment === 0) throw connectionError(ErrorCode.PROTOCOL_ERROR, "WINDOW_UPDATE of 0");
      this.sendWindow += increment;
      if (this.sendWindow > MAX_WINDOW) throw connectionError(ErrorCode.FLOW_CONTROL_ERROR, "connection window above 2^31-1");
      this.pumpBlocked();
      return;
    }
    const stream = this.streams.get(id);
    if (stream === undefined) {
      if (id > this.lastStreamId) throw connectionError(ErrorCode.PROTOCOL_ERROR, "WINDOW_UPDATE on an idle stream");
      return;
    }
    if (increment === 0) throw streamError(id, ErrorCode.PROTOCOL_ERROR, "WINDOW_UPDATE of 0");
    stream.sendWindow += increment;
    if (stream.sendWindow > MAX_WINDOW) throw streamError(id, ErrorCode.FLOW_CONTROL_ERROR, "stream window above 2^31-1");
    if (this.blocked.has(stream) && stream.pump()) this.blocked.delete(stream);
  }

  private onFrameError(id: number, err: unknown): void {
    if (err instanceof H2Error) {
      if (err.streamId === 0) return this.fail(err);
      this.resetStream(err.streamId, err.code);
      return;
    }
    // A handler threw (or we have a bug): reset the stream it ran for.
    const stream = this.streams.get(id);
    if (stream !== undefined) this.handlerFailed(stream, err);
    else if (id !== 0) this.report(err);
    else this.fail(connectionError(ErrorCode.INTERNAL_ERROR, String((err as Error)?.message ?? err)));
  }

  /** A stream handler threw: report it and reset the stream. */
  handlerFailed(stream: H2Stream, err: unknown): void {
    this.report(err);
    this.resetStream(stream.id, ErrorCode.INTERNAL_ERROR);
  }

  private report(err: unknown): void {
    try {
      (this.opts.onError ?? ((e: unknown) => console.error("h2: stream handler failed:", e)))(err);
    } catch {
      // A failing error reporter must not take the connection down.
    }
  }

  private resetStream(id: number, code: ErrorCode): void {
    const stream = this.streams.get(id);
    this.sendRst(id, code);
    if (stream !== undefined) stream.abort(code);
  }

  private refuse(id: number, code: ErrorCode): void {
    this.sendRst(id, code);
  }

  // --- output, called by streams ---------------------------------------------

  canWriteData(): boolean {
    return !this.socketBlocked && this.out.size < this.outputHighWater;
  }

  sendHeaders(id: number, block: Uint8Array, endStream: boolean): void {
    if (this.dead) return;
    writeHeaders(this.out, id, block, endStream, this.peerMaxFrameSize, this.tableSizeUpdatePending ? TABLE_SIZE_ZERO : -1);
    this.tableSizeUpdatePending = false;
    this.scheduleFlush();
  }

  sendData(id: number, data: Uint8Array, start: number, end: number, endStream: boolean): void {
    if (this.dead) return;
    writeData(this.out, id, data, start, end, endStream);
    this.scheduleFlush();
  }

  sendRst(id: number, code: ErrorCode): void {
    if (this.dead) return;
    writeRstStream(this.out, id, code);
    this.rememberReset(id);
    this.scheduleFlush();
  }

  sendWindowUpdate(id: number, increment: number): void {
    if (this.dead) return;
    writeWindowUpdate(this.out, id, increment);
    this.scheduleFlush();
  }

  /** Received bytes that are gone from our buffers: grant them back in batches. */
  creditConnection(n: number): void {
    this.recvUnacked += n;
    if (this.recvUnacked >= this.connWindow >>> 2) {
      this.sendWindowUpdate(0, this.recvUnacked);
      this.recvWindow += this.recvUnacked;
      this.recvUnacked = 0;
    }
    if (this.recvWindow + this.recvUnacked > this.connWindow) throw new Error("h2: connection receive window accounting broken");
  }

  dataBlocked(stream: H2Stream): void {
    this.blocked.add(stream);
  }

  askTrailers(stream: H2Stream): void {
    this.trailerWaiters.push(stream);
    this.scheduleFlush();
  }

  streamClosed(stream: H2Stream): void {
    this.streams.delete(stream.id);
    if (this.blocked.size > 0) this.blocked.delete(stream);
    if ((this.goawaySent || this.peerGoaway) && this.streams.size === 0 && !this.dead) {
      if (!this.goawaySent) this.close();
      else this.endSocket();
    }
  }

  private rememberReset(id: number): void {
    if (this.recentResetSet.has(id)) return;
    this.recentResets.push(id);
    this.recentResetSet.add(id);
    if (this.recentResets.length > RECENT_RESETS) this.recentResetSet.delete(this.recentResets.shift() as number);
  }

  /** Lets blocked streams send what the windows and the socket now allow. */
  private pumpBlocked(): void {
    if (this.blocked.size === 0) return;
    for (const stream of Array.from(this.blocked)) {
      if (this.sendWindow <= 0 || !this.canWriteData()) break;
      this.blocked.delete(stream);
      try {
        // Re-added at the back when it still has data: round robin.
        if (!stream.pump()) this.blocked.add(stream);
      } catch (err) {
        this.handlerFailed(stream, err); // a 'drain' listener threw
      }
    }
  }

  // --- flushing ---------------------------------------------------------------

  private scheduleFlush(): void {
    if (this.flushScheduled || this.dead) return;
    this.flushScheduled = true;
    // setImmediate, not a microtask: handlers that resolve over several
    // promise hops in this turn still land in the same write.
    setImmediate(this.flush);
  }

  private readonly flush = (): void => {
    if (this.dead) return;
    // flushScheduled stays set while we run: what handlers write now joins this write.
    if (this.trailerWaiters.length > 0) {
      const waiters = this.trailerWaiters;
      this.trailerWaiters = [];
      for (const stream of waiters) {
        try {
          stream.emitWantTrailers();
        } catch (err) {
          this.handlerFailed(stream, err);
        }
      }
    }
    this.pumpAndWrite();
    this.flushScheduled = false;
    // A 'drain' listener may have written after our last write.
    if (this.out.size > 0 && !this.socketBlocked) this.scheduleFlush();
    this.checkBackpressure();
  };

  /** Writes our buffer, refilling it from blocked streams while the socket keeps up. */
  private pumpAndWrite(): void {
    for (;;) {
      this.writeOut();
      if (this.blocked.size === 0 || this.sendWindow <= 0 || !this.canWriteData()) return;
      const before = this.out.size;
      this.pumpBlocked();
      if (this.out.size === before) return; // only stream windows are closed
    }
  }

  private writeOut(): void {
    if (this.socketBlocked || this.socket.destroyed) return;
    const buf = this.out.take();
    if (buf === null) return;
    if (!this.socket.write(buf)) this.socketBlocked = true;
  }

  /** A peer that does not read our output must not make us buffer without limit. */
  private checkBackpressure(): void {
    if (!this.readingPaused && this.socketBlocked && this.out.size >= this.outputHighWater) {
      this.readingPaused = true;
      this.socket.pause();
    }
  }

  private onDrain(): void {
    if (this.dead) return;
    this.socketBlocked = false;
    this.pumpAndWrite();
    if (this.readingPaused && !this.socketBlocked) {
      this.readingPaused = false;
      this.socket.resume();
    }
  }

  private endSocket(): void {
    const buf = this.out.take();
    if (buf !== null && !this.socket.destroyed) this.socket.write(buf);
    this.socket.end();
  }

  /** A connection error: GOAWAY with its code, abort every stream, close. */
  private fail(err: H2Error): void {
    if (this.dead) return;
    writeGoaway(this.out, this.lastStreamId, err.code, err.message);
    this.goawaySent = true;
    const buf = this.out.take();
    this.teardown(err.code);
    if (buf !== null && !this.socket.destroyed) this.socket.write(buf);
    this.socket.end();
    setTimeout(() => this.socket.destroy(), LINGER_MS).unref?.();
  }

  /** The connection is gone: abort every stream once. */
  private teardown(code: number = ErrorCode.CANCEL): void {
    if (this.dead) {
      if (this.socket.destroyed) this.resolveClosed();
      return;
    }
    this.dead = true;
    this.blocked.clear();
    this.trailerWaiters = [];
    for (const stream of Array.from(this.streams.values())) {
      try {
        stream.abort(code);
      } catch (err) {
        this.report(err);
      }
    }
    this.streams.clear();
    if (this.socket.destroyed) this.resolveClosed();
  }
}

/** RFC 9113 section 8.3.1 and 8.2.2: what a request's header list must and must not hold. */
function validRequest(h: HeaderMap): boolean {
  const method = h[":method"];
  if (typeof method !== "string") return false;
  if (method === "CONNECT") {
    if (typeof h[":authority"] !== "string" || h[":path"] !== undefined || h[":scheme"] !== undefined) return false;
  } else {
    const path = h[":path"];
    if (typeof path !== "string" || path.length === 0 || typeof h[":scheme"] !== "string") return false;
  }
  if (
    h.connection !== undefined ||
    h["keep-alive"] !== undefined ||
    h["proxy-connection"] !== undefined ||
    h["transfer-encoding"] !== undefined ||
    h.upgrade !== undefined
  ) {
    return false;
  }
  const te = h.te;
  if (te !== undefined && te !== "trailers") return false;
  // The decoder flagged unknown pseudo-headers; a repeated one arrives as an array.
  const authority = h[":authority"];
  return authority === undefined || typeof authority === "string";
}
