// Seeds worth keeping: each one caught a deliberately injected bug (mutation
// testing of the checker). They run with the default seed sweep on every test run.
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
];
