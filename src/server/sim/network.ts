// The simulated peer network: the member's PeerNetwork interface over the
// simulation's event queue. Messages go through the real codec (so no two
// members ever share an object), arrive after a seeded delay, and may be
// dropped, duplicated or reordered; links can be cut one way or both; a
// snapshot is streamed from the sender's real data into a file of the
// receiver's, as the transport does; peer-port requests (forwarded lease
// calls, promotions) travel the same links. Delays reorder messages, which the
// real transport (one ordered stream per peer) never does: a harsher network
// than the real one, for everything but forwarded proposals (see send).
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { type Message, MessageType, type NodeId } from "../../raft/types.js";
import { decodeMessage, encodeMessage } from "../../transport/codec.js";
import type { PeerRequest } from "../../transport/types.js";
import type { NetworkFactory, NetworkHandlers, PeerAnswer, PeerCall, PeerNetwork } from "../peer-network.js";
import { SIM_EPOCH_MS, SIMULATION, type Owner, type SimTime } from "./time.js";

export interface NetworkFaults {
  /** Delay of one message or request, uniform in [minDelayMs, maxDelayMs]. */
  minDelayMs: number;
  maxDelayMs: number;
  dropRate: number;
  duplicateRate: number;
}

interface Endpoint {
  id: NodeId;
  owner: Owner;
  handlers: NetworkHandlers;
  /** Where received snapshots are written (the member's snapshot dir). */
  snapshotDir: string;
  started: boolean;
  /** Sim ms the endpoint started listening. */
  startedAt: number;
  peers: Map<NodeId, string[]>;
}

export interface NetworkStats {
  sent: number;
  delivered: number;
  dropped: number;
  duplicated: number;
  snapshots: number;
  requests: number;
}

export class SimNetwork {
  private readonly endpoints = new Map<NodeId, Endpoint>();
  private readonly byUrl = new Map<string, NodeId>();
  private readonly urlOf = new Map<NodeId, string>();
  /** Cut links, "from>to" (one direction). */
  private readonly cut = new Set<string>();
  /** When each link last came up (sim ms), for activeSince. */
  private readonly upSince = new Map<string, number>();
  private snapshotSeq = 0;
  readonly stats: NetworkStats = { sent: 0, delivered: 0, dropped: 0, duplicated: 0, snapshots: 0, requests: 0 };

  constructor(
    private readonly time: SimTime,
    private readonly rand: () => number,
    readonly faults: NetworkFaults,
  ) {}

  /** A member's peer URL, so requests by URL find it. */
  register(id: NodeId, url: string): void {
    this.byUrl.set(url, id);
    this.urlOf.set(id, url);
  }

  /** The network of one member incarnation. */
  factory(owner: Owner, snapshotDir: string): NetworkFactory {
    return ({ id }, handlers) => {
      const ep: Endpoint = { id, owner, handlers, snapshotDir, started: false, startedAt: 0, peers: new Map() };
      this.endpoints.set(id, ep);
      for (const other of this.endpoints.keys()) if (other !== id) this.linkChanged(id, other);
      return this.peerNetwork(ep);
    };
  }

  /** The member's process is gone: nothing reaches it until a new incarnation registers. */
  detach(id: NodeId): void {
    this.endpoints.delete(id);
  }

  // ---- partitions ----

  /** Cuts the link from `a` to `b` (and back, if `both`). */
  cutLink(a: NodeId, b: NodeId, both: boolean): void {
    this.cut.add(`${a}>${b}`);
    if (both) this.cut.add(`${b}>${a}`);
  }

  /** Isolates `a` from everyone else (both directions). */
  isolate(a: NodeId, all: NodeId[]): void {
    for (const b of all) if (b !== a) this.cutLink(a, b, true);
  }

  healAll(): void {
    const cut = [...this.cut];
    this.cut.clear();
    for (const key of cut) {
      const [a, b] = key.split(">").map((s) => BigInt(s));
      this.linkChanged(a, b);
    }
  }

  get partitioned(): boolean {
    return this.cut.size > 0;
  }

  private linkUp(from: NodeId, to: NodeId): boolean {
    return !this.cut.has(`${from}>${to}`) && !this.cut.has(`${to}>${from}`);
  }

  private linkChanged(a: NodeId, b: NodeId): void {
    this.upSince.set(`${a}>${b}`, this.time.now);
    this.upSince.set(`${b}>${a}`, this.time.now);
  }

  private delay(): number {
    const { minDelayMs, maxDelayMs } = this.faults;
    return minDelayMs + Math.floor(this.rand() * (maxDelayMs - minDelayMs + 1));
  }

  /** The endpoint `to` if a message from `from` can reach it now. */
  private reachable(from: NodeId, to: NodeId): Endpoint | undefined {
    const ep = this.endpoints.get(to);
    if (ep === undefined || !ep.started || !this.time.isAlive(ep.owner) || !this.linkUp(from, to)) return undefined;
    return ep;
  }

  // ---- one member's view ----

