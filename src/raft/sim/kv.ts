// The tiny key-value state machine every simulated node applies from its
// committed entries. Commands are JSON so they cannot be confused with the
// simulator's raw proposals ("s1p3", "final-1") or a new leader's empty entry,
// which the state machine skips.
import type { Entry } from "../types.ts";

/** A write as proposed: `id` is unique per client operation (a retry is a new id). */
export type KvCommand = { id: string; op: "put"; key: string; value: string } | { id: string; op: "cas"; key: string; expected: string | null; value: string };

const enc = new TextEncoder();
const dec = new TextDecoder();

export function encodeCommand(c: KvCommand): Uint8Array {
  return enc.encode(JSON.stringify(c));
}

export function decodeCommand(e: Entry): KvCommand | undefined {
  // 0x7b = "{": only client commands are JSON objects.
  if (e.data.byteLength === 0 || e.data[0] !== 0x7b) return undefined;
  return JSON.parse(dec.decode(e.data)) as KvCommand;
}

export interface KvState {
  data: [string, string][];
  done: [string, boolean | null][];
}

export class KvStore {
  readonly data = new Map<string, string>();
  /**
   * Results of commands already applied, by id. The network may duplicate a
   * forwarded proposal, so one command can be committed twice; applying it
   * only once (as etcd's lease/txn ids or a client session would) keeps a
   * stale second copy from overwriting later writes. Every node applies the
   * same log, so every node dedups the same way.
   */
  private done = new Map<string, boolean | null>();

  /** Apply a committed entry; returns the command and its result, or undefined if not a client command. */
  apply(e: Entry): { cmd: KvCommand; result: boolean | null } | undefined {
    const cmd = decodeCommand(e);
    if (!cmd) return undefined;
    const seen = this.done.get(cmd.id);
    if (seen !== undefined) return { cmd, result: seen };
    let result: boolean | null = null;
    if (cmd.op === "put") {
      this.data.set(cmd.key, cmd.value);
    } else {
      result = (this.data.get(cmd.key) ?? null) === cmd.expected;
      if (result) this.data.set(cmd.key, cmd.value);
    }
    this.done.set(cmd.id, result);
    return { cmd, result };
  }

  get(key: string): string | null {
    return this.data.get(key) ?? null;
  }

  /** The whole state as plain data, for a snapshot (JSON-serializable). */
  state(): KvState {
    return { data: [...this.data], done: [...this.done] };
  }

  static fromState(st: KvState): KvStore {
    const kv = new KvStore();
    for (const [k, v] of st.data) kv.data.set(k, v);
    for (const [k, v] of st.done) kv.done.set(k, v);
    return kv;
  }

  /** A short fingerprint of the state: equal states, equal digests. */
  digest(): string {
    const keys = [...this.data.keys()].sort();
    return `${keys.map((k) => `${k}=${this.data.get(k)}`).join(",")}#${this.done.size}`;
  }
}
