// Simulated clients of the key-value store. Each client has at most one
// request outstanding, sends it to a random node, and records call/return in
// the simulator's logical time so the history can be checked for
// linearizability. A request whose node crashes, or that is not answered
// within `timeout` steps, never returns (its effect is unknown) and the client
// moves on with a fresh request id, as a real client would after a timeout.
import type { KvInput, KvOutput } from "../../testing/linearizability/model.ts";
import type { Operation } from "../../testing/linearizability/history.ts";
import type { NodeId } from "../types.ts";
import { encodeCommand, type KvCommand, type KvStore } from "./kv.ts";

/** What the clients need from the cluster; false = the node refused (no leader known). */
export interface ClientHost {
  propose(node: NodeId, data: Uint8Array): boolean;
  readIndex(node: NodeId, ctx: string): boolean;
}

interface Waiting {
  client: number;
  node: NodeId;
  op: Operation<KvInput, KvOutput>;
  /** Read: the ReadIndex answer, once received; the read is served when applied >= it. */
  readIndex?: number;
  key: string; // byCmd / byCtx key, to forget the request on timeout or crash
  isRead: boolean;
}

const KEYS = ["x", "y", "z"];

export class Clients {
  readonly history: Operation<KvInput, KvOutput>[] = [];
  private busy: (Waiting | undefined)[];
  private reqs = 0;
  /** Last value each client saw per key: a CAS expecting it has a fair chance to succeed. */
  private seen: Map<string, string | null>[];
  private byCmd = new Map<string, Waiting>();
  private byCtx = new Map<string, Waiting>();
  stats = { calls: 0, returned: 0, timedOut: 0, lostInCrash: 0, refused: 0 };

  constructor(
    private readonly rand: () => number,
    private readonly host: ClientHost,
    count = 3,
    private readonly timeout = 300,
  ) {
    this.busy = Array(count).fill(undefined);
    this.seen = Array.from({ length: count }, () => new Map());
  }

  /** An idle client issues a new request to `node`. False when every client is busy. */
  issue(now: number, node: NodeId): boolean {
    const idle = this.busy.flatMap((w, i) => (w ? [] : [i]));
    if (idle.length === 0) return false;
    const client = idle[Math.floor(this.rand() * idle.length)];
    const key = KEYS[Math.floor(this.rand() * KEYS.length)];
    const id = `c${client}.${this.reqs++}`;
    const r = this.rand();
    let input: KvInput;
    if (r < 0.4) input = { op: "get", key };
    else if (r < 0.7) input = { op: "put", key, value: id };
    else {
      // Expect what this client last saw (or sometimes absent), so CAS both succeeds and fails.
      const expected = this.rand() < 0.2 ? null : (this.seen[client].get(key) ?? null);
      input = { op: "cas", key, expected, value: id };
    }
    const op: Operation<KvInput, KvOutput> = { clientId: client, input, call: now };
    const w: Waiting = { client, node, op, key: id, isRead: input.op === "get" };
    let accepted: boolean;
    if (input.op === "get") {
      this.byCtx.set(id, w);
      accepted = this.host.readIndex(node, id);
    } else {
      const cmd: KvCommand =
        input.op === "put" ? { id, op: "put", key, value: input.value } : { id, op: "cas", key, expected: input.expected, value: input.value };
      this.byCmd.set(id, w);
      accepted = this.host.propose(node, encodeCommand(cmd));
    }
    if (!accepted) {
      // Refused up front (no leader known): it never entered the log, so it had no
      // effect and is left out of the history; the client is free again.
      this.forget(w);
      this.stats.refused++;
      return true;
    }
    this.busy[client] = w;
    this.history.push(op);
    this.stats.calls++;
    return true;
  }

  /** A random node, from the clients' own stream. */
  pickNode(ids: NodeId[]): NodeId {
    return ids[Math.floor(this.rand() * ids.length)];
  }

  /** `node` learned the read index for request `ctx`. */
  readState(node: NodeId, ctx: string, index: number): void {
    const w = this.byCtx.get(ctx);
    if (w && w.node === node) w.readIndex = index;
  }

  /** `node` applied a client command with this result; answer it if this node was asked. */
  applied(node: NodeId, now: number, cmd: KvCommand, result: boolean | null): void {
    const w = this.byCmd.get(cmd.id);
    if (!w || w.node !== node) return;
    this.answer(w, now, cmd.op === "cas" ? result : null);
    if (cmd.op === "put" || result) this.seen[w.client].set(cmd.key, cmd.value);
  }

  /** Serve every read waiting at `node` whose read index is now applied (etcd's linearizable read). */
  serveReads(node: NodeId, now: number, appliedIndex: number, kv: KvStore): void {
    for (const w of this.busy) {
      if (!w || !w.isRead || w.node !== node || w.readIndex === undefined || appliedIndex < w.readIndex) continue;
      const value = kv.get(w.op.input.key);
      this.seen[w.client].set(w.op.input.key, value);
      this.answer(w, now, value);
    }
  }

  /** `node` crashed: requests waiting on it never return. */
  crashed(node: NodeId): void {
    for (const w of this.busy) if (w?.node === node) this.abandon(w, "lostInCrash");
  }

  /** Requests older than the timeout are abandoned (pending forever). */
  expire(now: number): void {
    for (const w of this.busy) if (w && now - w.op.call > this.timeout) this.abandon(w, "timedOut");
  }

  private answer(w: Waiting, now: number, output: KvOutput): void {
    w.op.output = output;
    w.op.ret = now;
    this.stats.returned++;
    this.forget(w);
  }

  private abandon(w: Waiting, why: "timedOut" | "lostInCrash"): void {
    this.stats[why]++;
    this.forget(w); // op.ret stays undefined: the checker treats it as maybe-applied
  }

  private forget(w: Waiting): void {
    (w.isRead ? this.byCtx : this.byCmd).delete(w.key);
    if (this.busy[w.client] === w) this.busy[w.client] = undefined;
  }
}
