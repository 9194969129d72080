// House rules: the shape the design asks of src/, checked on every `npm test`
// so it holds without anyone having to remember it (TigerBeetle's `tidy` is the
// model). Every .ts file under src/ except the generated src/gen/ is parsed
// with the TypeScript compiler (syntax only, no type checking: a few seconds),
// and the test fails, one line per problem naming file, line and rule, on:
//
// 1. layers: a file importing a layer its own layer may not (LAYERS below, the
//    table of the README's "How it is built"), or product code importing test code;
// 2. cycle: any import cycle in src/, type-only imports included;
// 3. raft-purity: a clock, timer, randomness or I/O in the Raft core; and
//    server-time: a clock, timer or randomness in src/server/ not taken from
//    its injected Runtime (names are checked as references in the syntax tree,
//    so a word in a comment or a property called `process` is fine);
// 4. src-imports-test: src/ importing test/ (or anything else outside src/);
// 5. function-length: a function over 70 lines in product code (test files
//    are exempt: a test reads top to bottom and splitting it rarely helps),
//    outside the reviewed LONG_FUNCTIONS;
// 6. empty-catch: a catch block with no statement (a comment alone is still
//    empty), in product and test code, outside the reviewed EMPTY_CATCHES.
//
// Every list of exceptions here can only shrink: an entry that no longer
// matches anything fails the test as stale, so it is removed when its code is.
//
// Test code, which may import any layer but never test/, is: `*.test.ts`,
// anything under a `sim/` or `testing/` folder, and `*test-support*.ts`.
// Product code never imports test code.
import { expect, test } from "bun:test";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, posix, resolve } from "node:path";
import ts from "typescript";

// ---------------------------------------------------------------------------
// The rules, as data.

/**
 * The layers (folders under src/) and what each may import besides itself:
 * the README's "How it is built", where each knows only those below it. The
 * relation is transitive: a layer may also import whatever the layers it lists
 * may. A folder missing from this table fails the test until it is added.
 */
const LAYERS: Record<string, readonly string[]> = {
  raft: [],
  storage: ["raft"],
  mvcc: ["storage"],
  watch: ["mvcc"],
  lease: ["mvcc"],
  auth: ["storage"],
  v2store: ["storage"],
  transport: ["raft", "tls", "runtime"],
  server: ["raft", "storage", "mvcc", "watch", "lease", "auth", "v2store", "transport", "tls", "runtime"],
  api: ["server"],
  embed: ["api", "server", "config", "tls", "runtime"],
  cli: ["embed", "api", "server", "config", "tls", "runtime"],
  config: [],
  tls: [],
  runtime: [],
};

/** Test support shared by tests of several layers: importable by test code only. */
const TEST_ONLY_LAYERS: readonly string[] = ["testing"];

/** Top-level files every layer may import; they import nothing of ours but each other and src/gen/. */
const BASE_MODULES: readonly string[] = ["src/errors.ts", "src/log.ts", "src/version.ts", "src/assert.ts", "src/bytes.ts"];

/**
 * Any other top-level file of src/ must be given a layer here (none today), so
 * that a new file at the top is a decision and not a way around the table.
 */
const TOP_LEVEL_FILES: Record<string, string> = {};

/** Function length limit in lines, first to last line of the function. */
const MAX_FUNCTION_LINES = 70;

/** The only packages the Raft core may import (its product code: sim/ and tests may use anything). */
const RAFT_PACKAGES: readonly string[] = ["@bufbuild/protobuf"];

/** Globals that would give the Raft core a clock, a timer, randomness or I/O. */
const IMPURE_GLOBALS: ReadonlySet<string> = new Set([
  "Date",
  "performance",
  "setTimeout",
  "setInterval",
  "setImmediate",
  "queueMicrotask",
  "crypto",
  "Bun",
  "Deno",
  "process",
  "fetch",
  "console",
]);

/**
 * Reviewed functions over MAX_FUNCTION_LINES: "file: Name" (Class.method,
 * Outer.inner, `constructor`, `x(callback)` for a callback passed to x) → why
 * it may stay long. Split a function rather than add it here.
 */
