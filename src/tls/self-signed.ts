// Self-signed certificates (etcd's pkg/transport.SelfCert): the one generator behind client
// --auto-tls, peer --peer-auto-tls and the tests' certificates, and the files etcd keeps them in.
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { generate } from "selfsigned";
import { log } from "../log.js";

export interface SelfSignedOptions {
  /** Hosts for the subjectAltName: IPs, names, or host:port (the port is dropped). */
  hosts: string[];
  /** Subject CN; absent by default (etcd's generated certificates carry only O=etcd). */
  commonName?: string;
  /** Subject O (default "etcd", as etcd's transport.SelfCert). */
  organization?: string;
  /** Mark it a CA (basicConstraints cA, keyCertSign) so it can verify itself as a client's CA. */
  ca?: boolean;
  /** Start of validity (default now). */
  notBefore?: Date;
  /** Validity in years from notBefore (default 1) unless validityMs is given. */
  validityYears?: number;
  validityMs?: number;
}

/** The host part of "host", "host:port", "[v6]:port" or a bare IPv6 address. */
function hostOnly(h: string): string {
  if (h.startsWith("[")) return h.slice(1, h.indexOf("]") > 0 ? h.indexOf("]") : undefined);
  const colons = h.split(":").length - 1;
  if (colons === 1) return h.slice(0, h.indexOf(":"));
  return h;
}

/**
 * A self-signed EC P-256 certificate and its key, in memory (PEM). The one generator behind
 * client --auto-tls, peer --peer-auto-tls and the tests' certificates. localhost and 127.0.0.1
 * are always in the SANs; serverAuth and clientAuth both allowed (peers use one certificate
 * both ways).
 */
export async function generateSelfSignedCert(o: SelfSignedOptions): Promise<{ cert: string; key: string }> {
  const hosts = [...new Set(["localhost", "127.0.0.1", ...o.hosts.map(hostOnly)].filter((h) => h !== ""))];
  const altNames = hosts.map((h) => (/^[\d.]+$/.test(h) || h.includes(":") ? { type: 7, ip: h } : { type: 2, value: h }));
  const notBeforeDate = o.notBefore ?? new Date();
  let notAfterDate: Date;
  if (o.validityMs !== undefined) {
    notAfterDate = new Date(notBeforeDate.getTime() + o.validityMs);
  } else {
    notAfterDate = new Date(notBeforeDate);
    notAfterDate.setFullYear(notAfterDate.getFullYear() + Math.max(1, o.validityYears ?? 1));
  }
  const subject: Array<{ name: string; value: string }> = [];
  if (o.commonName !== undefined) subject.push({ name: "commonName", value: o.commonName });
  if (o.organization !== undefined || o.commonName === undefined) subject.push({ name: "organizationName", value: o.organization ?? "etcd" });
  const extensions: object[] = [];
  if (o.ca) extensions.push({ name: "basicConstraints", cA: true });
  extensions.push(
    { name: "keyUsage", digitalSignature: true, keyEncipherment: true, ...(o.ca ? { keyCertSign: true } : {}) },
    { name: "extKeyUsage", serverAuth: true, clientAuth: true },
    { name: "subjectAltName", altNames },
  );
  const pems = await generate(subject, {
    keyType: "ec",
    curve: "P-256",
    algorithm: "sha256",
    notBeforeDate,
    notAfterDate,
    extensions,
  } as any);
  return { cert: pems.cert, key: pems.private };
}

/**
 * etcd's transport.SelfCert: reuses <dir>/cert.pem and key.pem when both exist, otherwise
 * generates them (directory 0700, files 0600). `what` names the certificate in the log.
 */
export async function selfSignedCertFiles(
  dir: string,
  hosts: string[],
  years: number,
  what = "client",
): Promise<{ certFile: string; keyFile: string; created: boolean }> {
  const certFile = join(dir, "cert.pem");
  const keyFile = join(dir, "key.pem");
  if (existsSync(certFile) && existsSync(keyFile)) return { certFile, keyFile, created: false };
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const { cert, key } = await generateSelfSignedCert({ hosts, validityYears: years });
  writeFileSync(certFile, cert, { mode: 0o600 });
  writeFileSync(keyFile, key, { mode: 0o600 });
  log.info(`created self-signed ${what} certificate`, { cert: certFile, key: keyFile });
  return { certFile, keyFile, created: true };
}
