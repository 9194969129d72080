// Seeded simulation of whole clusters under faults, with safety invariants
// checked at every step. A failure names its seed; RAFT_SEED=<n> replays just it
// (RAFT_SEEDS=<count> and RAFT_STEPS=<n> widen the sweep).
import { expect, test } from "bun:test";
import { CORPUS } from "./corpus.ts";
import { Simulator } from "./simulator.ts";

const only = process.env.RAFT_SEED ? Number(process.env.RAFT_SEED) : undefined;
const SEEDS = Number(process.env.RAFT_SEEDS ?? 400);
const STEPS = Number(process.env.RAFT_STEPS ?? 2000);

for (const nodes of [1, 3, 5]) {
  test(`simulation: ${nodes} node(s), ${only === undefined ? `seeds 1..${SEEDS}` : `seed ${only}`}`, () => {
    const seeds = only === undefined ? Array.from({ length: SEEDS }, (_, i) => i + 1) : [only];
    let committed = 0;
    let reads = 0;
    for (const seed of seeds) {
      const stats = new Simulator({ nodes, seed, steps: STEPS }).run();
      committed += stats.committed;
      reads += stats.reads;
      if (only !== undefined) console.log(`seed ${seed}:`, stats);
    }
    // The runs must make progress, not just stay safe by doing nothing.
    expect(committed).toBeGreaterThan(seeds.length * 5);
    if (nodes > 1 && only === undefined) expect(reads).toBeGreaterThan(seeds.length);
  }, 60_000);
}

test("simulation: seed corpus", () => {
  for (const c of CORPUS) new Simulator({ nodes: c.nodes, seed: c.seed, steps: STEPS }).run();
});

test("simulation: a seed replays exactly", () => {
  const a = new Simulator({ nodes: 5, seed: 42, steps: STEPS });
  const b = new Simulator({ nodes: 5, seed: 42, steps: STEPS });
  expect(a.run()).toEqual(b.run());
  expect([...a.checker.applied]).toEqual([...b.checker.applied]);
});
