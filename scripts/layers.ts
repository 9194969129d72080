#!/usr/bin/env bun
// Check that src/ keeps its layers: no import cycles (type-only imports count, since a type
// cycle still ties two modules together for a reader and for a future split), each folder
// imports only the folders below it, test support stays out of production code, and src/
// never reaches into test/ or bench/.
//
//   bun scripts/layers.ts            # prints every cycle and violation; exit code 1 if any
//
// Imports are read with TypeScript's preProcessFile, which sees static, type-only, re-export
// and dynamic import() specifiers alike without type-checking the program.
import { readdirSync, readFileSync, statSync, existsSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import ts from "typescript";

const ROOT = resolve(dirname(new URL(import.meta.url).pathname), "..");
const SRC = join(ROOT, "src");

/** Modules every layer may import: they import nothing of ours themselves. */
const BASE_FILES = new Set(["errors.ts", "log.ts", "version.ts"]);
const BASE_DIRS = new Set(["gen"]);

/**
 * What each top-level folder of src/ may import besides the base modules. Listed explicitly
 * rather than as one ordered list: watch and lease share a rank without importing each other,
 * and transport needs only raft's types and tls, not the storage stack.
 */
const ALLOWED: Record<string, readonly string[]> = {
  raft: [],
  storage: ["raft"],
  mvcc: ["storage", "raft"],
  watch: ["mvcc", "storage", "raft"],
  lease: ["mvcc", "storage", "raft"],
  transport: ["raft", "tls"],
  server: ["raft", "storage", "mvcc", "watch", "lease", "transport", "tls", "config", "runtime"],
  api: ["server", "raft", "storage", "mvcc", "watch", "lease", "transport", "tls", "config", "runtime"],
  embed: ["api", "server", "raft", "storage", "mvcc", "watch", "lease", "transport", "tls", "config", "runtime"],
  cli: ["embed", "api", "server", "raft", "storage", "mvcc", "watch", "lease", "transport", "tls", "config", "runtime"],
  config: [],
  tls: [],
  runtime: [],
  // Shared test support is generic (a PRNG, free ports, a linearizability checker): it must not
  // depend on the layers whose tests use it, or a low layer's test would pull in a high one.
  testing: [],
};

/** Test code may import src/testing/ and other test code; production code may import neither. */
function isTestCode(rel: string): boolean {
  return rel.endsWith(".test.ts") || rel.includes("/sim/") || rel.includes("test-support") || rel.split("/").includes("testing");
}

function walk(dir: string, out: string[]): string[] {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) walk(path, out);
    else if (name.endsWith(".ts")) out.push(path);
  }
  return out;
}

/** Resolve a relative specifier the way Bun does for our sources: .js, .ts or no extension all name the .ts file. */
function resolveSpecifier(from: string, spec: string): string | undefined {
  if (!spec.startsWith(".")) return undefined;
  const base = resolve(dirname(from), spec);
  const stem = base.replace(/\.(js|ts)$/, "");
  for (const candidate of [`${stem}.ts`, join(base, "index.ts")]) if (existsSync(candidate)) return candidate;
  return base; // unresolved: still reported if it leaves src/
}

const files = walk(SRC, []).filter((f) => !relative(SRC, f).startsWith("gen/"));
const graph = new Map<string, string[]>();
const problems: string[] = [];

for (const file of files) {
  const rel = relative(SRC, file);
  const info = ts.preProcessFile(readFileSync(file, "utf8"), true, true);
  const deps: string[] = [];
  for (const { fileName } of info.importedFiles) {
    const target = resolveSpecifier(file, fileName);
    if (!target) continue;
    const targetRel = relative(SRC, target);
    if (targetRel.startsWith("..")) {
      problems.push(`${rel}: imports ${relative(ROOT, target)}, outside src/`);
      continue;
    }
    deps.push(target);
    if (isTestCode(targetRel) && !isTestCode(rel)) {
      problems.push(`${rel}: production code imports test code ${targetRel}`);
      continue;
    }
    const [fromTop] = rel.split("/");
    const [toTop] = targetRel.split("/");
    if (BASE_FILES.has(targetRel) || BASE_DIRS.has(toTop!) || fromTop === toTop || toTop === "testing") continue;
    if (BASE_FILES.has(rel)) {
      problems.push(`${rel}: base module imports ${targetRel}`);
      continue;
    }
    const allowed = ALLOWED[fromTop!];
    if (!allowed) problems.push(`${rel}: folder ${fromTop}/ has no layer rule`);
    else if (!allowed.includes(toTop!)) problems.push(`${rel}: ${fromTop}/ may not import ${targetRel}`);
  }
  graph.set(file, deps);
}

// Tarjan's strongly connected components: every component with more than one file (or a file
// importing itself) is a cycle.
const index = new Map<string, number>();
const low = new Map<string, number>();
const onStack = new Set<string>();
const stack: string[] = [];
const components: string[][] = [];
let counter = 0;
function connect(v: string): void {
  index.set(v, counter);
  low.set(v, counter);
  counter++;
  stack.push(v);
  onStack.add(v);
  for (const w of graph.get(v) ?? []) {
    if (!graph.has(w)) continue;
    if (!index.has(w)) {
      connect(w);
      low.set(v, Math.min(low.get(v)!, low.get(w)!));
    } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
  }
  if (low.get(v) === index.get(v)) {
    const component: string[] = [];
    let w: string;
    do {
      w = stack.pop()!;
      onStack.delete(w);
      component.push(w);
    } while (w !== v);
    if (component.length > 1 || (graph.get(v) ?? []).includes(v)) components.push(component);
  }
}
for (const file of graph.keys()) if (!index.has(file)) connect(file);

for (const component of components) {
  const names = component.map((f) => relative(SRC, f)).sort();
  problems.push(`cycle among ${names.length} files: ${names.join(", ")}`);
}

for (const p of problems) console.log(p);
console.log(`${files.length} files, ${components.length} import cycle(s), ${problems.length - components.length} layer violation(s)`);
process.exit(problems.length === 0 ? 0 : 1);
