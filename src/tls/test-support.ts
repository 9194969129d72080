// Certificates for tests: generated on the fly, valid from a minute ago (so clock skew between
// generation and the handshake does not matter) for a day, and usable as server, client and CA.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
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
