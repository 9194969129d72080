// A synchronous in-process cluster for scenario tests: every node runs the
// full driver loop (persist to MemoryStorage, send, apply) and messages are
// delivered in FIFO order unless a link is cut.
import { bootstrapEntries, decodeConfChange } from "../confchange.ts";
import { RawNode } from "../node.ts";
import { MemoryStorage, copyConfState } from "../storage.ts";
import { type ConfState, type Entry, EntryType, type Message, MessageType, type NodeId, type ReadState, Role, type Snapshot } from "../types.ts";
import { mulberry32 as seededRandom } from "../../testing/prng.ts";

export interface HarnessNode {
  id: NodeId;
  node: RawNode;
  storage: MemoryStorage;
  /** Entries applied, in order; a snapshot install resets the list to the snapshot's own. */
  applied: Entry[];
  reads: ReadState[];
  /** Membership as of the last applied entry (what a snapshot records). */
  conf: ConfState;
  /** Snapshots this node installed from a leader. */
  installed: Snapshot[];
}

export interface HarnessOptions {
  preVote?: boolean;
  checkQuorum?: boolean;
  seed?: number;
  maxSizePerMsg?: number;
  /**
   * Start the log with the initial membership as committed ConfChange entries
   * (as a real cluster does), so nodes added later can learn it. Off by
   * default: the classic scenarios count log indexes from 1.
   */
  bootstrap?: boolean;
}

const dec = new TextDecoder();
const enc0 = new TextEncoder();

export class Harness {
  nodes = new Map<NodeId, HarnessNode>();
  private queue: Message[] = [];
  /** Cut links, as "from->to". */
  private cut = new Set<string>();
  /** Per-message hook for scenarios: return the message (possibly altered) or undefined to drop it. */
  intercept: ((m: Message) => Message | undefined) | undefined;

  private readonly rand: () => number;

  constructor(
    ids: NodeId[],
    private readonly opts: HarnessOptions & { learners?: NodeId[] } = {},
  ) {
    this.rand = seededRandom(opts.seed ?? 1);
    const learners = opts.learners ?? [];
    for (const id of [...ids, ...learners]) this.addNode(id, { voters: ids, learners });
  }

  /**
   * Start a node. With `conf` it is an initial member; without, it joins an
   * existing cluster with an empty log and learns the membership from the leader.
   */
  addNode(id: NodeId, conf?: ConfState): RawNode {
    const storage = new MemoryStorage();
    if (conf && this.opts.bootstrap) {
      // A new cluster's log starts with its membership, so later joiners can replay it.
      const boot = bootstrapEntries(conf);
      storage.append(boot);
      storage.setHardState({ term: 1, vote: 0n, commit: boot.length });
    }
    const node = new RawNode({
      id,
      peers: conf?.voters,
      learners: conf?.learners,
      storage,
      electionTick: 10,
      heartbeatTick: 1,
      rand: this.rand,
      preVote: this.opts.preVote ?? true,
      checkQuorum: this.opts.checkQuorum ?? true,
      maxSizePerMsg: this.opts.maxSizePerMsg,
    });
    const c = conf ? copyConfState(conf) : { voters: [], learners: [] };
    this.nodes.set(id, { id, node, storage, applied: [], reads: [], conf: c, installed: [] });
    return node;
  }

  /** Take `id` out of the network for good (a removed member shut down). */
  stopNode(id: NodeId): void {
    this.nodes.delete(id);
  }

  /** Snapshot `id` at its applied index (data: the applied payloads) and compact its log up to there. */
  compact(id: NodeId): Snapshot {
    const n = this.nodes.get(id)!;
    const index = n.node.raft.log.applied;
    const data = enc0.encode(JSON.stringify(this.dataApplied(id)));
    const snap = n.storage.createSnapshot(index, n.conf, data);
    n.storage.compact(index);
    return snap;
  }

  get(id: NodeId): RawNode {
    return this.nodes.get(id)!.node;
  }

  isolate(id: NodeId): void {
    for (const other of this.nodes.keys()) {
      if (other === id) continue;
      this.cut.add(`${id}->${other}`);
      this.cut.add(`${other}->${id}`);
    }
  }

