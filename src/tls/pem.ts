// Reading certificate, key and CA files the way Go's crypto/tls and os do, so a user's mistake
// is reported with the same text etcd prints (tests and scripts match on those texts).
import { createPrivateKey, X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";

/** Go's os.ReadFile error text. */
export function readFile(path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const reason =
      code === "ENOENT" ? "no such file or directory" : code === "EACCES" ? "permission denied" : code === "EISDIR" ? "is a directory" : (err as Error).message;
    throw new Error(`open ${path}: ${reason}`);
  }
}

/** tls.X509KeyPair's checks, with Go's texts. */
export function checkKeyPair(cert: Buffer, key: Buffer): void {
  if (!cert.toString("latin1").includes("-----BEGIN CERTIFICATE-----")) throw new Error("tls: failed to find any PEM data in certificate input");
  if (!/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(key.toString("latin1"))) throw new Error("tls: failed to find any PEM data in key input");
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(cert);
  } catch (err) {
    throw new Error(`x509: malformed certificate (${(err as Error).message})`);
  }
  let pk;
  try {
    pk = createPrivateKey(key);
  } catch {
    throw new Error("tls: failed to parse private key");
  }
  if (!x509.checkPrivateKey(pk)) throw new Error("tls: private key does not match public key");
}

/**
 * CA file check (tlsutil.NewCertPool): every PEM block must be a certificate. Returned one
 * certificate per element: Bun's TLS refuses a single buffer holding several ("Invalid CA").
 */
export function readCa(path: string): string[] {
  const pem = readFile(path);
  const blocks = pem.toString("latin1").match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? [];
  for (const b of blocks) {
    try {
      new X509Certificate(b);
    } catch (err) {
      throw new Error(`x509: malformed certificate (${(err as Error).message})`);
    }
  }
  return blocks;
}
