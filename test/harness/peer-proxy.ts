// A TCP proxy in front of one member's peer port, to cut the network between members.
//
// The member listens on its own peer port but advertises the proxy's port (in
// --initial-advertise-peer-urls and everybody's --initial-cluster), so every peer connection
// dialed TO the member crosses its proxy. A connection's direction of dialing says nothing
// about the direction of the messages on it: etcd's rafthttp sends A's messages to B over a
// stream B dialed to A (and over pipeline requests A dials to B), and tsetcd's HTTP/2 peer
// protocol has its own choices. So a proxy that simply stopped everything it carries would
// cut only part of a member's traffic ("a member cannot be reached" rather than "a member is
// isolated"; etcd's functional tester has the same model with its per-member proxies).
//
// To make a real partition possible the proxy learns WHO dialed each connection: on Linux,
// the accepted connection's remote port is the dialer's local port, /proc/net/tcp maps that
// socket to an inode, and /proc/<pid>/fd of the member processes says which process owns the
// inode (see `identify` below). Then:
//   blackhole()          cuts every connection to this member (whoever dialed it);
//   blackholeFrom(names) cuts only connections dialed by those members.
// A partition {A} | {B, C} is: A's proxy blackhole(), and B's and C's proxies blackholeFrom([A]).
// Cluster.partition() in cluster.ts does that. Connections from a process the resolver does
// not know (etcdctl is never on peer ports; a member's /version probe is) are cut only by
// blackhole().
//
// "Cut" means: stop forwarding in both directions (the sockets are paused, anything already
// read is held back, nothing is dropped, so the byte streams stay intact) and accept new
// connections from a cut dialer but hold them unconnected. heal() forwards what was held and
// connects held connections upstream: as if the network had been slow, with TCP retransmitting.
// Both etcd and tsetcd put read timeouts on peer connections, so in practice a partition of
// more than a few seconds makes them drop the connections and redial after the heal. A close
// from either side is passed on at once even when cut (it carries no raft message).
import { createConnection, createServer, type Server, type Socket } from "node:net";
import { readdirSync, readFileSync, readlinkSync } from "node:fs";

export type DialerResolver = (remotePort: number) => string | undefined;

interface Conn {
  client: Socket;
  upstream: Socket | null;
  /** Name of the member that dialed, or undefined if unknown (yet). */
  dialer: string | undefined;
  remotePort: number | undefined;
  cut: boolean;
  heldToUpstream: Buffer[];
  heldToClient: Buffer[];
  closed: boolean;
}

export interface PeerProxyOptions {
  /** Port the proxy listens on (the advertised peer port). */
  listenPort: number;
  /** The member's real peer port. */
  targetPort: number;
  /** Who dialed a connection, from its remote (= the dialer's local) port. */
  identify?: DialerResolver;
}

export class PeerProxy {
  readonly listenPort: number;
  readonly targetPort: number;
  private server: Server | null = null;
  private conns = new Set<Conn>();
  private all = false;
  private from = new Set<string>();
  private identify: DialerResolver | undefined;

  constructor(opts: PeerProxyOptions) {
    this.listenPort = opts.listenPort;
    this.targetPort = opts.targetPort;
    this.identify = opts.identify;
  }

