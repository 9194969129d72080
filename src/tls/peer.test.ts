// peerTlsOptions alone: what it builds from the --peer-* flags and the errors it reports.
// Options used by real transports are tested in src/transport/peer-tls.test.ts.
import { beforeAll, describe, expect, test } from "bun:test";
import { X509Certificate } from "node:crypto";
import { readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { peerTlsOptions } from "./peer.js";
import { peerTlsConfig, writePeerTestCerts } from "./test-support.js";

const quiet = { warn: () => {}, info: () => {} };

const base = peerTlsConfig;

let dir: string;
let files: Record<string, { cert: string; key: string }> = {};
beforeAll(async () => {
  ({ dir, files } = await writePeerTestCerts(["member", "client", "stranger"]));
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
