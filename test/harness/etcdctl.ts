// Run the real etcdctl against a member, and make its output comparable across servers.
//
// Two servers legitimately differ in cluster/member ids, raft terms, db sizes, version strings,
// ports and timings; normalize() masks exactly those so that everything else etcdctl prints
// (revisions, keys, values, counts, error texts, exit codes) must match byte for byte.
import { ETCDCTL_BIN } from "./tools.ts";

const DEFAULT_TIMEOUT_MS = 15_000;
/** Exit code reported when the harness had to kill etcdctl, as coreutils' timeout(1) does. */
export const TIMEOUT_EXIT_CODE = 124;

export interface EtcdctlOptions {
  /** Written to etcdctl's stdin, which is then closed (e.g. `txn` in interactive form). */
  stdin?: string;
  /** Added to the environment (inherited ETCDCTL_* variables are dropped first). */
  env?: Record<string, string | undefined>;
  /** ETCDCTL_API; default 3. */
  api?: 2 | 3;
  /** Kill etcdctl after this long (default 15 s); `watch` output can be collected this way. */
  timeoutMs?: number;
}

export interface EtcdctlResult {
  stdout: string;
  stderr: string;
  code: number;
  /** The harness killed it at timeoutMs; code is then TIMEOUT_EXIT_CODE. */
  timedOut: boolean;
}

/** Run `etcdctl --endpoints=ENDPOINT ...args`. */
export async function etcdctl(endpoint: string | string[], args: string[], opts: EtcdctlOptions = {}): Promise<EtcdctlResult> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    // A developer's ETCDCTL_USER / ETCDCTL_CACERT ... would change what every command prints.
    if (v !== undefined && !k.startsWith("ETCDCTL_")) env[k] = v;
  }
  env.ETCDCTL_API = String(opts.api ?? 3);
  for (const [k, v] of Object.entries(opts.env ?? {})) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  const endpoints = Array.isArray(endpoint) ? endpoint.join(",") : endpoint;
  // Global flags first: etcdctl v2 (urfave/cli) only accepts them before the command.
  const proc = Bun.spawn([ETCDCTL_BIN, `--endpoints=${endpoints}`, ...args], {
    env,
    stdin: opts.stdin === undefined ? "ignore" : "pipe",
    stdout: "pipe",
    stderr: "pipe",
  });
  if (opts.stdin !== undefined) {
    const sink = proc.stdin as import("bun").FileSink;
    sink.write(opts.stdin);
    await sink.end();
  }
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    proc.kill("SIGKILL");
  }, opts.timeoutMs ?? DEFAULT_TIMEOUT_MS);
  const [stdout, stderr] = await Promise.all([new Response(proc.stdout as ReadableStream).text(), new Response(proc.stderr as ReadableStream).text()]);
  await proc.exited;
  clearTimeout(timer);
  return { stdout, stderr, code: timedOut ? TIMEOUT_EXIT_CODE : (proc.exitCode ?? 128), timedOut };
}

// ---- normalize -----------------------------------------------------------------------------

/** Table columns whose values depend on the server, not on the commands run. */
const MASKED_COLUMNS = new Set(["ID", "VERSION", "DB SIZE", "RAFT TERM", "TOOK"]);

/**
 * etcdctl draws tables with column widths fitted to the content, so masking one cell would
 * shift every border. Rewrite each table as `| cell | cell |` rows with trimmed cells, one fixed
 * border, and the server-dependent columns (by header name) masked.
 */
function normalizeTables(text: string): string {
  let inTable = false;
  let header: string[] | null = null;
  return text
    .split("\n")
    .map((line) => {
      if (/^\+[-+]+\+$/.test(line)) {
        if (!inTable) header = null;
        inTable = true;
        return "+---+";
      }
      if (inTable && line.startsWith("|") && line.endsWith("|")) {
        const cells = line
          .slice(1, -1)
          .split("|")
          .map((c) => c.trim());
        if (header === null) header = cells;
        else {
          const names = header;
          cells.forEach((c, i) => {
            if (c !== "" && MASKED_COLUMNS.has(names[i] ?? "")) cells[i] = `<${names[i]}>`;
          });
        }
        return `| ${cells.join(" | ")} |`;
      }
      inTable = false;
      return line;
    })
    .join("\n");
}

const RULES: Array<[RegExp, string]> = [
  // Ports differ between the two servers; this also neutralises widths in simple output.
  [/\b127\.0\.0\.1:\d+/g, "127.0.0.1:<port>"],
  // etcdctl's own zap warnings on stderr: timestamp and a per-run client uuid.
  [/"ts":"[^"]*"/g, '"ts":"<ts>"'],
  [/endpoint:\/\/client-[0-9a-f-]+\//g, "endpoint://client-<uuid>/"],
  // -w json: ids, terms and sizes (numbers); "version" only when it is a string, because a
  // key's version is a number and must be compared.
  [/"(cluster_id|member_id|raft_term|leader|raftTerm|dbSize|dbSizeInUse|ID)":\d+/g, '"$1":"<$1>"'],
  [/"version":"[^"]*"/g, '"version":"<version>"'],
  [/"took":"[^"]*"/g, '"took":"<took>"'],
  // -w fields: the same facts with Go field names.
  [/^"(ClusterID|MemberID|RaftTerm|Leader|DBSize|DBSizeInUse|ID)" : \d+$/gm, '"$1" : <$1>'],
  [/^"Version" : "[^"]*"$/gm, '"Version" : "<Version>"'],
  // simple `endpoint status`: ENDPOINT, ID, VERSION, DB SIZE, IS LEADER, IS LEARNER, RAFT TERM, ...
  [/^(\S+), [0-9a-f]+, [^,]+, [^,]+, (true|false), (true|false), \d+, /gm, "$1, <ID>, <VERSION>, <DB SIZE>, $2, $3, <RAFT TERM>, "],
  // simple `endpoint health`
  [/(is (?:un)?healthy: .*took = )\S+/g, "$1<took>"],
];

/** Mask server-specific ids, terms, sizes, versions, ports and timings; keep everything else. */
export function normalize(text: string): string {
  let out = normalizeTables(text);
  for (const [pattern, replacement] of RULES) out = out.replace(pattern, replacement);
  return out;
}
