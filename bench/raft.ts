// Benchmark of the Raft core alone (not a test): in-memory storage, no faults,
// messages delivered in batches by a minimal driver, so the figures are the
// core's cost and not the simulator's.
//   bun bench/raft.ts [--proposals=200000] [--batch=512] [--groups=1000] [--ticks=200]
// 1. committed proposals/s: 3 nodes, 1-KiB entries, the leader proposes `batch`
//    entries at a time and the cluster runs Ready loops until they are applied.
// 2. ticks/s: `groups` idle groups (single-node, then 3-node) ticked together;
//    the 3-node groups also send and answer heartbeats.
import { RawNode } from "../src/raft/node.ts";
import { mulberry32 as seededRandom } from "../src/testing/prng.ts";
import { MemoryStorage } from "../src/raft/storage.ts";
import { type Message, type NodeId, Role } from "../src/raft/types.ts";

const arg = (name: string, dflt: number) => {
  const a = process.argv.find((s) => s.startsWith(`--${name}=`));
  return a ? Number(a.slice(name.length + 3)) : dflt;
};

interface BenchNode {
  node: RawNode;
  storage: MemoryStorage;
  applied: number;
}

/** One group of nodes with a batch-delivering network: no copies, no per-message bookkeeping. */
class Group {
  readonly nodes: BenchNode[];
  private outbox: Message[] = [];

  constructor(size: number, seed: number, opts: { maxSizePerMsg: number; maxInflightMsgs: number }) {
    const ids: NodeId[] = Array.from({ length: size }, (_, i) => BigInt(i + 1));
    const rand = seededRandom(seed);
    this.nodes = ids.map((id) => {
      const storage = new MemoryStorage();
      const node = new RawNode({
        id,
        peers: ids,
        storage,
        electionTick: 10,
        heartbeatTick: 1,
        rand,
        preVote: true,
        checkQuorum: true,
        ...opts,
      });
      return { node, storage, applied: 0 };
    });
  }

  /** The driver contract per node: persist, send (into the outbox), apply, advance. */
  private ready(n: BenchNode): boolean {
    const rd = n.node.ready();
    if (!rd) return false;
    if (rd.entries.length > 0) n.storage.append(rd.entries);
    if (rd.hardState) n.storage.setHardState(rd.hardState);
    for (let i = 0; i < rd.messages.length; i++) this.outbox.push(rd.messages[i]);
    const ce = rd.committedEntries;
    if (ce.length > 0) n.applied = ce[ce.length - 1].index;
    n.node.advance();
    return true;
  }

  /** Ready loops and batch delivery until the group is quiet. */
  settle(): void {
    for (;;) {
      let any = false;
      for (const n of this.nodes) if (this.ready(n)) any = true;
      if (this.outbox.length === 0 && !any) return;
      const batch = this.outbox;
      this.outbox = [];
      for (let i = 0; i < batch.length; i++) this.nodes[Number(batch[i].to) - 1].node.step(batch[i]);
    }
  }

  elect(): BenchNode {
    this.nodes[0].node.campaign();
    this.settle();
    const leader = this.nodes[0];
    if (leader.node.raft.role !== Role.Leader) throw new Error("bench: node 1 did not become leader");
    return leader;
  }

  tick(): void {
    for (const n of this.nodes) n.node.tick();
    this.settle();
  }
}

function benchProposals(total: number, batch: number): void {
  const g = new Group(3, 1, { maxSizePerMsg: 1 << 20, maxInflightMsgs: 256 });
  const leader = g.elect();
  // One shared 1-KiB payload: the core never copies entry data, and allocating
  // 200 MB of distinct buffers would measure the allocator instead.
  const data = new Uint8Array(1024).fill(7);
  const start0 = leader.applied;
  const t0 = performance.now();
  for (let done = 0; done < total; done += batch) {
    for (let i = 0; i < batch; i++) {
      const r = leader.node.propose(data);
      if (!r.ok) throw new Error("bench: proposal dropped");
    }
    g.settle();
  }
  const ms = performance.now() - t0;
  const committed = leader.applied - start0;
  if (committed < total) throw new Error(`bench: only ${committed} of ${total} applied`);
  if (!g.nodes.every((n) => n.applied === leader.applied)) throw new Error("bench: followers did not apply everything");
  console.log(
    `proposals: 3 nodes, 1 KiB, batch ${batch}: ${committed} committed in ${ms.toFixed(0)} ms = ` +
      `${Math.round((committed / ms) * 1000).toLocaleString("en-US")} committed proposals/s`,
  );
}

function benchTicks(groups: number, size: number, ticks: number): void {
  const gs = Array.from({ length: groups }, (_, i) => new Group(size, i + 1, { maxSizePerMsg: 1 << 20, maxInflightMsgs: 256 }));
  for (const g of gs) g.elect();
  const t0 = performance.now();
  for (let t = 0; t < ticks; t++) for (const g of gs) g.tick();
  const ms = performance.now() - t0;
  for (const g of gs) if (g.nodes[0].node.raft.role !== Role.Leader) throw new Error("bench: an idle group lost its leader");
  const groupTicks = groups * ticks;
  console.log(
    `ticks: ${groups} idle ${size}-node groups x ${ticks} ticks in ${ms.toFixed(0)} ms = ` +
      `${Math.round((groupTicks / ms) * 1000).toLocaleString("en-US")} group-ticks/s ` +
      `(${Math.round(((groupTicks * size) / ms) * 1000).toLocaleString("en-US")} node-ticks/s)`,
  );
}

const proposals = arg("proposals", 200_000);
const batch = arg("batch", 512);
const groups = arg("groups", 1000);
const ticks = arg("ticks", 200);
// A short warm-up so the JIT has compiled the hot paths before timing.
benchProposals(20_000, batch);
benchProposals(proposals, batch);
benchTicks(groups, 1, ticks);
benchTicks(groups, 3, ticks);
