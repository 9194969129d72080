import { afterEach, beforeAll, describe, expect, test } from "bun:test";
import { X509Certificate } from "node:crypto";
import { readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { generateSelfSignedCert } from "../api/tls.js";
import { peerRequest, PeerRequestError } from "../transport/transport.js";
import { startNode, tempDir, type TestNode } from "../transport/test-support.js";
import { peerTlsOptions, type PeerTlsConfig } from "./peer-tls.js";

const quiet = { warn: () => {}, info: () => {} };
const nodes: TestNode[] = [];
afterEach(async () => {
  await Promise.all(nodes.splice(0).map((n) => n.t.stop()));
});

const base = (over: Partial<PeerTlsConfig> = {}): PeerTlsConfig => ({
  peerCertFile: "",
  peerKeyFile: "",
  peerTrustedCaFile: "",
  peerClientCertAuth: false,
  peerAutoTls: false,
  peerClientCertFile: "",
  peerClientKeyFile: "",
  peerCertAllowedCn: [],
  selfSignedCertValidity: 1,
  dataDir: tempDir("tsetcd-peer-tls-"),
  listenPeerUrls: ["https://127.0.0.1:2380"],
  ...over,
});

let dir: string;
const files: Record<string, { cert: string; key: string }> = {};
beforeAll(async () => {
  dir = tempDir("tsetcd-peer-certs-");
  for (const cn of ["member", "client", "stranger"]) {
    const p = await generateSelfSignedCert({ hosts: [], commonName: cn, ca: true, notBefore: new Date(Date.now() - 60_000), validityMs: 86_400_000 });
    writeFileSync(join(dir, `${cn}.pem`), p.cert);
    writeFileSync(join(dir, `${cn}-key.pem`), p.key);
    files[cn] = { cert: join(dir, `${cn}.pem`), key: join(dir, `${cn}-key.pem`) };
  }
  writeFileSync(join(dir, "ca.pem"), readFileSync(files.member.cert, "utf8") + readFileSync(files.client.cert, "utf8"));
});

describe("peerTlsOptions", () => {
  test("nothing configured → undefined; a CA alone → client-only verification", async () => {
    expect(await peerTlsOptions(base(), quiet)).toBeUndefined();
    const o = await peerTlsOptions(base({ peerTrustedCaFile: join(dir, "ca.pem") }), quiet);
    expect(o?.server).toBeUndefined();
    expect(o?.client?.rejectUnauthorized).toBe(true);
  });

  test("--peer-auto-tls generates (then reuses) a certificate under <data-dir>/fixtures/peer", async () => {
    const cfg = base({ peerAutoTls: true, peerClientCertAuth: true, listenPeerUrls: ["https://peer.example:2380", "https://10.1.2.3:2380"] });
    const o = await peerTlsOptions(cfg, quiet);
    const certFile = join(cfg.dataDir, "fixtures", "peer", "cert.pem");
    const pem = readFileSync(certFile, "utf8");
    expect(o?.server?.cert?.toString()).toBe(pem);
    expect(statSync(join(cfg.dataDir, "fixtures", "peer", "key.pem")).mode & 0o777).toBe(0o600);
    const san = new X509Certificate(pem).subjectAltName ?? "";
    expect(san).toContain("DNS:peer.example");
    expect(san).toContain("IP Address:10.1.2.3");
    // As etcd: the generated setup does not verify peers, nor ask for client certificates.
    expect(o?.server?.requestCert).toBe(false);
    expect(o?.client?.rejectUnauthorized).toBe(false);
    const again = await peerTlsOptions(cfg, quiet);
    expect(again?.server?.cert?.toString()).toBe(pem);
  });

  test("auto TLS is ignored when cert files are given", async () => {
    const warnings: string[] = [];
    const o = await peerTlsOptions(base({ peerAutoTls: true, peerCertFile: files.member.cert, peerKeyFile: files.member.key }), {
      info: () => {},
      warn: (m) => warnings.push(m),
    });
    expect(warnings).toContain("ignoring peer auto TLS since certs given");
    expect(o?.server?.cert?.toString()).toBe(readFileSync(files.member.cert, "utf8"));
    expect(o?.client?.rejectUnauthorized).toBe(true);
  });

  test("cert files, CA, client-cert-auth, separate client identity, allowed CN", async () => {
    const o = await peerTlsOptions(
      base({
        peerCertFile: files.member.cert,
        peerKeyFile: files.member.key,
        peerTrustedCaFile: join(dir, "ca.pem"),
        peerClientCertAuth: true,
        peerClientCertFile: files.client.cert,
        peerClientKeyFile: files.client.key,
        peerCertAllowedCn: ["client"],
      }),
      quiet,
    );
    expect(o?.server?.requestCert).toBe(true);
    expect(o?.server?.rejectUnauthorized).toBe(true);
    expect(o?.client?.cert?.toString()).toBe(readFileSync(files.client.cert, "utf8"));
    expect(o?.allowedCn).toEqual(["client"]);
    // etcd 3.4: a trusted CA alone already requires client certificates.
    const caOnly = await peerTlsOptions(
      base({ peerCertFile: files.member.cert, peerKeyFile: files.member.key, peerTrustedCaFile: join(dir, "ca.pem") }),
      quiet,
    );
    expect(caOnly?.server?.requestCert).toBe(true);
    const plain = await peerTlsOptions(base({ peerCertFile: files.member.cert, peerKeyFile: files.member.key }), quiet);
    expect(plain?.server?.requestCert).toBe(false);
  });

  test("user errors carry etcd's texts", async () => {
    await expect(peerTlsOptions(base({ peerCertFile: files.member.cert }), quiet)).rejects.toThrow(
      `KeyFile and CertFile must both be present[key: , cert: ${files.member.cert}]`,
    );
    await expect(peerTlsOptions(base({ peerCertFile: "/nonexistent/c.pem", peerKeyFile: files.member.key }), quiet)).rejects.toThrow(
      "open /nonexistent/c.pem: no such file or directory",
    );
    await expect(peerTlsOptions(base({ peerCertFile: files.member.cert, peerKeyFile: files.stranger.key }), quiet)).rejects.toThrow(
      "tls: private key does not match public key",
    );
    await expect(peerTlsOptions(base({ peerCertFile: files.member.key, peerKeyFile: files.member.key }), quiet)).rejects.toThrow(
      "tls: failed to find any PEM data in certificate input",
    );
    await expect(
      peerTlsOptions(base({ peerCertFile: files.member.cert, peerKeyFile: files.member.key, peerClientCertFile: files.client.cert }), quiet),
    ).rejects.toThrow("ClientKeyFile and ClientCertFile must both be present or both absent");
    await expect(
      peerTlsOptions(base({ peerCertFile: files.member.cert, peerKeyFile: files.member.key, peerTrustedCaFile: "/nonexistent/ca.pem" }), quiet),
    ).rejects.toThrow("open /nonexistent/ca.pem: no such file or directory");
  });
});

describe("peerTlsOptions on the wire", () => {
  async function serve(tls: Awaited<ReturnType<typeof peerTlsOptions>>): Promise<TestNode> {
    const n = await startNode(BigInt(nodes.length + 1), { tls, onPeerRequest: () => ({ status: 200, body: "ok" }) }, undefined, "https");
    nodes.push(n);
    return n;
  }

  test("two auto-TLS members talk without verifying each other", async () => {
    const a = await peerTlsOptions(base({ peerAutoTls: true }), quiet);
    const b = await peerTlsOptions(base({ peerAutoTls: true }), quiet);
    const server = await serve(a);
    expect((await peerRequest([server.url], "/members", { timeoutMs: 2000, tls: b!.client })).status).toBe(200);
  });

  test("client-cert-auth with allowed CN: the separate client identity gets in, a stranger does not", async () => {
    const cfg = {
      peerCertFile: files.member.cert,
      peerKeyFile: files.member.key,
      peerTrustedCaFile: join(dir, "ca.pem"),
      peerClientCertAuth: true,
      peerCertAllowedCn: ["client"],
    };
    const server = await serve(await peerTlsOptions(base(cfg), quiet));
    const asClient = await peerTlsOptions(base({ ...cfg, peerClientCertFile: files.client.cert, peerClientKeyFile: files.client.key }), quiet);
    expect((await peerRequest([server.url], "/members", { timeoutMs: 2000, tls: asClient!.client })).status).toBe(200);
    // The member's own certificate is trusted by the CA but its CN is "member": refused.
    const asMember = await peerTlsOptions(base(cfg), quiet);
    await expect(peerRequest([server.url], "/members", { timeoutMs: 2000, tls: asMember!.client })).rejects.toBeInstanceOf(PeerRequestError);
  });
});
