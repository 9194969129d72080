// Peer-port TLS from etcd's --peer-* flags (etcd's embed.Config.PeerSelfCert and
// pkg/transport.TLSInfo ServerConfig/ClientConfig):
//   --peer-cert-file/--peer-key-file    our certificate, server side and (by default) client side
//   --peer-trusted-ca-file              CA for verifying peers, both ways; on the server side it
//                                       alone already requires client certificates (as etcd 3.4)
//   --peer-client-cert-auth             require and verify peers' client certificates
//   --peer-client-cert-file/-key-file   a separate client identity for dialing peers
//   --peer-cert-allowed-cn              only these client-certificate CNs are accepted
//   --peer-auto-tls                     without cert/key: a self-signed certificate generated
//                                       (or reused) in <data-dir>/fixtures/peer, hosts from
//                                       --listen-peer-urls. As etcd, the generated setup replaces
//                                       the others: no CA, no client-cert-auth, and peers do not
//                                       verify each other's certificates.
import { join } from "node:path";
import { log as defaultLog } from "../log.js";
import { checkKeyPair, readCa, readFile } from "./pem.js";
import { selfSignedCertFiles } from "./self-signed.js";
import type { PeerTlsOptions } from "./types.js";

export interface PeerTlsConfig {
  peerCertFile: string;
  peerKeyFile: string;
  peerTrustedCaFile: string;
  peerClientCertAuth: boolean;
  peerAutoTls: boolean;
  peerClientCertFile: string;
  peerClientKeyFile: string;
  /** --peer-cert-allowed-cn (etcd 3.4 takes one CN; a list is accepted). */
  peerCertAllowedCn: string[] | string;
  /** --self-signed-cert-validity, years. */
  selfSignedCertValidity: number;
  dataDir: string;
  /** --listen-peer-urls (strings or URLs): their hosts go into a generated certificate. */
  listenPeerUrls: Array<string | URL>;
}

interface Logger {
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
}

function hostsOf(urls: Array<string | URL>): string[] {
  const out: string[] = [];
  for (const u of urls) {
    try {
      const h = (typeof u === "string" ? new URL(u) : u).hostname.replace(/^\[|\]$/g, "");
      if (h !== "") out.push(h);
    } catch {}
  }
  return out;
}

/**
 * The transport's TLS options from the --peer-* flags, or undefined when no peer TLS is
 * configured at all. Throws, with etcd's texts, on what a user can get wrong:
 *   KeyFile and CertFile must both be present[key: <key>, cert: <cert>]
 *   ClientKeyFile and ClientCertFile must both be present or both absent: key: <key>, cert: <cert>]
 *   open <file>: no such file or directory
 *   tls: private key does not match public key   (and other tls.X509KeyPair texts)
 */
export async function peerTlsOptions(cfg: PeerTlsConfig, logger: Logger = defaultLog): Promise<PeerTlsOptions | undefined> {
  let certFile = cfg.peerCertFile;
  let keyFile = cfg.peerKeyFile;
  let selfCert = false;
  if (cfg.peerAutoTls) {
    if (certFile !== "" || keyFile !== "") {
      logger.warn("ignoring peer auto TLS since certs given");
    } else {
      const generated = await selfSignedCertFiles(join(cfg.dataDir, "fixtures", "peer"), hostsOf(cfg.listenPeerUrls), cfg.selfSignedCertValidity, "peer");
      certFile = generated.certFile;
      keyFile = generated.keyFile;
      selfCert = true;
    }
  }
  const allowedCn = (typeof cfg.peerCertAllowedCn === "string" ? [cfg.peerCertAllowedCn] : cfg.peerCertAllowedCn).filter((c) => c !== "");

  if (certFile === "" && keyFile === "") {
    // No certificate of our own: plain peer URLs only, but https peers can still be dialed,
    // verified with the trusted CA when one is given (etcd's ClientConfig of an empty TLSInfo).
    if (cfg.peerTrustedCaFile === "") return undefined;
    return { client: { ca: readCa(cfg.peerTrustedCaFile), rejectUnauthorized: true } };
  }
  if (certFile === "" || keyFile === "") {
    throw new Error(`KeyFile and CertFile must both be present[key: ${keyFile}, cert: ${certFile}]`);
  }
  if ((cfg.peerClientCertFile === "") !== (cfg.peerClientKeyFile === "")) {
    throw new Error(`ClientKeyFile and ClientCertFile must both be present or both absent: key: ${cfg.peerClientKeyFile}, cert: ${cfg.peerClientCertFile}]`);
  }
  const cert = readFile(certFile);
  const key = readFile(keyFile);
  checkKeyPair(cert, key);

  if (selfCert) {
    if (cfg.peerTrustedCaFile !== "" || cfg.peerClientCertAuth || allowedCn.length > 0) {
      logger.warn("peer auto TLS generated a certificate; ignoring --peer-trusted-ca-file, --peer-client-cert-auth and --peer-cert-allowed-cn", {
        "cert-file": certFile,
      });
    }
    logger.info("starting with peer TLS", { "cert-file": certFile, "key-file": keyFile, "auto-tls": true });
    return {
      server: { cert, key, requestCert: false, rejectUnauthorized: false },
      client: { cert, key, rejectUnauthorized: false },
    };
  }

  const ca = cfg.peerTrustedCaFile !== "" ? readCa(cfg.peerTrustedCaFile) : undefined;
  let clientCert = cert;
  let clientKey = key;
  if (cfg.peerClientCertFile !== "") {
    clientCert = readFile(cfg.peerClientCertFile);
    clientKey = readFile(cfg.peerClientKeyFile);
    checkKeyPair(clientCert, clientKey);
  }
  // etcd 3.4's ServerConfig: a trusted CA alone already means RequireAndVerifyClientCert.
  const requireClientCert = cfg.peerClientCertAuth || ca !== undefined;
  logger.info("starting with peer TLS", {
    "cert-file": certFile,
    "key-file": keyFile,
    "trusted-ca-file": cfg.peerTrustedCaFile,
    "client-cert-auth": requireClientCert,
    "allowed-cn": allowedCn,
  });
  const out: PeerTlsOptions = {
    server: { cert, key, ...(ca !== undefined ? { ca } : {}), requestCert: requireClientCert, rejectUnauthorized: requireClientCert },
    client: { cert: clientCert, key: clientKey, ...(ca !== undefined ? { ca } : {}), rejectUnauthorized: true },
  };
  if (allowedCn.length > 0) out.allowedCn = allowedCn;
  return out;
}
