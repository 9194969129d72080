// Free loopback TCP ports for test servers.
//
// We ask the kernel for a free port (bind to port 0), read it back and release it; the server
// under test binds it a moment later. That leaves a small race with other processes, so ports
// are never handed out twice by this process, and callers that see "address already in use"
// should retry with fresh ports (startMember does).
import { createServer } from "node:net";

// etcd's e2e suite binds fixed ports from 20000 up; keep our servers off them so both can
// run on one machine.
const RESERVED_LOW = 20000;
const RESERVED_HIGH = 20100;
const MAX_ATTEMPTS = 50;
const BIND_TIMEOUT_MS = 2000;

const handedOut = new Set<number>();

function bindEphemeral(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    const timer = setTimeout(() => {
      srv.close();
      reject(new Error(`binding 127.0.0.1:0 took more than ${BIND_TIMEOUT_MS} ms`));
    }, BIND_TIMEOUT_MS);
    srv.once("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
    srv.listen({ host: "127.0.0.1", port: 0, exclusive: true }, () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr !== null ? addr.port : 0;
      srv.close(() => {
        clearTimeout(timer);
        resolve(port);
      });
    });
  });
}

/** One free 127.0.0.1 port, outside etcd e2e's range and never returned before by this process. */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    const port = await bindEphemeral();
    if (port <= 0) continue;
    if (port >= RESERVED_LOW && port <= RESERVED_HIGH) continue;
    if (handedOut.has(port)) continue;
    handedOut.add(port);
    return port;
  }
  throw new Error(`no free 127.0.0.1 port after ${MAX_ATTEMPTS} attempts`);
}

/** `count` distinct free ports. */
export async function freePorts(count: number): Promise<number[]> {
  const ports: number[] = [];
  for (let i = 0; i < count; i++) ports.push(await freePort());
  return ports;
}
