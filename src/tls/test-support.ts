// Certificates for tests: generated on the fly, valid from a minute ago (so clock skew between
// generation and the handshake does not matter) for a day, and usable as server, client and CA.
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { PeerTlsConfig } from "./peer.js";
import { generateSelfSignedCert } from "./self-signed.js";

/** A self-signed certificate for 127.0.0.1/localhost with subject CN `cn`, in memory (PEM). */
export async function testCert(cn = "tsetcd-peer"): Promise<{ cert: string; key: string }> {
  return generateSelfSignedCert({ hosts: [], commonName: cn, ca: true, notBefore: new Date(Date.now() - 60_000), validityMs: 86_400_000 });
}

/** testCert(cn) written to <dir>/<cn>.pem and <dir>/<cn>-key.pem, for code that takes file names (etcd's flags). */
export async function writeTestCert(dir: string, cn: string): Promise<{ cert: string; key: string }> {
  const pair = await testCert(cn);
  const files = { cert: join(dir, `${cn}.pem`), key: join(dir, `${cn}-key.pem`) };
  writeFileSync(files.cert, pair.cert);
  writeFileSync(files.key, pair.key);
  return files;
}

/** --peer-* flags all at their defaults (no TLS), with a fresh data dir, overridden by `over`. */
export function peerTlsConfig(over: Partial<PeerTlsConfig> = {}): PeerTlsConfig {
  return {
    peerCertFile: "",
    peerKeyFile: "",
    peerTrustedCaFile: "",
    peerClientCertAuth: false,
    peerAutoTls: false,
    peerClientCertFile: "",
    peerClientKeyFile: "",
    peerCertAllowedCn: [],
    selfSignedCertValidity: 1,
    dataDir: mkdtempSync(join(tmpdir(), "tsetcd-peer-tls-")),
    listenPeerUrls: ["https://127.0.0.1:2380"],
    ...over,
  };
}

/** A certificate file pair per CN in a fresh dir, and ca.pem trusting the "member" and "client" ones. */
export async function writePeerTestCerts(cns: string[]): Promise<{ dir: string; files: Record<string, { cert: string; key: string }> }> {
  const dir = mkdtempSync(join(tmpdir(), "tsetcd-peer-certs-"));
  const files: Record<string, { cert: string; key: string }> = {};
  for (const cn of cns) files[cn] = await writeTestCert(dir, cn);
  writeFileSync(join(dir, "ca.pem"), readFileSync(files.member.cert, "utf8") + readFileSync(files.client.cert, "utf8"));
  return { dir, files };
}
