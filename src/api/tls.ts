// Client-port TLS from etcd's flags: --cert-file/--key-file (+ --trusted-ca-file
// and --client-cert-auth to require client certificates), or --auto-tls, which
// generates a self-signed certificate under <data-dir>/fixtures/client as etcd
// does. Connections negotiate ALPN: "h2" goes to our HTTP/2 server (gRPC),
// "http/1.1" to the HTTP/1.1 server.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { SecureContextOptions } from "node:tls";
import { generate } from "selfsigned";
import { log } from "../log.js";

export interface ClientTlsConfig {
  certFile: string;
  keyFile: string;
  trustedCaFile: string;
  clientCertAuth: boolean;
  autoTls: boolean;
  dataDir: string;
  /** Hosts of --listen-client-urls, put in an auto-generated certificate's SANs. */
  hosts: string[];
  /** --self-signed-cert-validity in years (etcd's default 1). */
  validityYears: number;
}

export interface ServerTlsOptions extends SecureContextOptions {
  requestCert: boolean;
  rejectUnauthorized: boolean;
}

/** The TLS options for https client URLs, or undefined when no TLS is configured. */
export async function clientTlsOptions(c: ClientTlsConfig): Promise<ServerTlsOptions | undefined> {
  let certFile = c.certFile;
  let keyFile = c.keyFile;
  if (c.autoTls && (certFile === "" || keyFile === "")) {
    ({ certFile, keyFile } = await selfSignedCert(join(c.dataDir, "fixtures", "client"), c.hosts, c.validityYears));
  }
  if (certFile === "" || keyFile === "") return undefined;
  const requireClientCert = c.clientCertAuth;
  return {
    cert: readFileSync(certFile),
    key: readFileSync(keyFile),
    ca: c.trustedCaFile !== "" ? readFileSync(c.trustedCaFile) : undefined,
    requestCert: requireClientCert,
    rejectUnauthorized: requireClientCert,
  };
}

async function selfSignedCert(dir: string, hosts: string[], years: number) {
  const certFile = join(dir, "cert.pem");
  const keyFile = join(dir, "key.pem");
  if (existsSync(certFile) && existsSync(keyFile)) return { certFile, keyFile };
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const altNames = [...new Set(["localhost", "127.0.0.1", ...hosts])].map((h) =>
    /^[\d.]+$/.test(h) || h.includes(":") ? { type: 7, ip: h } : { type: 2, value: h },
  );
  const notBeforeDate = new Date();
  const notAfterDate = new Date(notBeforeDate);
  notAfterDate.setFullYear(notAfterDate.getFullYear() + Math.max(1, years));
  const pems = await generate([{ name: "organizationName", value: "etcd" }], {
    keyType: "ec",
    curve: "P-256",
    algorithm: "sha256",
    notBeforeDate,
    notAfterDate,
    extensions: [
      { name: "keyUsage", digitalSignature: true, keyEncipherment: true },
      { name: "extKeyUsage", serverAuth: true, clientAuth: true },
      { name: "subjectAltName", altNames },
    ],
  } as any);
  writeFileSync(certFile, pems.cert, { mode: 0o600 });
  writeFileSync(keyFile, pems.private, { mode: 0o600 });
  log.info("created self-signed client certificate", { cert: certFile, key: keyFile });
  return { certFile, keyFile };
}