const LONG_FUNCTIONS: Record<string, string> = {
  "src/api/gateway-watch.ts: gatewayBidi": "predates the rule: the gateway's bidi stream (requests in, JSON lines out) in one closure; split when next changed",
  "src/api/h2/hpack.ts: HpackDecoder.decode":
    "the header-block decode loop of every request: one loop over RFC 7541's field representations, kept whole for speed",
  "src/api/stream-to-fetch.ts: serveStreamWithFetch":
    "predates the rule: request collection and response streaming share the stream's state; split when next changed",
  "src/raft/raft.ts: Raft.stepLeader": "one switch over message types, as etcd-io/raft's stepLeader; each case is short and reads against etcd's",
  "src/server/metrics.ts: Metrics.constructor": "a flat list of metric declarations with etcd's names and help texts, nothing to split",
  "src/transport/peer-request.ts: requestOnce": "predates the rule: one request's session, timers and settling in one closure; split when next changed",
  "src/transport/peer-request.ts: requestOnce.Promise(callback)": "the body of requestOnce, as above",
  "src/transport/snapshot-receiver.ts: receiveSnapshot":
    "predates the rule: the receiver's state machine as closures over shared state (167 lines); the first to split",
  "src/watch/hub.ts: WatchHub.syncOnce": "predates the rule: one sync pass of the watch fan-out (pick watchers, read a page, deliver); split when next changed",
};

/**
 * Reviewed empty catch blocks: "file: enclosing function" (" #2" for the second
 * in the same function, `<module>` outside any) → why ignoring the error is right.
 */
const EMPTY_CATCHES: Record<string, string> = {
  "src/api/gateway-watch.ts: gatewayBidi.<anonymous>": "as grpc-gateway: a request that does not decode ends the requests, not the stream",
  "src/api/h2/connection.ts: H2Connection.report": "a failing error reporter must not take the connection down",
  "src/api/listener.ts: ClientPort.nodeHttp2.on(callback)": "setLocalWindowSize before the session is connected throws; the 'connect' handler sets it then",
  "src/api/stream-to-fetch.ts: serveStreamWithFetch.respond":
    "the response body failed or was canceled because the stream closed; the finally block cancels the body and ends the stream",
  "src/mvcc/store-random.test.ts: nextOp": "a generated request that validation refuses is dropped and another drawn",
  "src/server/member.ts: Member.stop": "handing leadership over is best effort: the member stops either way",
  "src/tls/peer.ts: hostsOf": "a listen URL that does not parse gives no host name to the self-signed certificate (config validated the URLs)",
  "src/server/promote.ts: decodePromoteReply": "a body that is not JSON leaves v undefined, which the code below reports with the body's text",
  "src/transport/inbound-stream.ts: refuse": "the peer went away while we answered: nothing left to tell it",
  "src/transport/inbound-stream.ts: closeStream": "closing a stream that is already closed or gone: nothing to do",
  "src/transport/server.ts: PeerServer.listenOne.on(callback)": "a certificate that cannot be read leaves the CN unknown, and the connection is refused below",
  "src/transport/server.ts: PeerServer.listenOne.on(callback) #2": "resetting a stream whose handler failed (already logged); the stream may be gone",
  "src/transport/server.ts: PeerServer.close": "destroying sessions on close: one already gone must not stop the others",
  "src/transport/snapshot-receiver.ts: receiveSnapshot.fail": "pausing a stream that is already closed while failing the receive",
  "src/transport/snapshot-receiver.ts: receiveSnapshot.complete":
    "the snapshot was handled; a sender gone before the 200 sees a failure, and Raft sends again if still needed",
  "src/transport/snapshot-sender.ts: RequestWatch.dispose": "closing a request that is already closed",
  "src/transport/stream-writer.ts: StreamWriter.closeConnection": "tearing a connection down: the stream may be closed already",
  "src/transport/stream-writer.ts: StreamWriter.closeConnection #2": "tearing a connection down: the session may be destroyed already",
};

// ---------------------------------------------------------------------------
// The tree: every file of src/ but src/gen/, parsed once for all rules.

const ROOT = resolve(import.meta.dir, "..");

