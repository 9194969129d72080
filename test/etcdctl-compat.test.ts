// etcdctl against tsetcd and against real etcd, side by side: the same commands, in the same
// order, on two fresh servers must print the same thing (after normalize() masks ids, terms,
// sizes, versions, ports and timings) and exit with the same code.
//
// The commands form one script over shared state: revisions in later cases depend on the
// writes of earlier ones, so keep the order and add new cases where their state fits.
// To check the harness itself, run both sides on real etcd: TSETCD_BINARY=/usr/bin/etcd.
import { describe, expect, test } from "bun:test";
import { etcdctl, normalize } from "./harness/etcdctl.ts";
import { sideBySide } from "./harness/server.ts";
import { ETCD_BIN, ETCDCTL_BIN, SUBJECT_BIN, requireTools } from "./harness/tools.ts";

interface Case {
  /** etcdctl arguments after --endpoints. */
  args: string[];
  /** stdin (txn). */
  stdin?: string;
  /**
   * Exit code real etcd must give (default 0). Checked so that a script gone wrong (say, both
   * servers unreachable) cannot pass by both sides failing the same way.
   */
  code?: number;
}

const TXN_SUCCESS = [
  'value("foo") = "bar2"',
  'version("foo") > "1"',
  'create("foo") = "2"',
  'mod("foo") < "100"',
  "",
  "put txn-ok yes",
  "get foo",
  "",
  "put txn-failed yes",
  "",
  "",
].join("\n");

const TXN_FAILURE = [
  'value("foo") != "bar2"',
  'version("missing") = "0"',
  "",
  "put txn-ok no",
  "",
  "put txn-failed yes",
  "get txn-failed",
  "del txn-ok",
  "",
  "",
].join("\n");

const TXN_DELETE_PREFIX = ['create("txn-ok") > "0"', "", "del --prefix txn-", "", "", ""].join("\n");

const TXN_MALFORMED = ['value("foo") =', "", "", ""].join("\n");

