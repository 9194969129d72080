// Opens one HTTP/2 client connection to a peer URL, bounded in time.
import http2, { type ClientHttp2Session } from "node:http2";
import { connect as netConnect } from "node:net";
import { connect as tlsConnect } from "node:tls";
import type { PeerTlsOptions } from "./types.js";
import { isUnixUrl, unixSocketPath } from "./urls.js";

/** Flow-control window we grant the peer for what it sends back (responses only: small). */
const CLIENT_WINDOW = 1024 * 1024;

export function dial(url: string, tls: PeerTlsOptions["client"], timeoutMs: number): Promise<ClientHttp2Session> {
  return new Promise((resolve, reject) => {
    let settled = false;
    let session: ClientHttp2Session;
    const fail = (err: unknown) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      session?.destroy();
      reject(err instanceof Error ? err : new Error(String(err)));
    };
    const timer = setTimeout(() => fail(new Error(`dial ${url} timed out after ${timeoutMs} ms`)), timeoutMs);
    try {
      const u = new URL(url);
      const secure = u.protocol === "https:" || u.protocol === "unixs:";
      const tlsOpts = secure && tls ? { ca: tls.ca, cert: tls.cert, key: tls.key, rejectUnauthorized: tls.rejectUnauthorized ?? true } : {};
      if (isUnixUrl(u)) {
        // A socket file: the authority is only a name; the connection is made by hand.
        const path = unixSocketPath(u);
        session = http2.connect(secure ? "https://localhost" : "http://localhost", {
          settings: { initialWindowSize: CLIENT_WINDOW, enablePush: false },
          createConnection: () => (secure ? tlsConnect({ path, ...tlsOpts, ALPNProtocols: ["h2"] }) : netConnect({ path })),
        });
      } else {
        session = http2.connect(url, { settings: { initialWindowSize: CLIENT_WINDOW, enablePush: false }, ...tlsOpts });
      }
    } catch (err) {
      fail(err);
      return;
    }
    // Errors after the handshake belong to the owner, but one must always be listening:
    // an 'error' nobody handles would throw out of the event loop.
    session.on("error", (err) => fail(err));
    session.once("close", () => fail(new Error(`connection to ${url} closed`)));
    session.once("connect", () => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(session);
    });
  });
}
