// Core data types of the Raft state machine. Plain data only: the driver
// (server/) encodes these for the wire and for storage; raft/ never does I/O.
import { type Assert, assertWith } from "../assert.ts";

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
  /** Leader to transferee: campaign now, ignoring the election timeout and leases. */
  TimeoutNow = "TimeoutNow",
  /** Local or forwarded: ask the leader to hand leadership to `from`. */
  TransferLeader = "TransferLeader",
  /** Leader to a follower behind the compacted log: install `snapshot`. */
  Snap = "Snap",
  /** Local: the driver reports whether a snapshot reached `from` (reject = failed). */
  SnapStatus = "SnapStatus",
  /** Local: the driver could not reach `from`; its progress goes back to probing. */
  Unreachable = "Unreachable",
}

/** Who votes and who only replicates. Every id is in at most one of the lists. */
export interface ConfState {
  voters: NodeId[];
  learners: NodeId[];
}

export enum ConfChangeType {
  /** Add a voter, or promote a learner to voter. */
  AddNode = 0,
  RemoveNode = 1,
  /** etcd's ConfChangeUpdateNode: no effect on the configuration; the application updates member data (peer URLs). */
  UpdateNode = 2,
  /** Add a learner (a voter cannot be demoted this way: that would need joint consensus). */
  AddLearnerNode = 3,
}

/**
 * One membership change (etcd's raftpb.ConfChange v1). Changes go one at a
 * time: a new one is accepted only after the previous one is applied, so any
 * two configurations in effect at once differ by one voter and their
 * majorities overlap.
 */
export interface ConfChange {
  type: ConfChangeType;
  nodeId: NodeId;
  /** Opaque to raft (etcd puts the member's JSON here). */
  context: Uint8Array;
}

export interface SnapshotMeta {
  index: number;
  term: number;
  confState: ConfState;
}

/** The application's state as of `meta.index`, with the membership at that point. */
export interface Snapshot {
  meta: SnapshotMeta;
  data: Uint8Array;
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
  /** Snap only. */
  snapshot?: Snapshot;
}

/** Shared empty entry list (never mutated). */
const NO_ENTRIES: Entry[] = [];

/** Build a message with defaults, so call sites only name what matters. */
export function msg(m: Partial<Message> & { type: MessageType }): Message {
  // Field by field rather than a spread over defaults: this runs for every message.
  const out: Message = {
    type: m.type,
    from: m.from ?? NONE,
    to: m.to ?? NONE,
    term: m.term ?? 0,
    logTerm: m.logTerm ?? 0,
    index: m.index ?? 0,
    entries: m.entries ?? NO_ENTRIES,
    commit: m.commit ?? 0,
    reject: m.reject ?? false,
    rejectHint: m.rejectHint ?? 0,
    context: m.context ?? EMPTY,
  };
  if (m.snapshot !== undefined) out.snapshot = m.snapshot;
  return out;
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
  /**
   * A snapshot from the leader to install: persist it (storage.applySnapshot)
   * and load its data into the application before anything else in this Ready.
   */
  snapshot?: Snapshot;
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
export const invariant: Assert = assertWith("raft invariant violated");

/** Why a proposal, read or transfer request was dropped. */
export type DropReason =
  | "no-leader"
  /** A leadership transfer is in progress: retry once it finishes. */
  | "transferring"
  /** A membership change is not yet applied: one change at a time. */
  | "conf-change-pending"
  /** The request is invalid for the current membership (e.g. unknown or learner transferee). */
  | "invalid";

/** Result of a proposal or read request. */
export type ProposeResult = { ok: true } | { ok: false; reason: DropReason };
