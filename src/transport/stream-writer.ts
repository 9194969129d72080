// The outbound half of one peer: a single long-lived HTTP/2 stream carrying
// framed messages in order. Messages wait in a bounded queue; everything sent
// in one event-loop turn goes out as one write; when HTTP/2 flow control says
// stop (write() false) we wait for 'drain' while the queue absorbs the rest,
// and a full queue drops. A broken connection drops what was waiting, reports
// the peer unreachable and reconnects after an exponential backoff, trying the
// peer's URLs in turn.
import type { ClientHttp2Session, ClientHttp2Stream } from "node:http2";
import { MessageType, type Message, type NodeId } from "../raft/types.js";
import { Backoff } from "./backoff.js";
import { dial } from "./dial.js";
import { errorText, RateLimitedLog, type Env, type UrlPicker } from "./env.js";
import { frameAll } from "./framing.js";
import { idToHex, requestHeaders, STREAM_PATH } from "./protocol.js";
import { SendQueue } from "./queue.js";

/** Bytes framed into one write. */
const WRITE_BYTES = 1024 * 1024;
const DROP_LOG_INTERVAL_MS = 1000;

type State = "idle" | "connecting" | "open" | "backoff" | "stopped";

export class StreamWriter {
  private state: State = "idle";
  private readonly queue: SendQueue;
  private readonly backoff: Backoff;
  private session: ClientHttp2Session | null = null;
  private stream: ClientHttp2Stream | null = null;
  private url = "";
  /** The peer answered 200 on the current stream. */
  private active = false;
  private waitingDrain = false;
  private flushScheduled: ReturnType<typeof setImmediate> | null = null;
  private unreachablePending = false;
  private retryTimer: ReturnType<typeof setTimeout> | null = null;
  private readonly dropLog = new RateLimitedLog(DROP_LOG_INTERVAL_MS);
  /** Why the last attempt failed, to log a change once rather than every retry. */
  private lastError = "";
  /** Bumped on every attempt: events from an older connection are ignored. */
  private generation = 0;

  constructor(
    private readonly env: Env,
    private readonly peerId: NodeId,
    private readonly urls: UrlPicker,
  ) {
    this.queue = new SendQueue(env.limits.maxQueueMessages, env.limits.maxQueueBytes);
    this.backoff = new Backoff(env.limits.backoffMinMs, env.limits.backoffMaxMs, env.random);
  }

  /** Date.now() when the stream last became active (0 while inactive): etcd's "active since", for health checks. */
  activeSince = 0;

  get isActive(): boolean {
    return this.active;
  }

  /**
   * Connects now rather than at the first message: as etcd's members do, every member keeps
   * a stream to every peer, so "connected since" (the strict reconfiguration checks) is true
   * between followers too, which otherwise rarely message each other.
   */
  open(): void {
    if (this.state === "idle") this.connect();
  }

  /** Queues one message (never blocks, never throws for network reasons). */
  send(m: Message): void {
    if (this.state === "stopped") return;
    if (this.state === "idle") this.connect();
    if (this.state === "backoff") {
      // Not connected: the message cannot go anywhere now. Raft retries on its own.
      this.unreachable();
      return;
    }
    const bytes = this.env.codec.encode(m);
    if (bytes.length > this.env.limits.maxMessageBytes) {
      this.env.log.warn("dropped internal Raft message larger than the peer message limit", {
        "message-type": m.type,
        "remote-peer-id": idToHex(this.peerId),
        size: bytes.length,
        limit: this.env.limits.maxMessageBytes,
      });
      this.unreachable();
      return;
    }
    if (!this.queue.push({ m, bytes })) {
      this.dropLog.hit((suppressed) =>
        this.env.log.warn("dropped internal Raft message since sending buffer is full (overloaded network)", {
          "message-type": m.type,
          "local-member-id": idToHex(this.env.localId),
          from: idToHex(m.from),
          "remote-peer-id": idToHex(this.peerId),
          "remote-peer-active": this.active,
          "queued-messages": this.queue.length,
          "queued-bytes": this.queue.bytes,
          "dropped-since-last-log": suppressed,
        }),
      );
      this.unreachable();
      return;
    }
    this.scheduleFlush();
  }

  /** The peer's URLs changed: drop the current connection if its URL is gone. */
  urlsChanged(): void {
    if (this.state === "open" || this.state === "connecting") {
      if (this.urls.current() !== this.url) this.fail("peer URLs changed", false);
    }
  }

  stop(): void {
    if (this.state === "stopped") return;
    this.state = "stopped";
    this.generation++;
    if (this.retryTimer !== null) clearTimeout(this.retryTimer);
    if (this.flushScheduled !== null) clearImmediate(this.flushScheduled);
    this.queue.clear();
    this.closeConnection();
  }

  // --- connection ---

  private connect(): void {
    this.state = "connecting";
    this.retryTimer = null;
    const url = this.urls.current();
    this.url = url;
    const gen = ++this.generation;
    dial(url, this.env.clientTls, this.env.limits.dialTimeoutMs).then(
      (session) => {
        if (this.state !== "connecting" || this.generation !== gen) {
          session.destroy();
          return;
        }
        this.opened(session, gen);
      },
      (err: unknown) => {
        if (this.state !== "connecting" || this.generation !== gen) return;
        this.fail(`cannot connect to ${url}: ${errorText(err)}`, true);
      },
    );
  }