interface Import {
  line: number;
  specifier: string;
  /** Repository-relative path of the target for a relative specifier (resolved to a file when one exists). */
  target?: string;
}

interface File {
  path: string;
  sf: ts.SourceFile;
  isTest: boolean;
  imports: Import[];
}

const files = loadTree();
const byPath = new Map(files.map((f) => [f.path, f]));

function loadTree(): File[] {
  const paths = (readdirSync(join(ROOT, "src"), { recursive: true }) as string[])
    .map((p) => posix.join("src", p.split("\\").join("/")))
    .filter((p) => p.endsWith(".ts") && !p.startsWith("src/gen/"))
    .sort();
  return paths.map((path) => {
    const sf = ts.createSourceFile(path, readFileSync(join(ROOT, path), "utf8"), ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
    return { path, sf, isTest: isTestCode(path), imports: importsOf(path, sf) };
  });
}

function isTestCode(path: string): boolean {
  const name = posix.basename(path);
  const dirs = posix.dirname(path).split("/");
  return name.endsWith(".test.ts") || name.includes("test-support") || dirs.includes("sim") || dirs.includes("testing");
}

/** Static and dynamic imports, re-exports, `import x = require()`, `require()` and `import("x")` types. */
function importsOf(path: string, sf: ts.SourceFile): Import[] {
  const out: Import[] = [];
  const add = (node: ts.Node, spec: ts.Node | undefined) => {
    if (spec === undefined || !ts.isStringLiteralLike(spec)) return;
    out.push({ line: lineOf(sf, node), specifier: spec.text, target: resolveSpecifier(path, spec.text) });
  };
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) add(node, node.moduleSpecifier);
    else if (ts.isImportEqualsDeclaration(node) && ts.isExternalModuleReference(node.moduleReference)) add(node, node.moduleReference.expression);
    else if (ts.isCallExpression(node) && isImportOrRequire(node.expression)) add(node, node.arguments[0]);
    else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument)) add(node, node.argument.literal);
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return out;
}

function isImportOrRequire(callee: ts.Expression): boolean {
  return callee.kind === ts.SyntaxKind.ImportKeyword || (ts.isIdentifier(callee) && callee.text === "require");
}

/** A relative specifier as a repository path: `./x.js` is the file `x.ts`, `./x` is `x.ts` or `x/index.ts`. */
function resolveSpecifier(from: string, spec: string): string | undefined {
  if (!spec.startsWith(".")) return undefined;
  const base = posix.normalize(posix.join(posix.dirname(from), spec));
  const candidates = [base.endsWith(".js") ? `${base.slice(0, -3)}.ts` : base, `${base}.ts`, `${base}/index.ts`];
  return candidates.find((c) => isFile(c)) ?? base;
}

function isFile(path: string): boolean {
  try {
    return statSync(join(ROOT, path)).isFile();
  } catch {
    return false; // no such file: the caller tries the next candidate
  }
}

function lineOf(sf: ts.SourceFile, node: ts.Node): number {
  return sf.getLineAndCharacterOfPosition(node.getStart(sf)).line + 1;
}

// ---------------------------------------------------------------------------
// Rule 1: layers.

type Place = { kind: "gen" } | { kind: "base" } | { kind: "layer"; layer: string } | { kind: "unclassified"; why: string };

function placeOf(path: string): Place {
  if (path.startsWith("src/gen/")) return { kind: "gen" };
  if (BASE_MODULES.includes(path)) return { kind: "base" };
  const parts = path.split("/");
  if (parts.length === 2) {
    const layer = TOP_LEVEL_FILES[path];
    return layer !== undefined
      ? { kind: "layer", layer }
      : { kind: "unclassified", why: "a top-level file of src/ that is neither in BASE_MODULES nor in TOP_LEVEL_FILES" };
  }
  const layer = parts[1];
  if (layer in LAYERS || TEST_ONLY_LAYERS.includes(layer)) return { kind: "layer", layer };
  return { kind: "unclassified", why: `src/${layer}/ is not in the LAYERS table` };
}

/** What each layer may import, its own folder included, with the table's transitivity applied. */
const reachable = new Map(Object.keys(LAYERS).map((layer) => [layer, closure(layer)]));

