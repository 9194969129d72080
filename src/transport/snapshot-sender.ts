// Sends one Snap message on its own connection and request: the encoded
// message as one frame, then the snapshot's data streamed from the member
// (openSnapshotData), in bounded writes that respect HTTP/2 flow control.
// Its own connection keeps a multi-GiB transfer from delaying heartbeats on
// the message stream. Success means the peer answered 200, i.e. it has the
// file on disk and took it; anything else (refusal, reset, timeout) fails.
import type { ClientHttp2Session, ClientHttp2Stream } from "node:http2";
import type { Message, NodeId } from "../raft/types.js";
import { dial } from "./dial.js";
import { errorText, type Env, type UrlPicker } from "./env.js";
import { frameOne } from "./framing.js";
import { endMark, lengthPrefix } from "./snapshot-body.js";
import { idToHex, requestHeaders, SNAPSHOT_PATH } from "./protocol.js";

export class SnapshotSender {
  private session: ClientHttp2Session | null = null;
  private aborted = false;
  private abortWaiters: Array<(err: Error) => void> = [];

  constructor(
    private readonly env: Env,
    private readonly peerId: NodeId,
    private readonly urls: UrlPicker,
    private readonly m: Message,
  ) {}

  /** Ends the transfer now (stop(), peer removed); run() then resolves false. */
  abort(): void {
    if (this.aborted) return;
    this.aborted = true;
    this.session?.destroy();
    for (const w of this.abortWaiters) w(new Error("snapshot transfer aborted"));
  }

  /** Sends the snapshot; resolves true when the peer took it. Never rejects. */
  async run(): Promise<boolean> {
    const started = performance.now();
    const fields = {
      "local-member-id": idToHex(this.env.localId),
      "remote-peer-id": idToHex(this.peerId),
      "snapshot-index": this.m.snapshot?.meta.index ?? 0,
    };
    this.env.log.info("sending database snapshot", fields);
    try {
      const bytes = await this.transfer();
      this.env.log.info("sent database snapshot", {
        ...fields,
        "data-bytes": bytes,
        took: `${Math.round(performance.now() - started)}ms`,
      });
      return true;
    } catch (err) {
      this.env.log.warn("failed to send database snapshot", { ...fields, error: errorText(err) });
      return false;
    } finally {
      this.session?.destroy();
      this.session = null;
    }
  }

  private async transfer(): Promise<number> {
    const { limits, codec } = this.env;
    const header = codec.encode(this.m);
    if (header.length > limits.maxMessageBytes) throw new Error(`snapshot message of ${header.length} bytes exceeds the message limit`);
    const session = await this.connect();
    const req = session.request(requestHeaders(SNAPSHOT_PATH, this.env.clusterId, this.env.localId, this.peerId, this.env.advertiseUrls), {
      endStream: false,
    });
    const io = new RequestWatch(req, limits.snapshotIdleTimeoutMs, this);
    try {
      await io.write(frameOne(header));
      let sent = 0;
      const source = this.env.handlers.openSnapshotData?.(this.m);
      if (source !== undefined) {
        const it = source[Symbol.asyncIterator]();
        try {
          for (;;) {
            const next = await io.race(it.next());
            if (next.done) break;
            const chunk = next.value;
            sent += chunk.length;
            if (sent > limits.maxSnapshotBytes) throw new Error(`snapshot data exceeds the limit of ${limits.maxSnapshotBytes} bytes`);
            for (let at = 0; at < chunk.length; at += limits.snapshotChunkBytes) {
              const piece = chunk.subarray(at, Math.min(chunk.length, at + limits.snapshotChunkBytes));
              await io.write(lengthPrefix(piece.length), false);
              await io.write(piece);
            }
          }
        } catch (err) {
          // Let the member release its source (close the file) before we report.
          void Promise.resolve(it.return?.()).catch(() => {});
          throw err;
        }
      }
      await io.write(endMark(sent));
      req.end();
      const status = await io.status();
      if (status !== 200) throw new Error(`peer answered ${status}: ${io.body()}`);
      return sent;
    } finally {
      io.dispose();
    }
  }

