// Entry point: serve HTTP/2 on a socket the listener already accepted (and
// possibly already read from, to recognise the preface).
import type { H2Socket } from "./connection.js";
import { H2Connection, type H2Options } from "./connection.js";

export { H2Connection, type H2Options, type H2Socket } from "./connection.js";
export { H2Stream } from "./stream.js";
export { BunSocket, listenH2, type BunH2Server } from "./bun-socket.js";
export type { HeaderMap } from "./hpack.js";

/**
 * Serves one HTTP/2 connection. `initial` holds bytes read before the handoff
 * (the preface, or part of it, and maybe more); they are processed first.
 * Every stream goes to `opts.onStream`, gRPC or not.
 */
export function serveH2(socket: H2Socket, initial: Uint8Array, opts: H2Options): H2Connection {
  const conn = new H2Connection(socket, opts);
  conn.start(initial);
  return conn;
}
