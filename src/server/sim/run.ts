#!/usr/bin/env bun
// Runs simulated seeds of whole members and reports each failure with its seed.
//
//   bun src/server/sim/run.ts --seeds=1-1000        a range (default 1-100)
//   bun src/server/sim/run.ts --seed=42 --verbose   one seed, with its stats and what the nemesis did
//   --quick                                          quarter-length runs (what npm test runs)
//   --mutate=NAME                                    every member with a planted bug (mutations.ts)
//   SIM_LOG=1 ...                                    the members' own logs too
//
// Exit status 1 when any seed failed. The last line is a JSON summary (the tests read it).
import { MUTATIONS, type MutationName } from "./mutations.js";
import { simulate, type SimResult } from "./simulator.js";

function arg(name: string): string | undefined {
  return process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
}

const one = arg("seed");
const [lo, hi] = one !== undefined ? [Number(one), Number(one)] : (arg("seeds") ?? "1-100").split("-").map(Number);
const verbose = process.argv.includes("--verbose");
const quick = process.argv.includes("--quick");
const mutation = arg("mutate") as MutationName | undefined;
if (mutation !== undefined && !(mutation in MUTATIONS)) throw new Error(`--mutate: one of ${Object.keys(MUTATIONS).join(", ")}`);
const started = performance.now();
const failed: number[] = [];
const totals: Record<string, number> = {};
let unknown = 0;
for (let seed = lo; seed <= hi; seed++) {
  const r: SimResult = await simulate({ seed, quick, mutate: mutation && MUTATIONS[mutation] });
  for (const [k, v] of Object.entries(r.stats)) if (typeof v === "number") totals[k] = (totals[k] ?? 0) + v;
  if (r.stats.linearizability === "unknown") unknown++;
  if (verbose) console.log(JSON.stringify({ seed, members: r.members, stats: r.stats, trace: r.trace }, null, 1));
  if (r.failures.length > 0) {
    failed.push(seed);
    console.log(
      `seed ${seed} (${r.members} members) FAILED; replay: bun src/server/sim/run.ts --seed=${seed}${quick ? " --quick" : ""}${mutation ? ` --mutate=${mutation}` : ""} --verbose\n  ${r.failures.join("\n  ")}`,
    );
  }
}
const seconds = (performance.now() - started) / 1000;
console.log(JSON.stringify({ seeds: hi - lo + 1, failed, linearizabilityUnknown: unknown, seconds: Number(seconds.toFixed(1)), totals }));
process.exit(failed.length > 0 ? 1 : 0);
