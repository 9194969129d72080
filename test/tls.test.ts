// Client TLS as etcd offers it: --auto-tls (a generated self-signed
// certificate) and --cert-file/--key-file with --client-cert-auth, driven by
// the real etcdctl over https (gRPC on HTTP/2 negotiated by ALPN) and curl
// over HTTP/1.1.
import { afterAll, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { startMember, type Member } from "./harness/server.ts";
import { etcdctl } from "./harness/etcdctl.ts";
import { ETCD_SRC_DIR } from "./harness/tools.ts";

const started: Member[] = [];
afterAll(async () => {
  for (const m of started) await m.stop();
});

async function tlsMember(args: string[]): Promise<Member> {
  // The harness picks the ports; switch the client URLs to https.
  const m = await startMember({ args, clientScheme: "https" });
  started.push(m);
  return m;
}

test("--auto-tls serves etcdctl over https with a generated certificate", async () => {
  const m = await tlsMember(["--auto-tls"]);
  const tls = ["--insecure-transport=false", "--insecure-skip-tls-verify"];
  expect((await etcdctl(m.clientUrl, [...tls, "put", "k", "v"])).stdout).toBe("OK\n");
  expect((await etcdctl(m.clientUrl, [...tls, "get", "k", "--print-value-only"])).stdout).toBe("v\n");
  expect(existsSync(join(m.dataDir, "fixtures", "client", "cert.pem"))).toBe(true);
}, 30_000);

const FIXTURES = join(ETCD_SRC_DIR, "integration", "fixtures");
const haveFixtures = existsSync(join(FIXTURES, "server.crt"));

test.skipIf(!haveFixtures && process.env.CI !== "true")(
  "--client-cert-auth refuses a client without a certificate",
  async () => {
    const f = (name: string) => join(FIXTURES, name);
    const m = await tlsMember([
      `--cert-file=${f("server.crt")}`,
      `--key-file=${f("server.key.insecure")}`,
      `--trusted-ca-file=${f("ca.crt")}`,
      "--client-cert-auth",
    ]);
    const withCert = ["--cacert", f("ca.crt"), "--cert", f("server.crt"), "--key", f("server.key.insecure")];
    expect((await etcdctl(m.clientUrl, [...withCert, "put", "k", "v"])).stdout).toBe("OK\n");
    const without = await etcdctl(m.clientUrl, ["--cacert", f("ca.crt"), "--command-timeout=2s", "get", "k"], { timeoutMs: 15_000 });
    expect(without.code).not.toBe(0);
    const version = Bun.spawnSync([
      "curl",
      "-s",
      "--cacert",
      f("ca.crt"),
      "--cert",
      f("server.crt"),
      "--key",
      f("server.key.insecure"),
      `${m.clientUrl}/version`,
    ]);
    expect(JSON.parse(version.stdout.toString()).etcdserver).toMatch(/^3\.5\./);
  },
  30_000,
);
