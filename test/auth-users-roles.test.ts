// etcdctl user and role management (auth NOT enabled) against tsetcd and against real etcd 3.4,
// side by side: one script of `etcdctl user ...` / `etcdctl role ...` runs on two fresh
// servers, and every step must give the same stdout, stderr and exit code. Plain output only:
// it carries no ids or revisions, so nothing is masked beyond what normalize() masks (ports,
// timestamps and client uuids in etcdctl's own warnings). etcdctl 3.4 has no `auth status`.
//
// To check the test itself, run both sides on real etcd: TSETCD_BINARY=/usr/bin/etcd.
// AUTH_DEBUG=1 prints real etcd's transcript.
import { describe, expect, test } from "bun:test";
import { etcdctl, normalize } from "./harness/etcdctl.ts";
import { type Member, sideBySide } from "./harness/server.ts";
import { ETCD_BIN, ETCDCTL_BIN, SUBJECT_BIN, requireTools } from "./harness/tools.ts";

interface Step {
  args: string[];
  /** Written to stdin (passwords with --interactive=false). */
  stdin?: string;
}

const S = (args: string, stdin?: string): Step => ({ args: args.split(" "), stdin });

// One shared state: later steps depend on earlier ones, so keep the order.
const SCRIPT: Step[] = [
  // ---- users ----
  S("user list"),
  S("user add alice --interactive=false", "secret\n"),
  S("user add bob:bobpw"),
  S("user add carol --new-user-password=carolpw"),
  S("user add dave --no-password"),
  S("user add alice:other"),
  S("user add alice --interactive=false", "again\n"),
  { args: ["user", "add", "", "--interactive=false"], stdin: "pw\n" },
  S("user add :pw"),
  S("user list"),
  S("user get alice"),
  S("user get nobody"),
  S("user get alice --detail"),
  // ---- roles ----
  S("role list"),
  S("role add reader"),
  S("role add writer"),
  S("role add admin"),
  S("role add reader"),
  { args: ["role", "add", ""] },
  S("role list"),
  S("role get reader"),
  S("role get nobody"),
  // ---- grant-permission ----
  S("role grant-permission reader read foo"),
  S("role grant-permission reader write bar"),
  S("role grant-permission reader readwrite baz"),
  S("role grant-permission reader read foo zoo"),
  S("role grant-permission reader write --prefix pre/"),
  S("role grant-permission reader readwrite --from-key k1"),
  S("role get reader"),
  S("role grant-permission reader write foo"),
  S("role grant-permission reader readwrite foo zoo"),
  S("role get reader"),
  // Not here: an empty or backwards range ("zoo foo", "same same"). etcd 3.4 stores it; etcd 3.5
  // refuses it with "invalid auth management", as tsetcd does (src/auth/store.test.ts).
  S("role grant-permission reader badtype foo"),
  S("role grant-permission nobody read foo"),
  S("role grant-permission writer readwrite --prefix app/"),
  S("role get reader"),
  S("role get writer"),
  // ---- revoke-permission ----
  S("role revoke-permission reader bar"),
  S("role revoke-permission reader foo zoo"),
  S("role revoke-permission reader --prefix pre/"),
  S("role revoke-permission reader --from-key k1"),
  S("role revoke-permission reader never-granted"),
  S("role revoke-permission reader foo"),
  S("role revoke-permission reader foo"),
  S("role revoke-permission nobody foo"),
  S("role get reader"),
  // ---- grant-role / revoke-role ----
  S("user grant-role alice reader"),
  S("user grant-role alice writer"),
  S("user grant-role bob writer"),
  S("user grant-role alice nobody"),
  S("user grant-role nobody reader"),
  S("user grant-role carol root"),
  S("user grant-role alice reader"),
  S("user get alice"),
  S("user get alice --detail"),
  S("user get carol"),
  S("user get carol --detail"),
  S("role list"),
  S("user revoke-role alice writer"),
  S("user revoke-role alice writer"),
  S("user revoke-role alice nobody"),
  S("user revoke-role nobody reader"),
  S("user get alice"),
  // ---- passwd ----
  S("user passwd alice --interactive=false", "newsecret\n"),
  S("user passwd nobody --interactive=false", "pw\n"),
  S("user get alice"),
  // ---- role delete ----
  S("role delete writer"),
  S("role delete writer"),
  S("role delete nobody"),
  S("role list"),
  S("user get bob"),
  S("user get bob --detail"),
  S("role delete reader"),
  S("user get alice"),
  // ---- user delete ----
  S("user delete bob"),
  S("user delete bob"),
  S("user delete nobody"),
  S("user list"),
  S("role list"),
];

interface Result {
  args: string[];
  code: number;
  stdout: string;
  stderr: string;
}

/** Run the script on one member, step by step. */
async function run(m: Member): Promise<Result[]> {
  const out: Result[] = [];
  for (const step of SCRIPT) {
    const r = await etcdctl(m.clientUrl, step.args, { stdin: step.stdin, timeoutMs: 10_000 });
    out.push({ args: step.args, code: r.code, stdout: normalize(r.stdout), stderr: normalize(r.stderr) });
  }
  return out;
}

const ready = requireTools([ETCD_BIN, ETCDCTL_BIN, SUBJECT_BIN]);

describe.skipIf(!ready)(`etcdctl user/role: ${SUBJECT_BIN} vs ${ETCD_BIN}`, () => {
  const pair = sideBySide("auth");

  test("the same script prints the same on both", async () => {
    const [a, b] = await Promise.all([run(pair.ours), run(pair.etcd)]);
    if (process.env.AUTH_DEBUG) {
      for (const r of b) console.log(`$ etcdctl ${r.args.join(" ")}\n${r.stdout}${r.stderr ? `[stderr] ${r.stderr}` : ""}[exit ${r.code}]`);
    }
    // Sanity, so a script gone wrong (say, both servers unreachable) cannot pass.
    expect(b.filter((r) => r.code === 0).length).toBeGreaterThan(40);
    expect(b.some((r) => r.stdout.includes("User alice created"))).toBe(true);
    expect(a).toEqual(b);
  }, 90_000);
});