  private opened(session: ClientHttp2Session, gen: number): void {
    this.session = session;
    // Events of a connection we already gave up on must not touch the next one.
    const failIfCurrent = (reason: string) => {
      if (this.generation === gen) this.fail(reason, false);
    };
    session.on("error", (err) => failIfCurrent(`connection error: ${errorText(err)}`));
    session.on("close", () => failIfCurrent("connection closed"));
    session.on("goaway", () => failIfCurrent("peer sent GOAWAY"));
    let stream: ClientHttp2Stream;
    try {
      stream = session.request(requestHeaders(STREAM_PATH, this.env.clusterId, this.env.localId, this.peerId, this.env.advertiseUrls), {
        endStream: false,
      });
    } catch (err) {
      this.fail(`cannot open stream: ${errorText(err)}`, false);
      return;
    }
    this.stream = stream;
    this.state = "open";
    stream.on("response", (headers) => this.response(Number(headers[":status"]), stream));
    stream.on("error", (err) => failIfCurrent(`stream error: ${errorText(err)}`));
    stream.on("close", () => failIfCurrent("stream closed by peer"));
    // The peer never sends a body on a 200; anything else is an error text. Keep it flowing.
    stream.on("data", () => {});
    // Write what waited while we connected; the peer reads it once it accepts the stream.
    this.scheduleFlush();
  }

  private response(status: number, stream: ClientHttp2Stream): void {
    if (stream !== this.stream) return;
    const fields = { "local-member-id": idToHex(this.env.localId), "remote-peer-id": idToHex(this.peerId), url: this.url };
    if (status === 200) {
      this.active = true;
      this.activeSince = Date.now();
      this.backoff.reset();
      this.lastError = "";
      this.env.log.info("peer became active", fields);
      return;
    }
    if (status === 410) {
      this.env.log.error("the member has been permanently removed from the cluster", { ...fields, status });
      this.backoff.exhaust();
      this.fail("peer says this member was removed (410)", false);
      this.env.handlers.onPeerRemovedUs?.(this.peerId);
      return;
    }
    if (status === 412) {
      this.env.log.warn("request sent was ignored by remote peer due to cluster ID or member ID mismatch", {
        ...fields,
        "local-member-cluster-id": idToHex(this.env.clusterId),
      });
      this.backoff.exhaust();
      this.fail(`peer refused the stream (${status})`, false);
      return;
    }
    this.fail(`peer refused the stream (${status})`, false);
  }

  /** The connection (or the attempt) failed: drop waiting messages, report, retry later. */
  private fail(reason: string, dialFailed: boolean): void {
    if (this.state === "stopped" || this.state === "backoff" || this.state === "idle") return;
    this.generation++;
    const wasActive = this.active;
    this.closeConnection();
    const dropped = this.queue.clear();
    if (dropped.length > 0 || wasActive) this.unreachable();
    for (const d of dropped) this.droppedSnapshotCheck(d.m);
    if (wasActive) {
      this.env.log.warn("peer became inactive (message send to peer failed)", {
        "local-member-id": idToHex(this.env.localId),
        "remote-peer-id": idToHex(this.peerId),
        url: this.url,
        error: reason,
        "dropped-messages": dropped.length,
      });
    } else if (reason !== this.lastError) {
      this.env.log.debug("failed to reach peer", { "remote-peer-id": idToHex(this.peerId), url: this.url, error: reason });
    }
    this.lastError = reason;
    if (dialFailed || !wasActive) this.urls.failed(this.url);
    this.state = "backoff";
    const delay = this.backoff.next();
    this.retryTimer = setTimeout(() => {
      if (this.state === "backoff") this.connect();
    }, delay);
  }

  private droppedSnapshotCheck(m: Message): void {
    if (m.type === MessageType.Snap) this.env.handlers.onSnapshotStatus?.(this.peerId, false);
  }

  private closeConnection(): void {
    this.active = false;
    this.activeSince = 0;
    this.waitingDrain = false;
    const stream = this.stream;
    const session = this.session;
    this.stream = null;
    this.session = null;
    try {
      stream?.close();
    } catch {}
    try {
      session?.destroy();
    } catch {}
  }

  // --- writing ---

  /** Writes what is queued now instead of at the end of the turn (the member is about to block on an fsync). */
  flushNow(): void {
    if (this.flushScheduled === null) return;
    clearImmediate(this.flushScheduled);
    this.flushScheduled = null;
    this.flush();
  }

  private scheduleFlush(): void {
    if (this.flushScheduled !== null) return;
    this.flushScheduled = setImmediate(() => {
      this.flushScheduled = null;
      this.flush();
    });
  }

  private unreachable(): void {
    if (this.unreachablePending) return;
    this.unreachablePending = true;
    queueMicrotask(() => {
      this.unreachablePending = false;
      if (this.state !== "stopped") this.env.handlers.onUnreachable?.(this.peerId);
    });
  }

  private flush(): void {
    const stream = this.stream;
    if (this.state !== "open" || stream === null || this.waitingDrain) return;
    while (this.queue.length > 0) {
      const batch = this.queue.take(WRITE_BYTES);
      const buf = frameAll(batch.map((q) => q.bytes));
      let more: boolean;
      try {
        more = stream.write(buf);
      } catch (err) {
        this.fail(`write failed: ${errorText(err)}`, false);
        return;
      }
      if (!more) {
        this.waitingDrain = true;
        stream.once("drain", () => {
          if (stream !== this.stream) return;
          this.waitingDrain = false;
          this.flush();
        });
        return;
      }
    }
  }
}
