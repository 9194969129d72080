// Raft snapshots of a member (etcd's triggerSnapshot / applySnapshot and the
// snapshot half of its transport): take one every --snapshot-count applied
// entries and compact the log behind it; stream a consistent copy of the
// database to a follower that needs one; receive such a copy and install it in
// the Ready's transaction, replacing the replicated tables and every view over
// them. The data format is in snapshot-data.ts.
import type { Database } from "bun:sqlite";
import { mkdirSync, rmSync } from "node:fs";
import { invariant } from "./invariant.js";
import { log } from "../log.js";
import type { Message, SnapshotMeta } from "../raft/types.js";
import type { SqliteRaftStorage } from "../storage/raft-storage.js";
import type { Applier } from "./apply.js";
import { attachSnapshot, copyDatabase, detachSnapshot, installAttachedSnapshot, streamAndDelete } from "./snapshot-data.js";
import type { MemberState } from "./state.js";

/** Received snapshots kept at once, until Raft takes or drops them. */
const MAX_INCOMING = 8;
/** Bytes per chunk when streaming a snapshot to a follower. */
const SEND_CHUNK_BYTES = 256 * 1024;

export interface SnapshotHost {
  /** Hands a received MsgSnap to Raft and handles the resulting Ready now. */
  stepAndRun(m: Message): void;
  stopped(): boolean;
}

export interface SnapshotOptions {
  /** Applied entries between two snapshots (etcd's --snapshot-count). */
  snapshotCount: number;
  /** Entries kept in the log behind a snapshot for slow followers (etcd's SnapshotCatchUpEntries). */
  catchUpEntries: number;
  /** Where snapshot copies are written while being sent or received. */
  dir: string;
}

export class Snapshots {
  /** Index of the newest snapshot in the Raft storage. */
  private index: number;
  /** Received snapshot files, by "index:term", until installed. */
  private readonly incoming = new Map<string, string>();

  constructor(
    private readonly db: Database,
    private readonly storage: SqliteRaftStorage,
    private readonly applier: Applier,
    private readonly state: MemberState,
    private readonly host: SnapshotHost,
    private readonly opts: SnapshotOptions,
  ) {
    this.index = storage.snapshot().meta.index;
    // Snapshot files left by a previous run (a copy being sent, one being received) are stale.
    rmSync(opts.dir, { recursive: true, force: true });
    mkdirSync(opts.dir, { recursive: true, mode: 0o700 });
  }

  get snapshotIndex(): number {
    return this.index;
  }

  // ---- take ----

  /** Inside the Ready's transaction: every --snapshot-count delivered entries, snapshot and compact the log. */
  maybeTake(): void {
    if (this.applier.deliveredIndex - this.index < this.opts.snapshotCount) return;
    this.take();
  }

  /** Whether a snapshot now would hold entries the last one does not (a joining follower needs them). */
  get stale(): boolean {
    return this.applier.deliveredIndex > this.index;
  }

  /** Outside any transaction: a snapshot now, in its own transaction (a follower needs one that includes it). */
  takeNow(): void {
    try {
      this.db.transaction(() => this.take())();
      this.storage.committed();
    } catch (err) {
      this.storage.rollbackCache();
      throw err;
    }
  }

  private take(): void {
    // At the last delivered entry, whose configuration the applier holds; the data may be
    // ahead of it (a snapshot copy installed at a later applied index), as a streamed copy is.
    const at = this.applier.deliveredIndex;
    this.storage.createSnapshot(at, this.applier.confState);
    this.index = at;
    const compactTo = at - this.opts.catchUpEntries;
    if (compactTo > 0) this.storage.compact(compactTo);
    log.info("saved snapshot", { "snapshot-index": at, "compacted-to": Math.max(0, compactTo) });
  }

  // ---- send ----

  /** The data of an outgoing snapshot: a consistent copy of the database, deleted once streamed. */
  openData(): AsyncIterable<Uint8Array> {
    return streamAndDelete(copyDatabase(this.db, this.opts.dir), SEND_CHUNK_BYTES);
  }

  // ---- receive and install ----

  /** A snapshot from the leader is on disk: Raft decides now whether to take it; the file is ours. */
  receive(m: Message, file: string): void {
    const meta = m.snapshot?.meta;
    if (this.host.stopped() || meta === undefined) {
      rmSync(file, { force: true });
      return;
    }
    const key = snapKey(meta);
    const previous = this.incoming.get(key);
    if (previous !== undefined && previous !== file) rmSync(previous, { force: true });
    this.incoming.set(key, file);
    invariant(this.incoming.size <= MAX_INCOMING, `${this.incoming.size} received snapshots waiting`);
    // Install now, while the file is certainly ours; the sender hears success after this returns.
    this.host.stepAndRun(m);
    if (this.incoming.get(key) === file) {
      // Raft did not take it (older than what we have): drop the file.
      this.incoming.delete(key);
      rmSync(file, { force: true });
    }
  }

  /** Before the Ready's transaction (SQLite attaches outside transactions only): the received data, ready to install. */
  attach(meta: SnapshotMeta): string {
    const file = this.incoming.get(snapKey(meta));
    invariant(file !== undefined, `no data for the snapshot at ${meta.index}`);
    attachSnapshot(this.db, file);
    return file;
  }

  /** Inside the transaction: the snapshot's tables replace ours, and every view is rebuilt. */
  install(meta: SnapshotMeta): void {
    const dataIndex = installAttachedSnapshot(this.db);
    this.storage.applySnapshot(meta);
    this.applier.reset(meta, dataIndex);
    this.index = meta.index;
    this.state.reload();
  }

  /** After the transaction (committed or not). */
  detach(): void {
    detachSnapshot(this.db);
  }

  /** After the transaction committed: the received file is no longer needed. */
  installed(meta: SnapshotMeta, file: string): void {
    this.incoming.delete(snapKey(meta));
    rmSync(file, { force: true });
    log.info("applied incoming snapshot", { "snapshot-index": meta.index, "applied-index": this.applier.appliedIndex });
  }
}

function snapKey(meta: SnapshotMeta): string {
  return `${meta.index}:${meta.term}`;
}