  private async connect(): Promise<ClientHttp2Session> {
    let lastErr: unknown = new Error("peer has no URLs");
    for (let i = 0; i < Math.max(1, this.urls.count); i++) {
      if (this.aborted) break;
      const url = this.urls.current();
      try {
        const session = await dial(url, this.env.clientTls, this.env.limits.dialTimeoutMs);
        if (this.aborted) {
          session.destroy();
          break;
        }
        session.on("error", () => {});
        this.session = session;
        return session;
      } catch (err) {
        lastErr = err;
        this.urls.failed(url);
      }
    }
    throw this.aborted ? new Error("snapshot transfer aborted") : lastErr;
  }

  /** Registers for abort(); returns the unregister function. */
  onAbort(fn: (err: Error) => void): () => void {
    this.abortWaiters.push(fn);
    return () => {
      this.abortWaiters = this.abortWaiters.filter((w) => w !== fn);
    };
  }
}

/**
 * Watches one request: any wait (drain, the source, the response) fails when the stream
 * breaks, the peer answers early, the transfer is aborted, or nothing moves for idleMs.
 */
class RequestWatch {
  private broken: Error | null = null;
  private statusCode: number | null = null;
  private text = "";
  private drains = 0;
  private waiters: Array<() => void> = [];
  private readonly unAbort: () => void;

  constructor(
    private readonly req: ClientHttp2Stream,
    private readonly idleMs: number,
    owner: SnapshotSender,
  ) {
    req.on("response", (h) => {
      this.statusCode = Number(h[":status"]);
      this.wake();
    });
    req.on("data", (d: Buffer) => {
      if (this.text.length < 512) this.text += String(d);
    });
    req.on("end", () => this.wake());
    req.on("error", (err) => this.break(err));
    req.on("close", () => this.break(new Error(`stream closed (code ${req.rstCode ?? 0})`)));
    req.on("drain", () => {
      this.drains++;
      this.wake();
    });
    this.unAbort = owner.onAbort((err) => this.break(err));
  }

  private break(err: Error): void {
    if (this.broken === null) this.broken = err;
    this.wake();
  }

  private wake(): void {
    const ws = this.waiters;
    this.waiters = [];
    for (const w of ws) w();
  }

  /** Waits until `ready()` or a failure, bounded by the idle timeout. */
  private until(ready: () => boolean, what: string): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = () => {
        // An answer before we finished sending is a refusal (e.g. 413 too large).
        if (this.statusCode !== null && this.statusCode !== 200 && what !== "response") {
          clearTimeout(timer);
          reject(new Error(`peer answered ${this.statusCode} during the transfer: ${this.text}`));
        } else if ((what === "response" || this.broken === null) && ready()) {
          clearTimeout(timer);
          resolve();
        } else if (this.broken !== null) {
          clearTimeout(timer);
          reject(this.broken);
        } else {
          this.waiters.push(check);
        }
      };
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== check);
        reject(new Error(`snapshot transfer stalled: no ${what} for ${this.idleMs} ms`));
      }, this.idleMs);
      check();
    });
  }

  /** Writes; waits for 'drain' when HTTP/2 says so, unless `wait` is false (a tiny write before more). */
  async write(chunk: Uint8Array, wait = true): Promise<void> {
    await this.until(() => true, "progress");
    const drainsBefore = this.drains;
    if (this.req.write(chunk) || !wait) return;
    await this.until(() => this.drains > drainsBefore, "progress");
  }

  /** Races a promise (the member's data source) against the stream breaking. */
  async race<T>(p: Promise<T>): Promise<T> {
    let value!: T;
    let failed: unknown = null;
    let done = false;
    p.then(
      (v) => {
        value = v;
        done = true;
        this.wake();
      },
      (e) => {
        failed = e ?? new Error("snapshot source failed");
        done = true;
        this.wake();
      },
    );
    await this.until(() => done, "data from the snapshot source");
    if (failed !== null) throw failed;
    return value;
  }

  async status(): Promise<number> {
    await this.until(() => this.statusCode !== null, "response");
    return this.statusCode as number;
  }

  body(): string {
    return this.text.trim();
  }

  dispose(): void {
    this.unAbort();
    try {
      this.req.close();
    } catch {}
  }
}