function closure(layer: string): Set<string> {
  const seen = new Set([layer]);
  const todo = [layer];
  for (let l = todo.pop(); l !== undefined; l = todo.pop()) {
    for (const next of LAYERS[l] ?? []) {
      if (seen.has(next)) continue;
      seen.add(next);
      todo.push(next);
    }
  }
  return seen;
}

/** Why `from` may not import `to` (both under src/), or undefined when it may. */
function layerProblem(from: File, to: string): string | undefined {
  const src = placeOf(from.path);
  const dst = placeOf(to);
  if (dst.kind === "gen" || dst.kind === "base") return undefined;
  if (from.isTest) return undefined;
  if (isTestCode(to)) return `product code may not import test code ${to}`;
  if (src.kind === "base") return `a base module imports only other base modules and src/gen/, not ${to}`;
  if (src.kind !== "layer" || dst.kind !== "layer") return undefined; // reported once per file as unclassified
  if (reachable.get(src.layer)?.has(dst.layer)) return undefined;
  const may = [...(reachable.get(src.layer) ?? [])].filter((l) => l !== src.layer);
  return `${src.layer}/ may not import ${to} (${dst.layer}/); it may import ${may.length > 0 ? may.map((l) => `${l}/`).join(", ") : "no other layer"}`;
}

test("1. layers: each file imports only the layers below its own", () => {
  const problems: string[] = [];
  for (const f of files) {
    const place = placeOf(f.path);
    if (place.kind === "unclassified" && !f.isTest) problems.push(`${f.path}:1: layers: ${place.why}`);
    for (const imp of f.imports) {
      if (imp.target === undefined || !imp.target.startsWith("src/")) continue;
      const why = layerProblem(f, imp.target);
      if (why !== undefined) problems.push(`${f.path}:${imp.line}: layers: ${why}`);
    }
  }
  report(problems);
});

// ---------------------------------------------------------------------------
// Rule 2: no import cycle. Each strongly connected component of the import
// graph (files that reach each other) is one problem, shown by one of its
// cycles and its whole file set.

test("2. no import cycle in src/", () => {
  const problems: string[] = [];
  for (const component of stronglyConnected()) {
    const chain = shortestCycle(component);
    const all = component.length > chain.length - 1 ? ` (${component.length} files in the loop: ${component.join(", ")})` : "";
    problems.push(`${chain[0]}:${importLine(chain[0], chain[1])}: cycle: ${chain.join(" -> ")}${all}`);
  }
  report(problems);
});

function edges(path: string): string[] {
  const targets = byPath.get(path)?.imports.map((i) => i.target) ?? [];
  return [...new Set(targets.filter((t): t is string => t !== undefined && byPath.has(t)))].sort();
}

function importLine(from: string, to: string): number {
  return byPath.get(from)?.imports.find((i) => i.target === to)?.line ?? 1;
}

/** Tarjan's algorithm: the components that contain a cycle (two files or more, or a file importing itself), sorted. */
function stronglyConnected(): string[][] {
  let counter = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const out: string[][] = [];
  const visit = (v: string): void => {
    index.set(v, counter);
    low.set(v, counter++);
    stack.push(v);
    onStack.add(v);
    for (const w of edges(v)) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v)!, index.get(w)!));
      }
    }
    if (low.get(v) !== index.get(v)) return;
    const component: string[] = [];
    for (let w = stack.pop()!; ; w = stack.pop()!) {
      onStack.delete(w);
      component.push(w);
      if (w === v) break;
    }
    if (component.length > 1 || edges(v).includes(v)) out.push(component.sort());
  };
  for (const f of files) if (!index.has(f.path)) visit(f.path);
  return out.sort((a, b) => a[0].localeCompare(b[0]));
}

/** A shortest cycle through the component's first file, as a chain that ends where it starts. */
function shortestCycle(component: string[]): string[] {
  const inside = new Set(component);
  const start = component[0];
  const parent = new Map<string, string>();
  const queue = [start];
  for (let i = 0; i < queue.length; i++) {
    for (const next of edges(queue[i]).filter((n) => inside.has(n))) {
      if (next === start) return [...pathTo(queue[i], parent, start), start];
      if (parent.has(next)) continue;
      parent.set(next, queue[i]);
      queue.push(next);
    }
  }
  return [start, start]; // unreachable for a real component; keeps the message well-formed
}

