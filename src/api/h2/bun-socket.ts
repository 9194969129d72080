// Serves HTTP/2 on Bun.listen sockets instead of node:net ones. Bun's own
// sockets skip node's stream machinery (readable/writable state, timers,
// buffer conversion) on every read and write, which is most of what node:net
// costs per call. BunSocket adapts one to the small surface H2Connection uses.
import type { Socket, TCPSocketListener } from "bun";
import { H2Connection, type H2Options, type H2Socket } from "./connection.js";

type Listener = (arg?: any) => void;

export class BunSocket implements H2Socket {
  destroyed = false;
  /** Bytes Bun's unbuffered write did not take; sent on 'drain' before anything else. */
  private tail: Uint8Array | null = null;
  private ending = false;
  private readonly listeners: Record<string, Listener[]> = { data: [], drain: [], error: [], close: [] };

  constructor(readonly raw: Socket<unknown>) {}

  on(event: string, fn: Listener): this {
    (this.listeners[event] ??= []).push(fn);
    return this;
  }

  private emit(event: string, arg?: unknown): void {
    const fns = this.listeners[event];
    if (fns !== undefined) for (let i = 0; i < fns.length; i++) fns[i](arg);
  }

  /** Like net.Socket#write: false when the bytes had to be kept for later. */
  write(data: Uint8Array): boolean {
    if (this.destroyed || this.ending) return false;
    if (this.tail !== null) {
      const joined = new Uint8Array(this.tail.length + data.length);
      joined.set(this.tail, 0);
      joined.set(data, this.tail.length);
      this.tail = joined;
      return false;
    }
    const n = this.raw.write(data);
    if (n === data.length) return true;
    // Closed (-1: 'close' follows) or partial: keep a copy of the rest.
    if (n >= 0) this.tail = data.slice(n);
    return false;
  }

  end(): void {
    if (this.destroyed) return;
    if (this.tail !== null) this.ending = true;
    else this.raw.end();
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.raw.terminate();
  }

  pause(): void {
    this.raw.pause();
  }

  resume(): void {
    this.raw.resume();
  }

  setNoDelay(noDelay = true): void {
    this.raw.setNoDelay(noDelay);
  }

  // --- called from Bun's socket handlers ---

  onData(chunk: Uint8Array): void {
    this.emit("data", chunk);
  }

  onDrain(): void {
    const tail = this.tail;
    if (tail !== null) {
      const n = this.raw.write(tail);
      if (n < 0) return;
      if (n < tail.length) {
        this.tail = tail.subarray(n);
        return;
      }
      this.tail = null;
    }
    if (this.ending) {
      this.raw.end();
      return;
    }
    this.emit("drain");
  }

  onClose(): void {
    this.destroyed = true;
    this.tail = null;
    this.emit("close");
  }

  onError(err: unknown): void {
    this.emit("error", err);
  }
}

export interface BunH2Server {
  listener: TCPSocketListener<BunSocket>;
  connections: Set<H2Connection>;
}

/** Listens on `hostname:port` with Bun.listen and serves HTTP/2 (prior knowledge) on every connection. */
export function listenH2(hostname: string, port: number, opts: H2Options): BunH2Server {
  const connections = new Set<H2Connection>();
  const listener = Bun.listen<BunSocket>({
    hostname,
    port,
    socket: {
      open(s) {
        const socket = new BunSocket(s as Socket<unknown>);
        s.data = socket;
        const conn = new H2Connection(socket, opts);
        conn.start(new Uint8Array(0));
        connections.add(conn);
        conn.closed.then(() => connections.delete(conn));
      },
      data: (s, chunk) => s.data.onData(chunk),
      drain: (s) => s.data.onDrain(),
      close: (s) => s.data.onClose(),
      error: (s, err) => s.data.onError(err),
    },
  });
  return { listener, connections };
}
