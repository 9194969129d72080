// Client-port TLS from etcd's flags: --cert-file/--key-file (+ --trusted-ca-file
// and --client-cert-auth to require client certificates), or --auto-tls, which
// generates a self-signed certificate under <data-dir>/fixtures/client as etcd
// does. The listener negotiates ALPN with these options: "h2" goes to our HTTP/2
// server (gRPC), "http/1.1" to the HTTP/1.1 server.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { selfSignedCertFiles } from "./self-signed.js";
import type { ServerTlsOptions } from "./types.js";

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

/** The TLS options for https client URLs, or undefined when no TLS is configured. */
export async function clientTlsOptions(c: ClientTlsConfig): Promise<ServerTlsOptions | undefined> {
  let certFile = c.certFile;
  let keyFile = c.keyFile;
  if (c.autoTls && (certFile === "" || keyFile === "")) {
    ({ certFile, keyFile } = await selfSignedCertFiles(join(c.dataDir, "fixtures", "client"), c.hosts, c.validityYears));
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
