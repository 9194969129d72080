// `etcdctl lease ...` and `put --lease` against tsetcd and against real etcd 3.4, side by side:
// the same script on both servers, outputs compared after normalize(). Lease ids differ between
// the servers (each generates its own), so every id a server handed out is replaced by <L1>,
// <L2>, ... in the order granted, in hex and in decimal; remaining TTLs are compared within a
// second of each other, because the two runs are not at the same instant.
//
// To check the harness itself: TSETCD_BINARY=/usr/bin/etcd.
import { describe, expect, test } from "bun:test";
import { etcdctl, normalize, type EtcdctlResult } from "./harness/etcdctl.ts";
import { type Member, sideBySide } from "./harness/server.ts";
import { ETCD_BIN, ETCDCTL_BIN, SUBJECT_BIN, requireTools } from "./harness/tools.ts";

/** One server's run of the script: what it printed, with its lease ids in grant order. */
class Run {
  readonly ids: bigint[] = [];
  readonly lines: string[] = [];
  constructor(readonly m: Member) {}

  /** Runs etcdctl; `$1`, `$2`.. in args are this server's first, second.. granted lease (hex). */
  async ctl(args: string[], opts: { timeoutMs?: number; sortLines?: boolean; uniqueLines?: boolean } = {}): Promise<EtcdctlResult> {
    const real = args.map((a) => a.replace(/\$(\d+)/g, (_, n) => this.ids[Number(n) - 1].toString(16)));
    const r = await etcdctl(this.m.clientUrl, real, { timeoutMs: opts.timeoutMs });
    for (const m of r.stdout.matchAll(/^lease ([0-9a-f]+) granted with TTL/gm)) this.ids.push(BigInt("0x" + m[1]));
    for (const m of r.stdout.matchAll(/"ID":(\d+),"TTL"/g)) if (args.includes("grant")) this.ids.push(BigInt(m[1]));
    let out = r.stdout;
    if (opts.uniqueLines) out = [...new Set(out.split("\n"))].join("\n");
    if (opts.sortLines) out = out.split("\n").sort().join("\n");
    // Only etcdctl's final error line: its zap retry warnings carry timings.
    const err = r.stderr
      .split("\n")
      .filter((l) => l.startsWith("Error:"))
      .join("\n");
    this.lines.push(`$ ${args.join(" ")}\n${out}${err ? `stderr: ${err}\n` : ""}exit ${r.timedOut ? "killed" : r.code}`);
    return r;
  }

  /** The transcript with ids replaced and remaining TTLs masked; the TTLs are returned apart. */
  transcript(): { text: string; remaining: number[] } {
    let text = this.lines.join("\n");
    this.ids.forEach((id, i) => {
      const hex = id.toString(16);
      text = text
        .replaceAll(hex.padStart(16, "0"), `<L${i + 1}>`)
        .replaceAll(hex, `<L${i + 1}>`)
        .replaceAll(id.toString(), `<L${i + 1}>`);
    });
    // etcd lists leases in Go map order (random): compare the JSON list as a set.
    text = text.replace(
      /"leases":\[([^\]]*)\]/g,
      (_, items: string) =>
        `"leases":[${items
          .split("},{")
          .map((x) => x.replace(/[{}]/g, ""))
          .sort()
          .map((x) => `{${x}}`)
          .join(",")}]`,
    );
    // Attached keys too come from a Go map in etcd.
    text = text.replace(/attached keys\(\[([^\]]*)\]\)/g, (_, ks: string) => `attached keys([${ks.split(" ").sort().join(" ")}])`);
    text = text.replace(/"keys":\[([^\]]*)\]/g, (_, ks: string) => `"keys":[${ks.split(",").sort().join(",")}]`);
    const remaining: number[] = [];
    text = text.replace(/remaining\((-?\d+)s\)|"ttl":(-?\d+)/g, (m, a, b) => {
      remaining.push(Number(a ?? b));
      return a !== undefined ? "remaining(<n>s)" : '"ttl":<n>';
    });
    return { text: normalize(text), remaining };
  }
}

