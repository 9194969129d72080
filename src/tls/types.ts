// The TLS option shapes the listeners and the peer transport are handed. They are built in
// this folder from etcd's flags and consumed by api/ and transport/, so they live here, below
// both, rather than in either consumer. No behaviour lives here.
import type { SecureContextOptions } from "node:tls";

/** A TLS server's options: a certificate, and whether (and against which CA) clients are verified. */
export interface ServerTlsOptions extends SecureContextOptions {
  requestCert: boolean;
  rejectUnauthorized: boolean;
}

/** TLS for the peer port (etcd's --peer-* flags). */
export interface PeerTlsOptions {
  /** Server side, as clientTlsOptions builds it for clients (requestCert + rejectUnauthorized = client-cert-auth). */
  server?: ServerTlsOptions;
  /** Client side: our certificate (for client-cert-auth peers) and the CA we trust. */
  client?: {
    cert?: string | Buffer;
    key?: string | Buffer;
    ca?: string | Buffer | Array<string | Buffer>;
    /** Verify the peer's certificate (default true; etcd's --peer-auto-tls turns it off). */
    rejectUnauthorized?: boolean;
  };
  /**
   * --peer-cert-allowed-cn: a TLS client whose (verified) certificate's CN is not one of these
   * is disconnected. Only meaningful with server.requestCert (etcd checks it only then too).
   */
  allowedCn?: string[];
}
