// Seeds worth keeping: each one caught a deliberately injected bug (mutation
// testing of the checkers). Client workload changes alter the runs, so a seed
// here documents a past catch; re-run the mutation to re-confirm. They run on every test run.
export interface CorpusSeed {
  nodes: number;
  seed: number;
  why: string;
}

export const CORPUS: CorpusSeed[] = [
  { nodes: 3, seed: 1, why: "election restriction disabled: a leader lacked a committed entry" },
  { nodes: 5, seed: 3, why: "election restriction disabled: a leader lacked a committed entry" },
  { nodes: 3, seed: 393, why: "commit by counting replicas of an old-term entry (figure 8)" },
  { nodes: 5, seed: 2407, why: "commit by counting replicas of an old-term entry (figure 8)" },
  { nodes: 3, seed: 245, why: "leader answered ReadIndex without a heartbeat round: stale read" },
  // Simulator-side read mutations, caught by the linearizability check of the client history.
  { nodes: 3, seed: 1, why: "client get answered from local state without ReadIndex (217/400 3-node seeds failed)" },
  { nodes: 5, seed: 3, why: "client get answered from local state without ReadIndex (96/400 5-node seeds failed)" },
  { nodes: 3, seed: 39, why: "client get answered at its read index before the node applied up to it" },
  { nodes: 3, seed: 67, why: "client get answered at its read index before the node applied up to it" },
  { nodes: 3, seed: 223, why: "client get answered at its read index before the node applied up to it" },
  // Membership, snapshots and transfers in the simulator (each failed before its fix).
  { nodes: 1, seed: 4, why: "a learner joined after the leader's snapshot: the snapshot lacked it, it refused it forever" },
  { nodes: 1, seed: 148, why: "a learner's leader lease never expired (it cannot campaign), so it refused every vote" },
  { nodes: 1, seed: 151, why: "a removed leader lost leadership holding the longest log; the survivor could not win" },
];