/** The script: each step runs on one server; steps that wait do so on both at once. */
async function script(r: Run): Promise<void> {
  await r.ctl(["lease", "grant", "60"]); // $1
  await r.ctl(["lease", "grant", "1"]); // $2: raised to the minimum TTL (2 s with default timeouts)
  await r.ctl(["lease", "grant", "30", "-w", "json"]); // $3
  await r.ctl(["put", "--lease=$1", "k1", "v1"]);
  await r.ctl(["put", "--lease=$1", "k2", "v2"]);
  await r.ctl(["put", "--lease=$2", "short", "x"]);
  await r.ctl(["put", "--lease=$3", "k3", "v3"]);
  await r.ctl(["get", "--prefix", "k", "-w", "json"]);
  await r.ctl(["lease", "timetolive", "$1"]);
  await r.ctl(["lease", "timetolive", "--keys", "$1"]);
  await r.ctl(["lease", "timetolive", "--keys", "$1", "-w", "json"]);
  await r.ctl(["lease", "keep-alive", "--once", "$1"]);
  await r.ctl(["lease", "keep-alive", "--once", "$1", "-w", "json"]);
  await r.ctl(["lease", "list"], { sortLines: true });
  await r.ctl(["lease", "list", "-w", "json"]);
  // Keys move between leases and off them.
  await r.ctl(["put", "--lease=$3", "k2", "moved"]);
  await r.ctl(["put", "k3", "no-lease"]);
  await r.ctl(["lease", "timetolive", "--keys", "$1"]);
  await r.ctl(["lease", "timetolive", "--keys", "$3"]);
  // $2 (2 s) expires while `lease keep-alive` keeps $3 alive and prints each renewal.
  await r.ctl(["lease", "keep-alive", "$3"], { timeoutMs: 3500, uniqueLines: true });
  await r.ctl(["get", "short"]);
  await r.ctl(["lease", "timetolive", "$2"]);
  await r.ctl(["lease", "keep-alive", "--once", "$2"]);
  await r.ctl(["lease", "revoke", "$1"]);
  await r.ctl(["get", "--prefix", "k"]);
  await r.ctl(["lease", "revoke", "$1"]);
  await r.ctl(["lease", "revoke", "$3", "-w", "json"]);
  await r.ctl(["lease", "timetolive", "1234"]);
  await r.ctl(["lease", "timetolive", "1234", "-w", "json"]);
  await r.ctl(["lease", "keep-alive", "--once", "1234"]);
  await r.ctl(["put", "--lease=1234", "k", "v"]);
  await r.ctl(["lease", "grant", "9000000001"]);
  await r.ctl(["lease", "list"]);
  await r.ctl(["get", "--prefix", "", "--keys-only"]);
}

const ready = requireTools([ETCD_BIN, ETCDCTL_BIN, SUBJECT_BIN]);

describe.skipIf(!ready)(`etcdctl lease: ${SUBJECT_BIN} vs ${ETCD_BIN}`, () => {
  const pair = sideBySide("lease");

  test("the same script prints the same on both", async () => {
    const a = new Run(pair.ours);
    const b = new Run(pair.etcd);
    await Promise.all([script(a), script(b)]);
    const ta = a.transcript();
    const tb = b.transcript();
    if (process.env.LEASE_DEBUG) console.log(ta.text);
    expect(ta.text).toEqual(tb.text);
    expect(ta.remaining.length).toBe(tb.remaining.length);
    ta.remaining.forEach((n, i) => expect(Math.abs(n - tb.remaining[i])).toBeLessThanOrEqual(1));
    // Sanity: the script did grant and the expired lease is reported as such.
    expect(ta.text).toContain("lease <L2> already expired");
    expect(ta.text).toContain("lease <L1> revoked");
  }, 60_000);
});
