// Runs a seed and checks its client history for linearizability on top of the
// simulator's own invariants. A non-linearizable history throws with the seed
// (to replay) and the checker's witness; "unknown" (checker budget exhausted)
// is returned so callers can count it rather than fail on it.
import { checkLinearizable } from "../../testing/linearizability/check.ts";
import { kvModel } from "../../testing/linearizability/model.ts";
import { type SimStats, Simulator } from "./simulator.ts";

export interface CheckedRun {
  stats: SimStats;
  ops: number;
  verdict: "ok" | "unknown";
}

export function runAndCheck(nodes: number, seed: number, steps: number, timeoutMs = 5000): CheckedRun {
  const sim = new Simulator({ nodes, seed, steps });
  const stats = sim.run();
  const history = sim.clients.history;
  const r = checkLinearizable(kvModel, history, { timeoutMs });
  if (r.ok === false) {
    throw new Error(`seed ${seed} (nodes ${nodes}; replay with RAFT_SEED=${seed}): client history is not linearizable\n${r.explanation}`);
  }
  return { stats, ops: history.length, verdict: r.ok === true ? "ok" : "unknown" };
}