// One line per case; comments say what state a group leaves behind.
const CASES: Case[] = [
  // ---- put ----
  { args: ["put", "foo", "bar"] },
  { args: ["put", "foo", "bar2", "--prev-kv"] },
  { args: ["put", "foo", "--ignore-value"] }, // rewrites foo with its current value
  { args: ["put", "foo", "x", "--ignore-value"], code: 128 }, // a value with --ignore-value: usage error
  { args: ["put", "foo"], code: 128 },
  { args: ["put"], code: 128 },
  { args: ["put", "foo", "bar2", "--prev-kv", "-w", "json"] },
  { args: ["put", "foo", "bar2", "-w", "fields"] },
  { args: ["put", "a", "1"] },
  { args: ["put", "ab", "2"] },
  { args: ["put", "abc", "3"] },
  { args: ["put", "b", "4"] },
  { args: ["put", "c", "5"] },
  { args: ["put", "ab", "22"] },
  { args: ["put", "spaced key", "a value with spaces"] },
  { args: ["put", "multi", "line1\nline2"] },
  { args: ["put", "--", "-dash", "-value"] },
  { args: ["put", "", "empty-key"], code: 1 },
  // ---- get ----
  { args: ["get", "foo"] },
  { args: ["get", "missing"] },
  { args: ["get", "a", "--prefix"] },
  { args: ["get", "a", "--from-key"] },
  { args: ["get", "ab", "c"] }, // range [ab, c)
  { args: ["get", "a", "--prefix", "--limit=2"] },
  { args: ["get", "a", "--prefix", "--limit=2", "-w", "json"] },
  { args: ["get", "foo", "--rev=2"] },
  { args: ["get", "foo", "--rev=3", "-w", "json"] },
  { args: ["get", "a", "--prefix", "--keys-only"] },
  { args: ["get", "a", "--prefix", "--print-value-only"] },
  { args: ["get", "a", "--prefix", "--count-only"], code: 1 }, // a 3.5 flag: etcdctl 3.4.23 rejects it
  { args: ["get", "a", "--prefix", "--order=DESCEND"] },
  { args: ["get", "a", "--prefix", "--order=ASCEND", "--sort-by=MODIFY"] },
  { args: ["get", "a", "--prefix", "--order=DESCEND", "--sort-by=MODIFY"] },
  { args: ["get", "a", "--prefix", "--order=DESCEND", "--sort-by=CREATE"] },
  { args: ["get", "a", "--prefix", "--order=DESCEND", "--sort-by=VERSION"] },
  { args: ["get", "a", "--prefix", "--order=DESCEND", "--sort-by=VALUE"] },
  { args: ["get", "a", "--prefix", "--order=DESCEND", "--sort-by=KEY"] },
  { args: ["get", "", "--from-key", "--order=DESCEND", "--sort-by=VALUE", "--limit=3"] },
  { args: ["get", "a", "--prefix", "--sort-by=NOPE"], code: 4 },
  { args: ["get", "foo", "-w", "simple"] },
  { args: ["get", "foo", "-w", "json"] },
  { args: ["get", "foo", "-w", "fields"] },
  { args: ["get", "foo", "-w", "table"], code: 4 }, // "table not supported"
  { args: ["get", "a", "--prefix", "-w", "fields"] },
  { args: ["get", "spaced key"] },
  { args: ["get", "multi", "-w", "json"] },
  { args: ["get", "--", "-dash"] },
  { args: ["get", ""], code: 1 }, // empty key
  { args: ["get", "", "--prefix", "--keys-only"] }, // every key
  { args: ["get", "foo", "--rev=100000"], code: 1 }, // future revision
  { args: ["get"], code: 128 },
  // ---- txn (interactive stdin form) ----
  { args: ["txn"], stdin: TXN_SUCCESS },
  { args: ["txn"], stdin: TXN_FAILURE },
  { args: ["txn", "-w", "json"], stdin: TXN_SUCCESS },
  { args: ["txn", "-w", "json"], stdin: TXN_FAILURE },
  { args: ["txn", "-w", "fields"], stdin: TXN_FAILURE },
  { args: ["txn", "--interactive"], stdin: TXN_SUCCESS },
  { args: ["txn"], stdin: TXN_DELETE_PREFIX },
  { args: ["txn"], stdin: TXN_MALFORMED, code: 3 },
  { args: ["get", "txn", "--prefix"] },
  // ---- del ----
  { args: ["del", "b"] },
  { args: ["del", "b"] }, // already gone: 0
  { args: ["del", "a", "--prefix", "--prev-kv"] },
  { args: ["del", "c", "--from-key", "--prev-kv", "-w", "json"] },
  { args: ["get", "", "--from-key"] },
  { args: ["del", ""], code: 1 },
  // ---- compaction ----
  { args: ["put", "foo", "after-del"] },
  { args: ["get", "foo", "--rev=4"] },
  { args: ["compaction", "5"] },
  { args: ["get", "foo", "--rev=4"], code: 1 }, // compacted
  { args: ["get", "foo", "--rev=5"] }, // the compaction revision itself stays readable
  { args: ["compaction", "5"], code: 1 }, // already compacted
  { args: ["compaction", "100000"], code: 1 }, // future
  { args: ["compaction", "--physical", "8"] },
  { args: ["compaction", "abc"], code: 1 },
  { args: ["get", "foo", "-w", "json"] },
  // ---- endpoint ----
  { args: ["endpoint", "status"] },
  { args: ["endpoint", "status", "-w", "table"] },
  { args: ["endpoint", "status", "-w", "json"] },
  { args: ["endpoint", "status", "-w", "fields"] },
  { args: ["defrag"] },
  { args: ["endpoint", "health"] },
  { args: ["endpoint", "health", "-w", "json"] },
  { args: ["endpoint", "health", "-w", "table"] },
];

function label(c: Case): string {
  const line = `etcdctl ${c.args.map((a) => (/^[\w=.,/-]+$/.test(a) ? a : JSON.stringify(a))).join(" ")}`;
  return c.stdin === undefined ? line : `${line} <<< ${JSON.stringify(c.stdin)}`;
}

const ready = requireTools([ETCD_BIN, ETCDCTL_BIN, SUBJECT_BIN]);

describe.skipIf(!ready)(`etcdctl output: ${SUBJECT_BIN} vs ${ETCD_BIN}`, () => {
  const pair = sideBySide("compat");

  for (const c of CASES) {
    test(
      label(c),
      async () => {
        const opts = c.stdin === undefined ? {} : { stdin: c.stdin };
        const [a, b] = await Promise.all([etcdctl(pair.ours.clientUrl, c.args, opts), etcdctl(pair.etcd.clientUrl, c.args, opts)]);
        const view = (r: typeof a) => ({ code: r.code, stdout: normalize(r.stdout), stderr: normalize(r.stderr) });
        expect({ etcd: b.code }).toEqual({ etcd: c.code ?? 0 });
        expect(view(a)).toEqual(view(b));
      },
      20_000,
    );
  }
});
