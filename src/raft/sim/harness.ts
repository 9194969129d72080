// A synchronous in-process cluster for scenario tests: every node runs the
// full driver loop (persist to MemoryStorage, send, apply) and messages are
// delivered in FIFO order unless a link is cut.
import { RawNode } from "../node.ts";
import { MemoryStorage } from "../storage.ts";
import { type Entry, type Message, type NodeId, type ReadState, Role } from "../types.ts";
import { mulberry32 as seededRandom } from "../../testing/prng.ts";

export interface HarnessNode {
  id: NodeId;
  node: RawNode;
  storage: MemoryStorage;
  applied: Entry[];
  reads: ReadState[];
}

export class Harness {
  nodes = new Map<NodeId, HarnessNode>();
  private queue: Message[] = [];
  /** Cut links, as "from->to". */
  private cut = new Set<string>();
  /** Per-message hook for scenarios: return the message (possibly altered) or undefined to drop it. */
  intercept: ((m: Message) => Message | undefined) | undefined;

  constructor(
    ids: NodeId[],
    opts: { preVote?: boolean; checkQuorum?: boolean; seed?: number; maxSizePerMsg?: number } = {},
  ) {
    const rand = seededRandom(opts.seed ?? 1);
    for (const id of ids) {
      const storage = new MemoryStorage();
      const node = new RawNode({
        id,
        peers: ids,
        storage,
        electionTick: 10,
        heartbeatTick: 1,
        rand,
        preVote: opts.preVote ?? true,
        checkQuorum: opts.checkQuorum ?? true,
        maxSizePerMsg: opts.maxSizePerMsg,
      });
      this.nodes.set(id, { id, node, storage, applied: [], reads: [] });
    }
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
      n.storage.append(rd.entries);
      if (rd.hardState) n.storage.setHardState(rd.hardState);
      for (const m of rd.messages) if (!this.cut.has(`${m.from}->${m.to}`)) this.queue.push(m);
      n.applied.push(...rd.committedEntries);
      n.reads.push(...rd.readStates);
      n.node.advance();
    }
    return any;
  }

  /** Deliver messages until the cluster is quiet. */
  settle(): void {
    for (let guard = 0; guard < 100000; guard++) {
      const progressed = this.flushReady();
      let m = this.queue.shift();
      if (m) {
        const to = this.nodes.get(m.to);
        if (m && this.intercept) m = this.intercept(m);
        if (to && m && !this.cut.has(`${m.from}->${m.to}`)) to.node.step(m);
      } else if (!progressed) {
        return;
      }
    }
    throw new Error("harness did not settle");
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
      .applied.filter((e) => e.data.byteLength > 0)
      .map((e) => new TextDecoder().decode(e.data));
  }
}

export const enc = (s: string) => new TextEncoder().encode(s);
