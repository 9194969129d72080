// Seeded simulation of whole clusters under faults, with safety invariants
// checked at every step and the clients' key-value history checked for
// linearizability after each run. A failure names its seed; RAFT_SEED=<n>
// replays just it (RAFT_SEEDS=<count> and RAFT_STEPS=<n> widen the sweep).
import { expect, test } from "bun:test";
import { CORPUS } from "./corpus.ts";
import { runAndCheck } from "./lincheck.ts";
import { Simulator } from "./simulator.ts";

const only = process.env.RAFT_SEED ? Number(process.env.RAFT_SEED) : undefined;
const SEEDS = Number(process.env.RAFT_SEEDS ?? 1000);
const STEPS = Number(process.env.RAFT_STEPS ?? 2000);

for (const nodes of [1, 3, 5]) {
  test(`simulation: ${nodes} node(s), ${only === undefined ? `seeds 1..${SEEDS}` : `seed ${only}`}`, () => {
    const seeds = only === undefined ? Array.from({ length: SEEDS }, (_, i) => i + 1) : [only];
    let committed = 0;
    let reads = 0;
    let ops = 0;
    let returned = 0;
    const faults = { snapshots: 0, installs: 0, confChanges: 0, transfers: 0 };
    const unknown: number[] = [];
    for (const seed of seeds) {
      const run = runAndCheck(nodes, seed, STEPS);
      committed += run.stats.committed;
      reads += run.stats.reads;
      ops += run.ops;
      returned += run.stats.clients.returned;
      for (const k of Object.keys(faults) as (keyof typeof faults)[]) faults[k] += run.stats[k];
      if (run.verdict === "unknown") unknown.push(seed);
      if (only !== undefined) console.log(`seed ${seed}:`, run.stats, run.verdict);
    }
    if (only === undefined) {
      console.log(
        `${nodes} node(s): ${seeds.length} seeds, ${ops} client ops (${returned} answered), ` +
          `linearizability unknown for ${unknown.length} seed(s)${unknown.length ? `: ${unknown.join(", ")}` : ""}; ` +
          `snapshots ${faults.snapshots}, installed ${faults.installs}, conf changes applied ${faults.confChanges}, transfers ${faults.transfers}`,
      );
      // The sweep must keep exercising snapshots, membership changes and transfers.
      expect(faults.snapshots).toBeGreaterThan(seeds.length);
      expect(faults.installs).toBeGreaterThan(seeds.length / 10);
      // (Five stormy nodes often have no leader to take a change: fewer get through.)
      expect(faults.confChanges).toBeGreaterThan(seeds.length / (nodes === 5 ? 4 : 1));
      expect(faults.transfers).toBeGreaterThan(seeds.length / 10);
    }
    // The runs must make progress, not just stay safe by doing nothing.
    expect(committed).toBeGreaterThan(seeds.length * 5);
    if (nodes > 1 && only === undefined) expect(reads).toBeGreaterThan(seeds.length);
    if (only === undefined) expect(returned).toBeGreaterThan(seeds.length * 5);
    // "unknown" means the checker ran out of budget: tolerated, but it must stay rare.
    expect(unknown.length).toBeLessThanOrEqual(Math.ceil(seeds.length / 100));
  }, 60_000);
}

test("simulation: seed corpus", () => {
  for (const c of CORPUS) runAndCheck(c.nodes, c.seed, STEPS);
});

test("simulation: a seed replays exactly", () => {
  const a = new Simulator({ nodes: 5, seed: 42, steps: STEPS });
  const b = new Simulator({ nodes: 5, seed: 42, steps: STEPS });
  expect(a.run()).toEqual(b.run());
  expect([...a.checker.applied]).toEqual([...b.checker.applied]);
  expect(a.clients.history).toEqual(b.clients.history);
});