function pathTo(end: string, parent: Map<string, string>, start: string): string[] {
  const chain = [end];
  while (chain[0] !== start) chain.unshift(parent.get(chain[0])!);
  return chain;
}

// ---------------------------------------------------------------------------
// Rule 3: the Raft core is pure: no timers, no I/O, no clock, no randomness
// except a seeded source injected by its driver.

test("3. raft-purity: no clock, timer, randomness or I/O in src/raft/", () => {
  const problems: string[] = [];
  for (const f of files.filter((f) => f.path.startsWith("src/raft/") && !f.isTest)) {
    for (const imp of f.imports) {
      if (imp.target !== undefined || RAFT_PACKAGES.some((p) => imp.specifier === p || imp.specifier.startsWith(`${p}/`))) continue;
      problems.push(`${f.path}:${imp.line}: raft-purity: imports "${imp.specifier}" (the core may import only ${RAFT_PACKAGES.join(", ")} and src/)`);
    }
    const visit = (node: ts.Node): void => {
      const name = impureUse(node);
      if (name !== undefined) {
        problems.push(`${f.path}:${lineOf(f.sf, node)}: raft-purity: uses ${name} (a clock, timer, randomness or I/O: inject it instead)`);
      }
      ts.forEachChild(node, visit);
    };
    visit(f.sf);
  }
  report(problems);
});

// Rule 3b: the member (src/server/) takes time, timers and chance from its
// injected Runtime (src/runtime/time.ts), so the simulator in src/server/sim/
// can run whole members on one seeded clock. I/O stays allowed there.

test("3b. server-time: src/server/ uses no clock, timer or randomness but its injected runtime", () => {
  const problems: string[] = [];
  for (const f of files.filter((f) => f.path.startsWith("src/server/") && !f.isTest)) {
    const visit = (node: ts.Node): void => {
      const name = impureUse(node, SERVER_FORBIDDEN);
      if (name !== undefined) problems.push(`${f.path}:${lineOf(f.sf, node)}: server-time: uses ${name} (take it from the member's Runtime instead)`);
      ts.forEachChild(node, visit);
    };
    visit(f.sf);
  }
  report(problems);
});

/** What the member must take from its Runtime: the clocks, timers and Bun.sleep (microtasks are deterministic and stay). */
const SERVER_FORBIDDEN: ReadonlySet<string> = new Set(["Date", "performance", "setTimeout", "setInterval", "setImmediate", "Bun"]);

/** The impure global a node refers to, if any: `Date`, `Math.random`, `globalThis.process`... */
function impureUse(node: ts.Node, forbidden: ReadonlySet<string> = IMPURE_GLOBALS): string | undefined {
  if (ts.isIdentifier(node)) return forbidden.has(node.text) && isReference(node) ? node.text : undefined;
  const access = memberAccess(node);
  if (access === undefined) return undefined;
  const [owner, member] = access;
  if (owner === "Math" && member === "random") return "Math.random";
  if (["globalThis", "window", "self", "global"].includes(owner) && forbidden.has(member)) return `${owner}.${member}`;
  return undefined;
}

/** `a.b` and `a["b"]` as ["a", "b"]. */
function memberAccess(node: ts.Node): [string, string] | undefined {
  if (ts.isPropertyAccessExpression(node) && ts.isIdentifier(node.expression)) return [node.expression.text, node.name.text];
  if (ts.isElementAccessExpression(node) && ts.isIdentifier(node.expression) && ts.isStringLiteralLike(node.argumentExpression)) {
    return [node.expression.text, node.argumentExpression.text];
  }
  return undefined;
}