  private peerNetwork(ep: Endpoint): PeerNetwork {
    return {
      start: async () => {
        ep.started = true;
        ep.startedAt = this.time.now;
      },
      stop: async () => {
        ep.started = false;
      },
      send: (msgs) => {
        for (const m of msgs) this.send(ep, m);
      },
      flush: () => {},
      addPeer: (id, urls) => void ep.peers.set(id, urls),
      removePeer: (id) => void ep.peers.delete(id),
      isActive: (id) => ep.peers.has(id) && this.reachable(ep.id, id) !== undefined,
      activeSince: (id) => {
        if (!ep.peers.has(id) || this.reachable(ep.id, id) === undefined) return undefined;
        const peer = this.endpoints.get(id)!;
        return SIM_EPOCH_MS + Math.max(this.upSince.get(`${ep.id}>${id}`) ?? 0, peer.startedAt);
      },
      request: (urls, call) => this.request(ep, urls, call),
    };
  }

  private send(from: Endpoint, m: Message): void {
    if (!from.peers.has(m.to)) return; // the transport ignores unknown peers likewise
    this.stats.sent++;
    if (m.type === MessageType.Snap) {
      this.time.after(this.delay(), SIMULATION, () => this.transferSnapshot(from, m));
      return;
    }
    if (this.rand() < this.faults.dropRate) {
      this.stats.dropped++;
      return;
    }
    const bytes = encodeMessage(m);
    // Raft's own messages may arrive twice. A forwarded proposal may not: twice is a second
    // proposal (applied twice, as in etcd), and the real transport never resends a message.
    const duplicate = this.rand() < this.faults.duplicateRate && m.type !== MessageType.Prop;
    const copies = duplicate ? 2 : 1;
    if (copies === 2) this.stats.duplicated++;
    for (let i = 0; i < copies; i++) {
      this.time.after(this.delay(), SIMULATION, () => {
        const to = this.reachable(from.id, m.to);
        if (to === undefined) return;
        // As the transport's 410: a member removed from the cluster is told so, and nothing more.
        if (to.handlers.isRemoved(from.id)) {
          if (this.endpoints.get(from.id) === from && this.time.isAlive(from.owner)) from.handlers.onPeerRemovedUs(to.id);
          return;
        }
        this.stats.delivered++;
        // As a new stream from a peer it does not know names the sender's URLs.
        const url = this.urlOf.get(from.id);
        if (!to.peers.has(from.id) && url !== undefined) to.handlers.onPeerUrls(from.id, [url]);
        to.handlers.onMessage(decodeMessage(bytes));
      });
    }
  }

  /** Streams the sender's snapshot data into a file of the receiver's, then tells both sides, as the transport does. */
  private async transferSnapshot(from: Endpoint, m: Message): Promise<void> {
    const fail = () => {
      if (this.time.isAlive(from.owner) && this.endpoints.get(from.id) === from) from.handlers.onSnapshotStatus(m.to, false);
    };
    const to = this.reachable(from.id, m.to);
    if (to === undefined || !this.time.isAlive(from.owner)) return fail();
    const chunks: Uint8Array[] = [];
    for await (const chunk of from.handlers.openSnapshotData(m)) chunks.push(chunk);
    // The data was read whole before anything else ran; the receiver may have gone meanwhile only if it was already gone.
    const file = join(to.snapshotDir, `sim-${++this.snapshotSeq}.snap.db`);
    writeFileSync(file, Buffer.concat(chunks));
    this.stats.snapshots++;
    await to.handlers.onSnapshot(decodeMessage(encodeMessage(m)), file);
    if (this.time.isAlive(from.owner)) from.handlers.onSnapshotStatus(m.to, true);
  }

  private request(from: Endpoint, urls: string[], call: PeerCall): Promise<PeerAnswer> {
    this.stats.requests++;
    return new Promise<PeerAnswer>((resolve, reject) => {
      let settled = false;
      const settle = (fn: () => void) => {
        if (settled) return;
        settled = true;
        fn();
      };
      // The caller gives up after its timeout, in simulated time (and never hears anything if it died).
      this.time.after(call.timeoutMs, from.owner, () => settle(() => reject(new Error(`${call.method} ${call.path}: timed out`))));
      // The first URL whose member can be reached answers (the real client tries each in turn).
      const ids = urls.map((u) => this.byUrl.get(u)).filter((x): x is NodeId => x !== undefined);
      this.time.after(this.delay(), SIMULATION, () => {
        const id = ids.find((i) => this.reachable(from.id, i) !== undefined);
        const to = id === undefined ? undefined : this.reachable(from.id, id);
        if (to === undefined) return;
        const req: PeerRequest = { method: call.method, path: call.path, query: "", headers: { ...call.headers }, body: call.body ?? new Uint8Array() };
        // Not awaited by the event: the handler may wait for later events (a renewal waits for apply).
        void Promise.resolve(to.handlers.onPeerRequest(req)).then(
          (res) => {
            const body = typeof res.body === "string" ? new TextEncoder().encode(res.body) : res.body;
            this.time.after(this.delay(), SIMULATION, () => {
              if (this.reachable(id!, from.id) === undefined) return;
              settle(() => resolve({ status: res.status, body }));
            });
          },
          (err) => this.time.after(this.delay(), SIMULATION, () => settle(() => reject(err))),
        );
      });
    });
  }
}