  /** Split into groups that can talk only within themselves. */
  partition(...groups: NodeId[][]): void {
    for (const g of groups)
      for (const h of groups) {
        if (g === h) continue;
        for (const a of g) for (const b of h) this.cut.add(`${a}->${b}`);
      }
  }

  /** Cut one direction only (asymmetric partition). */
  cutLink(from: NodeId, to: NodeId): void {
    this.cut.add(`${from}->${to}`);
  }

  heal(): void {
    this.cut.clear();
  }

  /** Run each node's Ready loop once: persist, enqueue messages, apply. */
  private flushReady(): boolean {
    let any = false;
    for (const n of this.nodes.values()) {
      const rd = n.node.ready();
      if (!rd) continue;
      any = true;
      if (rd.snapshot) {
        n.storage.applySnapshot(rd.snapshot);
        n.installed.push(rd.snapshot);
        n.conf = copyConfState(rd.snapshot.meta.confState);
        // The application's state becomes the snapshot's: the payloads it records.
        const payloads = JSON.parse(dec.decode(rd.snapshot.data)) as string[];
        n.applied = payloads.map((p) => ({ term: 0, index: 0, type: EntryType.Normal, data: enc0.encode(p) }));
      }
      n.storage.append(rd.entries);
      if (rd.hardState) n.storage.setHardState(rd.hardState);
      for (const m of rd.messages) {
        if (!this.cut.has(`${m.from}->${m.to}`)) this.queue.push(m);
        else this.lost(m);
      }
      for (const e of rd.committedEntries) {
        if (e.type === EntryType.ConfChange) n.conf = n.node.applyConfChange(decodeConfChange(e.data));
        n.applied.push(e);
      }
      n.reads.push(...rd.readStates);
      n.node.advance();
    }
    return any;
  }

  /** Deliver messages until the cluster is quiet. */
  settle(): void {
    for (let guard = 0; guard < 100000; guard++) {
      const progressed = this.flushReady();
      const sent = this.queue.shift();
      if (sent) {
        const to = this.nodes.get(sent.to);
        const m = this.intercept ? this.intercept(sent) : sent;
        if (to && m && !this.cut.has(`${m.from}->${m.to}`)) {
          to.node.step(m);
          // The transport reports a snapshot once it has been streamed to the follower.
          if (m.type === MessageType.Snap) this.nodes.get(m.from)?.node.reportSnapshot(m.to, true);
        } else {
          this.lost(sent);
        }
      } else if (!progressed) {
        return;
      }
    }
    throw new Error("harness did not settle");
  }

  /** A message that never arrived: a snapshot's sender hears of the failure, as from a transport. */
  private lost(m: Message): void {
    if (m.type === MessageType.Snap) this.nodes.get(m.from)?.node.reportSnapshot(m.to, false);
  }

  /** Tick every node `n` times, settling after each tick. */
  tick(n = 1, only?: NodeId[]): void {
    for (let i = 0; i < n; i++) {
      for (const [id, h] of this.nodes) if (!only || only.includes(id)) h.node.tick();
      this.settle();
    }
  }

  /** As if an election timeout passed without leader contact: followers stop refusing votes. */
  expireLeases(): void {
    for (const n of this.nodes.values()) n.node.raft.electionElapsed = 10;
  }

  /** Make `id` leader: campaign (after leases expire if needed) until it wins. */
  elect(id: NodeId): void {
    for (let i = 0; i < 10; i++) {
      this.get(id).campaign();
      this.settle();
      if (this.get(id).raft.role === Role.Leader) return;
      this.expireLeases();
    }
    throw new Error(`node ${id} could not be elected`);
  }

  leaders(): NodeId[] {
    return [...this.nodes.values()].filter((n) => n.node.raft.role === Role.Leader).map((n) => n.id);
  }

  dataApplied(id: NodeId): string[] {
    return this.nodes
      .get(id)!
      .applied.filter((e) => e.data.byteLength > 0 && e.type === EntryType.Normal)
      .map((e) => dec.decode(e.data));
  }
}

export const enc = (s: string) => new TextEncoder().encode(s);