/** False where an identifier only names something (a property, a member, a label) rather than referring to a variable. */
function isReference(id: ts.Identifier): boolean {
  const p = id.parent;
  if (ts.isPropertyAccessExpression(p) || ts.isQualifiedName(p)) return (ts.isPropertyAccessExpression(p) ? p.name : p.right) !== id;
  if (ts.isBindingElement(p) || ts.isImportSpecifier(p) || ts.isExportSpecifier(p)) return p.propertyName !== id && p.name !== id;
  if (ts.isLabeledStatement(p) || ts.isBreakOrContinueStatement(p)) return false;
  const named =
    ts.isPropertyAssignment(p) ||
    ts.isPropertyDeclaration(p) ||
    ts.isPropertySignature(p) ||
    ts.isMethodDeclaration(p) ||
    ts.isMethodSignature(p) ||
    ts.isGetAccessor(p) ||
    ts.isSetAccessor(p) ||
    ts.isEnumMember(p);
  return !(named && p.name === id);
}

// ---------------------------------------------------------------------------
// Rule 4: src/ is self-contained: its tests use test support under src/, never test/.

test("4. src/ never imports test/ (nor anything else outside src/)", () => {
  const problems: string[] = [];
  for (const f of files) {
    for (const imp of f.imports) {
      if (imp.target === undefined || imp.target.startsWith("src/")) continue;
      const what = imp.target.startsWith("test/") ? "src/ may not import test/" : "src/ imports only src/ and packages";
      problems.push(`${f.path}:${imp.line}: src-imports-test: ${what}, but this imports ${imp.target}`);
    }
  }
  report(problems);
});

// ---------------------------------------------------------------------------
// Rules 5 and 6: function length and empty catch blocks, with their reviewed lists.

/** A function or catch block, identified without its line number so a list entry survives edits above it. */
interface Site {
  key: string;
  line: number;
}

interface Measured extends Site {
  lines: number;
}

test(`5. function-length: no function over ${MAX_FUNCTION_LINES} lines in product code`, () => {
  const problems: string[] = [];
  const found = new Map<string, Measured>();
  for (const f of files.filter((f) => !f.isTest)) {
    for (const fn of functionsOf(f)) {
      found.set(fn.key, fn);
      if (fn.lines > MAX_FUNCTION_LINES && !(fn.key in LONG_FUNCTIONS)) {
        problems.push(`${f.path}:${fn.line}: function-length: ${nameIn(fn.key)} is ${fn.lines} lines (limit ${MAX_FUNCTION_LINES}): split it`);
      }
    }
  }
  for (const key of Object.keys(LONG_FUNCTIONS)) {
    const fn = found.get(key);
    if (fn === undefined) problems.push(`${fileIn(key)}:1: stale entry in LONG_FUNCTIONS: no function ${nameIn(key)} any more; remove the entry`);
    else if (fn.lines <= MAX_FUNCTION_LINES) {
      problems.push(`${fileIn(key)}:${fn.line}: stale entry in LONG_FUNCTIONS: ${nameIn(key)} is ${fn.lines} lines now; remove the entry`);
    }
  }
  report(problems);
});

test("6. empty-catch: no catch block without a statement", () => {
  const problems: string[] = [];
  const found = new Set<string>();
  for (const f of files) {
    for (const c of emptyCatchesOf(f)) {
      found.add(c.key);
      if (!(c.key in EMPTY_CATCHES)) {
        problems.push(`${f.path}:${c.line}: empty-catch: in ${nameIn(c.key)}: handle the error, or say in EMPTY_CATCHES why ignoring it is right`);
      }
    }
  }
  for (const key of Object.keys(EMPTY_CATCHES)) {
    if (!found.has(key)) problems.push(`${fileIn(key)}:1: stale entry in EMPTY_CATCHES: no empty catch in ${nameIn(key)} any more; remove the entry`);
  }
  report(problems);
});

function fileIn(key: string): string {
  return key.slice(0, key.indexOf(": "));
}

function nameIn(key: string): string {
  return key.slice(key.indexOf(": ") + 2);
}

/** Every function with a body: its key ("file: Name", " #2" on a repeated name), first line and length in lines. */
function functionsOf(f: File): Measured[] {
  const out: Measured[] = [];
  const seen = new Map<string, number>();
  const visit = (node: ts.Node): void => {
    if (isMeasuredFunction(node)) {
      const first = lineOf(f.sf, node);
      const last = f.sf.getLineAndCharacterOfPosition(node.getEnd()).line + 1;
      out.push({ key: uniqueKey(f.path, qualifiedName(node), seen), line: first, lines: last - first + 1 });
    }
    ts.forEachChild(node, visit);
  };
  visit(f.sf);
  return out;
}