  async start(): Promise<void> {
    const server = createServer((sock) => this.accept(sock));
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen({ host: "127.0.0.1", port: this.listenPort, exclusive: true }, () => resolve());
    });
    this.server = server;
  }

  async close(): Promise<void> {
    for (const c of this.conns) this.destroy(c);
    this.conns.clear();
    const s = this.server;
    this.server = null;
    if (s) await new Promise<void>((r) => s.close(() => r()));
  }

  /** Cut every connection to this member, present and future. */
  blackhole(): void {
    this.all = true;
    this.update();
  }

  /** Cut connections dialed by these members (added to those already cut). */
  blackholeFrom(names: string[]): void {
    for (const n of names) this.from.add(n);
    this.update();
  }

  /** Forward everything again. */
  heal(): void {
    this.all = false;
    this.from.clear();
    this.update();
  }

  /** Connections currently open through the proxy (for tests of the proxy itself). */
  get connectionCount(): number {
    return this.conns.size;
  }

  private whoDialed(remotePort: number | undefined): string | undefined {
    try {
      return remotePort ? this.identify?.(remotePort) : undefined;
    } catch {
      return undefined;
    }
  }

  private isCut(c: { dialer: string | undefined; remotePort: number | undefined }): boolean {
    if (this.all) return true;
    if (this.from.size === 0) return false;
    // Not known at accept time (e.g. the dialer's pid was not known yet): ask again, the
    // dialer's socket is still there.
    c.dialer ??= this.whoDialed(c.remotePort);
    return c.dialer !== undefined && this.from.has(c.dialer);
  }

  private accept(client: Socket): void {
    client.setNoDelay(true);
    const remotePort = client.remotePort;
    const c: Conn = {
      client,
      upstream: null,
      remotePort,
      dialer: this.whoDialed(remotePort),
      cut: false,
      heldToUpstream: [],
      heldToClient: [],
      closed: false,
    };
    this.conns.add(c);
    client.on("data", (chunk: Buffer) => {
      if (c.cut || !c.upstream) {
        c.heldToUpstream.push(chunk);
        client.pause();
      } else if (!c.upstream.write(chunk)) {
        client.pause();
        c.upstream.once("drain", () => !c.cut && client.resume());
      }
    });
    client.on("error", () => this.destroy(c));
    client.on("close", () => this.destroy(c));
    if (this.isCut(c)) {
      c.cut = true;
      client.pause(); // accepted, but held: nothing reaches the member
    } else {
      this.connectUpstream(c);
    }
  }

  private connectUpstream(c: Conn): void {
    const up = createConnection({ host: "127.0.0.1", port: this.targetPort });
    up.setNoDelay(true);
    c.upstream = up;
    up.on("connect", () => {
      if (c.cut) return; // cut while connecting: update() flushes on heal
      this.flush(c);
    });
    up.on("data", (chunk: Buffer) => {
      if (c.cut) {
        c.heldToClient.push(chunk);
        up.pause();
      } else if (!c.client.write(chunk)) {
        up.pause();
        c.client.once("drain", () => !c.cut && up.resume());
      }
    });
    up.on("error", () => this.destroy(c));
    up.on("close", () => this.destroy(c));
  }

  private flush(c: Conn): void {
    if (c.closed || !c.upstream) return;
    for (const b of c.heldToUpstream.splice(0)) c.upstream.write(b);
    for (const b of c.heldToClient.splice(0)) c.client.write(b);
    c.client.resume();
    c.upstream.resume();
  }

  private update(): void {
    for (const c of this.conns) {
      const cut = this.isCut(c);
      if (cut === c.cut) continue;
      c.cut = cut;
      if (cut) {
        c.client.pause();
        c.upstream?.pause();
      } else if (!c.upstream) {
        this.connectUpstream(c);
      } else if (!c.upstream.connecting) {
        this.flush(c);
      }
    }
  }

  private destroy(c: Conn): void {
    if (c.closed) return;
    c.closed = true;
    this.conns.delete(c);
    c.client.destroy();
    c.upstream?.destroy();
  }
}

// ---- who dialed: /proc (Linux) --------------------------------------------------------------

/** Inode of the IPv4 TCP socket whose local port is `localPort` and remote port `remotePort`. */
function socketInode(localPort: number, remotePort: number): string | undefined {
  let table: string;
  try {
    table = readFileSync("/proc/net/tcp", "utf8");
  } catch {
    return undefined;
  }
  const lp = localPort.toString(16).toUpperCase().padStart(4, "0");
  const rp = remotePort.toString(16).toUpperCase().padStart(4, "0");
  for (const line of table.split("\n")) {
    const f = line.trim().split(/\s+/);
    // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
    if (f.length < 10) continue;
    if (f[1]!.endsWith(`:${lp}`) && f[2]!.endsWith(`:${rp}`)) return f[9];
  }
  return undefined;
}

/** True if process `pid` holds the socket with this inode. */
function pidOwnsInode(pid: number, inode: string): boolean {
  const want = `socket:[${inode}]`;
  let fds: string[];
  try {
    fds = readdirSync(`/proc/${pid}/fd`);
  } catch {
    return false;
  }
  for (const fd of fds) {
    try {
      if (readlinkSync(`/proc/${pid}/fd/${fd}`) === want) return true;
    } catch {
      // fd closed meanwhile
    }
  }
  return false;
}

/**
 * A DialerResolver for members that are local processes: `pids()` gives each member's current
 * pid (it changes on restart). `proxyPort` is the port the connection was made to.
 */
export function procResolver(proxyPort: () => number, pids: () => Array<{ name: string; pid: number | undefined }>): DialerResolver {
  return (remotePort) => {
    const inode = socketInode(remotePort, proxyPort());
    if (!inode || inode === "0") return undefined;
    for (const { name, pid } of pids()) if (pid !== undefined && pidOwnsInode(pid, inode)) return name;
    return undefined;
  };
}
