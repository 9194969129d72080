// Receives one snapshot request: the encoded Snap message (one frame), then
// the data, written to a temporary file in the snapshot directory, fsynced,
// renamed into place (and the directory fsynced) before the member is told
// (onSnapshot) and the sender hears 200. A transfer that is too large, stalls,
// or breaks off leaves no file behind.
import { constants } from "node:http2";
import { open, rename, unlink, type FileHandle } from "node:fs/promises";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { MessageType, type Message, type NodeId } from "../raft/types.js";
import { errorText } from "./env.js";
import { FramingError } from "./framing.js";
import { SnapshotBodyParser } from "./snapshot-body.js";
import { closeStream, refuse, type InboundEnv, type InboundStream } from "./inbound-stream.js";
import { idToHex } from "./protocol.js";

/** Data held in memory before we stop reading and wait for the disk. */
const WRITE_HIGH_WATER = 4 * 1024 * 1024;

export function snapshotFileName(m: Message): string {
  const hex = (n: number) => n.toString(16).padStart(16, "0");
  return `${hex(m.snapshot?.meta.term ?? m.term)}-${hex(m.snapshot?.meta.index ?? m.index)}.snap.db`;
}

export async function receiveSnapshot(env: InboundEnv, stream: InboundStream, from: NodeId): Promise<void> {
  const fields: Record<string, unknown> = { "local-member-id": idToHex(env.localId), "remote-peer-id": idToHex(from) };
  const { maxMessageBytes, maxSnapshotBytes, snapshotIdleTimeoutMs } = env.limits;
  const started = performance.now();

  let m: Message | null = null;
  let file: FileHandle | null = null;
  let tmpPath = "";
  let received = 0;
  let pending: Uint8Array[] = [];
  let pendingBytes = 0;
  let writing: Promise<void> | null = null;
  let ended = false;
  let finished = false;
  let idle: ReturnType<typeof setTimeout> | null = null;
  let resolveDone!: () => void;
  const done = new Promise<void>((r) => (resolveDone = r));

  const cleanup = async () => {
    if (idle !== null) clearTimeout(idle);
    const f = file;
    file = null;
    if (f !== null) await f.close().catch(() => {});
  };
  const fail = async (why: string, status: number) => {
    if (finished) return;
    finished = true;
    env.log.warn("failed to receive database snapshot", { ...fields, error: why, "received-bytes": received });
    // Remove the partial file before the sender hears anything.
    try {
      stream.pause();
    } catch {}
    await (writing ?? Promise.resolve()).catch(() => {});
    await cleanup();
    if (tmpPath !== "") await unlink(tmpPath).catch(() => {});
    if (status > 0) refuse(env, stream, status, why);
    else closeStream(stream, constants.NGHTTP2_CANCEL);
    resolveDone();
  };
  const touch = () => {
    if (idle !== null) clearTimeout(idle);
    idle = setTimeout(() => void fail(`no data for ${snapshotIdleTimeoutMs} ms`, 408), snapshotIdleTimeoutMs);
  };

  // Writes what is pending, one batch at a time; reading pauses while too much waits.
  const pump = () => {
    if (writing !== null || finished || file === null) return;
    if (pending.length === 0) {
      if (ended) void complete();
      return;
    }
    const batch = pending;
    const bytes = pendingBytes;
    pending = [];
    pendingBytes = 0;
    const f = file;
    writing = f
      .writev(batch)
      .then((r) => {
        if (r.bytesWritten !== bytes) throw new Error(`short write: ${r.bytesWritten} of ${bytes} bytes`);
        writing = null;
        if (pendingBytes < WRITE_HIGH_WATER) stream.resume();
        pump();
      })
      .catch((err) => {
        writing = null;
        void fail(`writing ${tmpPath}: ${errorText(err)}`, 500);
      });
  };

  const startFile = async (msg: Message) => {
    m = msg;
    fields["snapshot-index"] = msg.snapshot?.meta.index ?? 0;
    env.log.info("receiving database snapshot", fields);
    tmpPath = join(env.snapshotDir, `.recv-${idToHex(from)}-${randomBytes(6).toString("hex")}.tmp`);
    file = await open(tmpPath, "w", 0o600);
    if (finished) {
      await cleanup();
      await unlink(tmpPath).catch(() => {});
      return;
    }
    pump();
  };

  const complete = async () => {
    if (finished || m === null) return;
    finished = true;
    if (idle !== null) clearTimeout(idle);
    const msg: Message = m;
    const finalPath = join(env.snapshotDir, snapshotFileName(msg));
    try {
      const f = file as unknown as FileHandle;
      await f.sync();
      await cleanup();
      await rename(tmpPath, finalPath);
      tmpPath = "";
      await syncDir(env.snapshotDir);
    } catch (err) {
      finished = false;
      await fail(`storing snapshot: ${errorText(err)}`, 500);
      return;
    }
    env.log.info("received and saved database snapshot", {
      ...fields,
      path: finalPath,
      "data-bytes": received,
      took: `${Math.round(performance.now() - started)}ms`,
    });
    try {
      await env.handlers.onSnapshot?.(msg, finalPath);
    } catch (err) {
      env.log.error("snapshot handler failed", { ...fields, error: errorText(err) });
      refuse(env, stream, 500, "error processing snapshot");
      resolveDone();
      return;
    }
    try {
      if (!stream.destroyed) {
        stream.respond({ ":status": 200 }, { endStream: true });
      }
    } catch {}
    resolveDone();
  };

  const parser = new SnapshotBodyParser(maxMessageBytes, maxSnapshotBytes);
  const onHeader = (payload: Uint8Array) => {
    const msg = env.codec.decode(payload);
    if (msg.type !== MessageType.Snap) throw new Error(`expected a Snap message, got ${msg.type}`);
    if (msg.to !== env.localId || msg.from !== from) throw new Error("snapshot message addressed to another member");
    m = msg;
    void startFile(msg).catch((err) => fail(`creating ${tmpPath}: ${errorText(err)}`, 500));
  };
  const onData = (bytes: Uint8Array) => {
    received += bytes.length;
    pending.push(bytes);
    pendingBytes += bytes.length;
  };

  touch();
  stream.on("data", (chunk: Uint8Array) => {
    if (finished) return;
    touch();
    try {
      parser.push(chunk, onHeader, onData);
    } catch (err) {
      const tooBig = err instanceof FramingError && /exceeds/.test(err.message);
      void fail(errorText(err), tooBig ? 413 : 400);
      return;
    }
    if (pendingBytes >= WRITE_HIGH_WATER) stream.pause();
    pump();
  });
  stream.on("end", () => {
    ended = true;
    if (finished) return;
    // Only the end mark proves the data complete; an 'end' without it is a broken transfer.
    if (m === null || !parser.complete) {
      void fail("request ended before the snapshot was complete", 400);
      return;
    }
    pump();
  });
  stream.on("close", () => {
    if (!finished) void fail("stream closed before the snapshot was complete", 0);
  });
  await done;
}

async function syncDir(dir: string): Promise<void> {
  const d = await open(dir, "r");
  try {
    await d.sync();
  } finally {
    await d.close();
  }
}