function emptyCatchesOf(f: File): Site[] {
  const out: Site[] = [];
  const seen = new Map<string, number>();
  const visit = (node: ts.Node): void => {
    if (ts.isCatchClause(node) && node.block.statements.length === 0) {
      const owner = enclosingFunction(node);
      out.push({ key: uniqueKey(f.path, owner ? qualifiedName(owner) : "<module>", seen), line: lineOf(f.sf, node) });
    }
    ts.forEachChild(node, visit);
  };
  visit(f.sf);
  return out;
}

function uniqueKey(path: string, name: string, seen: Map<string, number>): string {
  const n = (seen.get(name) ?? 0) + 1;
  seen.set(name, n);
  return `${path}: ${n === 1 ? name : `${name} #${n}`}`;
}

type FunctionNode = ts.FunctionLikeDeclaration & { body: ts.Node };

/** Declarations, methods, constructors, accessors, function expressions, and arrows with a block body. */
function isMeasuredFunction(node: ts.Node): node is FunctionNode {
  if (ts.isArrowFunction(node)) return ts.isBlock(node.body);
  const kinds = [ts.isFunctionDeclaration, ts.isFunctionExpression, ts.isMethodDeclaration, ts.isConstructorDeclaration, ts.isGetAccessor, ts.isSetAccessor];
  return kinds.some((is) => is(node)) && (node as ts.FunctionLikeDeclaration).body !== undefined;
}

function enclosingFunction(node: ts.Node): FunctionNode | undefined {
  for (let p = node.parent; p !== undefined; p = p.parent) if (isMeasuredFunction(p)) return p;
  return undefined;
}

/** A name that does not depend on line numbers: enclosing classes, functions and named object literals, joined by dots. */
function qualifiedName(fn: ts.Node): string {
  const parts: string[] = [];
  for (let n: ts.Node | undefined = fn; n !== undefined && !ts.isSourceFile(n); n = n.parent) {
    if (ts.isClassLike(n)) parts.unshift(n.name?.text ?? ownerName(n) ?? "<class>");
    else if (isMeasuredFunction(n) || ts.isArrowFunction(n)) parts.unshift(ownName(n));
    else if (ts.isObjectLiteralExpression(n) && ownerName(n) !== undefined) parts.unshift(ownerName(n)!);
  }
  return parts.join(".");
}

function ownName(fn: ts.FunctionLikeDeclaration): string {
  if (ts.isConstructorDeclaration(fn)) return "constructor";
  if (fn.name !== undefined) return propertyName(fn.name);
  return ownerName(fn) ?? "<anonymous>";
}

/** The name an unnamed function or object literal gets from where it stands: `const x =`, `x:`, or `f(...)` for an argument. */
function ownerName(node: ts.Node): string | undefined {
  const p = node.parent;
  if ((ts.isVariableDeclaration(p) || ts.isPropertyAssignment(p) || ts.isPropertyDeclaration(p)) && p.initializer === node) return propertyName(p.name);
  if (ts.isCallExpression(p) || ts.isNewExpression(p)) {
    const callee = ts.isPropertyAccessExpression(p.expression) ? p.expression.name.text : ts.isIdentifier(p.expression) ? p.expression.text : "<call>";
    return `${callee}(callback)`;
  }
  return undefined;
}

function propertyName(name: ts.Node): string {
  return ts.isIdentifier(name) || ts.isPrivateIdentifier(name) || ts.isStringLiteralLike(name) || ts.isNumericLiteral(name) ? name.text : name.getText();
}

// ---------------------------------------------------------------------------

/** Fails with every problem, one per line, sorted by file and line. */
function report(problems: string[]): void {
  const sorted = [...problems].sort((a, b) => a.localeCompare(b, "en", { numeric: true }));
  if (sorted.length > 0) throw new Error(`${sorted.length} house-rule problem(s):\n${sorted.join("\n")}`);
  expect(sorted).toEqual([]);
}
