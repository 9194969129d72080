// Core data types of the Raft state machine. Plain data only: the driver
// (server/) encodes these for the wire and for storage; raft/ never does I/O.

/** Member ids are 64-bit, like etcd's; 0n means "none". */
export type NodeId = bigint;
export const NONE: NodeId = 0n;

export enum EntryType {
  Normal = 0,
  ConfChange = 1,
}

export interface Entry {
  term: number;
  index: number;
  type: EntryType;
  data: Uint8Array;
}

/** What must be durable before any message that depends on it is sent. */
export interface HardState {
  term: number;
  vote: NodeId;
  commit: number;
}

export enum MessageType {
  Hup = "Hup", // local: start an election
  Beat = "Beat", // local: leader sends heartbeats
  Prop = "Prop",
  App = "App",
  AppResp = "AppResp",
  Vote = "Vote",
  VoteResp = "VoteResp",
  PreVote = "PreVote",
  PreVoteResp = "PreVoteResp",
  Heartbeat = "Heartbeat",
  HeartbeatResp = "HeartbeatResp",
  ReadIndex = "ReadIndex",
  ReadIndexResp = "ReadIndexResp",
  CheckQuorum = "CheckQuorum", // local
  TimeoutNow = "TimeoutNow", // TODO: leadership transfer
  Snap = "Snap", // TODO: snapshots
}

export interface Message {
  type: MessageType;
  from: NodeId;
  to: NodeId;
  term: number;
  /** Term of the entry at `index` (App: the entry preceding `entries`; votes: last log term). */
  logTerm: number;
  index: number;
  entries: Entry[];
  commit: number;
  reject: boolean;
  /** On a rejected App: the follower's best guess of the index to probe next. */
  rejectHint: number;
  /** ReadIndex request context, echoed back on heartbeats and responses. */
  context: Uint8Array;
}

/** Build a message with defaults, so call sites only name what matters. */
export function msg(m: Partial<Message> & { type: MessageType }): Message {
  return {
    from: NONE,
    to: NONE,
    term: 0,
    logTerm: 0,
    index: 0,
    entries: [],
    commit: 0,
    reject: false,
    rejectHint: 0,
    context: EMPTY,
    ...m,
  };
}

export const EMPTY = new Uint8Array(0);

export enum Role {
  Follower = "Follower",
  PreCandidate = "PreCandidate",
  Candidate = "Candidate",
  Leader = "Leader",
}

/** Volatile state worth reporting (not persisted). */
export interface SoftState {
  lead: NodeId;
  role: Role;
}

/** A ReadIndex answer: once applied >= index, a read for `context` is linearizable. */
export interface ReadState {
  index: number;
  context: Uint8Array;
}

export interface Ready {
  softState?: SoftState;
  /** Present only when changed since the last Ready. */
  hardState?: HardState;
  /** Persist these (after truncating any conflicting suffix) before sending `messages`. */
  entries: Entry[];
  /** Apply these, in order. */
  committedEntries: Entry[];
  messages: Message[];
  readStates: ReadState[];
}

export function isEmptyHardState(h: HardState): boolean {
  return h.term === 0 && h.vote === NONE && h.commit === 0;
}

export function hardStateEqual(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.vote === b.vote && a.commit === b.commit;
}

/** Size used for byte limits: payload plus a small fixed overhead. */
export function entrySize(e: Entry): number {
  return e.data.byteLength + 16;
}

/** Throw on a broken invariant: a bug here must never be silently survived. */
export function invariant(cond: unknown, what: string): asserts cond {
  if (!cond) throw new Error(`raft invariant violated: ${what}`);
}

/** Result of a proposal or read request. */
export type ProposeResult = { ok: true } | { ok: false; reason: "no-leader" };
