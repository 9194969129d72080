// The leader's view of one follower: how much of the log it has (match), what
// to send next (next), and flow control so a slow follower is not flooded.
import { invariant } from "./types.ts";

export enum ProgressState {
  /** Unknown match: send one App per heartbeat interval and wait for the answer. */
  Probe = "Probe",
  /** Match known: stream entries optimistically, bounded by Inflights. */
  Replicate = "Replicate",
  /** Needs entries the leader compacted: a snapshot is on its way; send nothing else. */
  Snapshot = "Snapshot",
}

/**
 * A bounded window of App messages sent but not yet acknowledged. A queue with
 * a moving head (compacted now and then), so an acknowledgement costs no copy.
 */
export class Inflights {
  private lastIndexes: number[] = [];
  private sizes: number[] = [];
  private head = 0;
  private bytes = 0;

  constructor(
    readonly maxCount: number,
    readonly maxBytes: number,
  ) {
    invariant(maxCount > 0, "inflights maxCount must be positive");
  }

  add(lastIndex: number, bytes: number): void {
    invariant(!this.full(), "add to full inflights");
    const prev = this.count() > 0 ? this.lastIndexes[this.lastIndexes.length - 1] : undefined;
    invariant(prev === undefined || lastIndex > prev, `inflight ${lastIndex} not increasing after ${prev}`);
    this.lastIndexes.push(lastIndex);
    this.sizes.push(bytes);
    this.bytes += bytes;
  }

  /** Acknowledge every message whose last index is <= index. */
  freeLE(index: number): void {
    const n = this.lastIndexes.length;
    let h = this.head;
    while (h < n && this.lastIndexes[h] <= index) {
      this.bytes -= this.sizes[h];
      h++;
    }
    if (h === n) {
      this.reset();
      return;
    }
    this.head = h;
    // Drop the acknowledged prefix once it is most of the arrays (amortized O(1)).
    if (h > 64 && h * 2 > n) {
      this.lastIndexes = this.lastIndexes.slice(h);
      this.sizes = this.sizes.slice(h);
      this.head = 0;
    }
  }

  freeFirst(): void {
    if (this.count() > 0) this.freeLE(this.lastIndexes[this.head]);
  }

  full(): boolean {
    return this.count() >= this.maxCount || this.bytes >= this.maxBytes;
  }

  count(): number {
    return this.lastIndexes.length - this.head;
  }

  reset(): void {
    this.lastIndexes.length = 0;
    this.sizes.length = 0;
    this.head = 0;
    this.bytes = 0;
  }
}

export class Progress {
  state = ProgressState.Probe;
  /** In Probe: an App is outstanding, wait for its answer (or a heartbeat response). */
  probeSent = false;
  /** Heard from within the current check-quorum window. */
  recentActive = false;
  /** Replicates but neither votes nor counts for commit. */
  isLearner = false;
  /** In Snapshot state: the index of the snapshot sent. */
  pendingSnapshot = 0;
  readonly inflights: Inflights;

  constructor(
    public match: number,
    public next: number,
    maxInflight: number,
    maxInflightBytes: number,
  ) {
    this.inflights = new Inflights(maxInflight, maxInflightBytes);
  }

  becomeProbe(): void {
    this.state = ProgressState.Probe;
    this.probeSent = false;
    this.pendingSnapshot = 0;
    this.next = this.match + 1;
    this.inflights.reset();
  }

  becomeSnapshot(snapshotIndex: number): void {
    this.state = ProgressState.Snapshot;
    this.probeSent = false;
    this.pendingSnapshot = snapshotIndex;
    this.inflights.reset();
  }

  /**
   * The driver reported the snapshot delivered (or failed): probe from just
   * after it (or after the known match), but wait for the follower's answer (or the next heartbeat
   * response) before sending, as the follower may still be installing it.
   */
  snapshotDone(ok: boolean): void {
    // After a failure, only what the follower acknowledged is known to be there.
    const from = ok ? Math.max(this.match, this.pendingSnapshot) : this.match;
    this.becomeProbe();
    this.next = from + 1;
    this.probeSent = true;
  }

  becomeReplicate(): void {
    this.state = ProgressState.Replicate;
    this.probeSent = false;
    this.next = this.match + 1;
    this.inflights.reset();
  }

  /** A successful AppResp for index n. Returns whether match advanced. */
  maybeUpdate(n: number): boolean {
    let updated = false;
    if (this.match < n) {
      this.match = n;
      updated = true;
      this.probeSent = false;
    }
    this.next = Math.max(this.next, n + 1);
    return updated;
  }

  /** After sending entries up to n in Replicate state: assume they will arrive. */
  optimisticUpdate(n: number): void {
    this.next = n + 1;
  }

  /**
   * A rejection of an App whose previous index was `rejected`; `hint` is the
   * highest index that might match. Returns false for a stale rejection.
   */
  maybeDecrTo(rejected: number, hint: number): boolean {
    if (this.state === ProgressState.Snapshot) return false;
    if (this.state === ProgressState.Replicate) {
      // Anything at or below match was already acknowledged: this is a stale, reordered reply.
      if (rejected <= this.match) return false;
      this.next = this.match + 1;
      return true;
    }
    // In Probe only the answer to the one outstanding probe (prev index next-1) counts.
    if (this.next - 1 !== rejected) return false;
    this.next = Math.max(Math.min(rejected, hint + 1), this.match + 1, 1);
    this.probeSent = false;
    return true;
  }

  isPaused(): boolean {
    switch (this.state) {
      case ProgressState.Probe:
        return this.probeSent;
      case ProgressState.Replicate:
        return this.inflights.full();
      case ProgressState.Snapshot:
        return true;
    }
  }
}
