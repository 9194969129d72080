// `etcdctl watch` against tsetcd and against real etcd, side by side: each case starts the
// same watch on both servers, makes the same writes on both while it runs, kills the watch
// after a while and compares what it printed (after normalize()).
//
// Cases share state (revisions depend on earlier writes): keep the order.
// To check the harness itself: TSETCD_BINARY=/usr/bin/etcd.
import { describe, expect, test } from "bun:test";
import { etcdctl, normalize } from "./harness/etcdctl.ts";
import { sideBySide } from "./harness/server.ts";
import { ETCD_BIN, ETCDCTL_BIN, SUBJECT_BIN, requireTools } from "./harness/tools.ts";

interface Case {
  name: string;
  /** etcdctl watch arguments (after `watch`). */
  args: string[];
  /** Lines typed into `watch -i` (stdin is kept open). */
  interactive?: string[];
  /** etcdctl commands run, in order, once the watch is established. */
  writes: string[][];
}

const CASES: Case[] = [
  {
    name: "single key",
    args: ["wk"],
    writes: [
      ["put", "wk", "1"],
      ["put", "wk-other", "x"],
      ["put", "wk", "2"],
      ["del", "wk"],
    ],
  },
  {
    name: "prefix",
    args: ["--prefix", "wp/"],
    writes: [
      ["put", "wp/a", "1"],
      ["put", "wp/b", "2"],
      ["put", "wq", "no"],
      ["del", "--prefix", "wp/"],
    ],
  },
  {
    name: "range",
    args: ["wr1", "wr5"],
    writes: [
      ["put", "wr2", "in"],
      ["put", "wr9", "out"],
      ["put", "wr1", "in"],
      ["put", "wr5", "out"],
    ],
  },
  { name: "--rev replays history", args: ["--rev=1", "--prefix", "w"], writes: [] },
  { name: "--rev then live", args: ["--rev=3", "wk"], writes: [["put", "wk", "3"]] },
  {
    name: "--prev-kv",
    args: ["--prev-kv", "wk"],
    writes: [
      ["put", "wk", "4"],
      ["put", "wk", "5"],
      ["del", "wk"],
    ],
  },
  { name: "--prev-kv replayed", args: ["--prev-kv", "--rev=2", "wk"], writes: [] },
  {
    name: "from key (--from-key)",
    args: ["--from-key", "wz"],
    writes: [
      ["put", "wz", "1"],
      ["put", "wy", "no"],
      ["put", "wzz", "2"],
    ],
  },
  {
    name: "interactive, several watches",
    args: ["-i"],
    interactive: ["watch wi1", "watch --prefix wj/", "watch --prev-kv wi2"],
    writes: [
      ["put", "wi1", "a"],
      ["put", "wj/x", "b"],
      ["put", "wi2", "c"],
      ["put", "wi2", "d"],
      ["del", "wi1"],
    ],
  },
  { name: "compacted revision", args: ["--rev=2", "wk"], writes: [] },
];

const WATCH_SETTLE_MS = 1000;
const AFTER_WRITES_MS = 1000;

/** Runs `etcdctl watch ...` until killed, typing `lines` (stdin left open) and doing `writes` meanwhile. */
async function watchWhile(endpoint: string, c: Case): Promise<string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith("ETCDCTL_")) env[k] = v;
  env.ETCDCTL_API = "3";
  const proc = Bun.spawn([ETCDCTL_BIN, `--endpoints=${endpoint}`, "watch", ...c.args], { env, stdin: "pipe", stdout: "pipe", stderr: "pipe" });
  const sink = proc.stdin as import("bun").FileSink;
  for (const l of c.interactive ?? []) sink.write(`${l}\n`);
  sink.flush();
  const out = Promise.all([new Response(proc.stdout as ReadableStream).text(), new Response(proc.stderr as ReadableStream).text()]);
  await Bun.sleep(WATCH_SETTLE_MS);
  for (const w of c.writes) {
    const r = await etcdctl(endpoint, w);
    if (r.code !== 0) throw new Error(`${w.join(" ")}: ${r.stderr}`);
  }
  await Bun.sleep(AFTER_WRITES_MS);
  proc.kill("SIGKILL");
  const [stdout, stderr] = await out;
  await proc.exited;
  return `${stdout}\n--- stderr ---\n${stderr}`;
}

const ready = requireTools([ETCD_BIN, ETCDCTL_BIN, SUBJECT_BIN]);

describe.skipIf(!ready)(`etcdctl watch: ${SUBJECT_BIN} vs ${ETCD_BIN}`, () => {
  const pair = sideBySide("watch");

  for (const c of CASES) {
    test(
      c.name,
      async () => {
        if (c.name === "compacted revision") {
          for (const m of [pair.ours, pair.etcd]) {
            const r = await etcdctl(m.clientUrl, ["compaction", "5"]);
            expect(r.code).toBe(0);
          }
        }
        const [a, b] = await Promise.all([watchWhile(pair.ours.clientUrl, c), watchWhile(pair.etcd.clientUrl, c)]);
        if (process.env.WATCH_DEBUG) console.log(`== ${c.name}\n${a}`);
        expect(normalize(b)).not.toBe(normalize("\n--- stderr ---\n"));
        expect(normalize(a)).toEqual(normalize(b));
      },
      20_000,
    );
  }
});
