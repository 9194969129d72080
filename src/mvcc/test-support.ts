// Helpers shared by the mvcc tests: request builders and the two backends
// behind one small interface (not used by production code).

import { Database } from "bun:sqlite";
import { create } from "@bufbuild/protobuf";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  type Compare,
  Compare_CompareResult,
  Compare_CompareTarget,
  CompareSchema,
  type DeleteRangeRequest,
  DeleteRangeRequestSchema,
  type PutRequest,
  PutRequestSchema,
  type RangeRequest,
  RangeRequestSchema,
  type RequestOp,
  RequestOpSchema,
  type TxnRequest,
  TxnRequestSchema,
} from "../gen/etcdserverpb/rpc_pb";
import type { Event } from "../gen/mvccpb/kv_pb";
import { openDatabase } from "../storage/db";
import type { KvBackend } from "./backend";
import { MemoryKvBackend } from "./memory-backend";
import { SqliteKvBackend } from "./sqlite-backend";
import { MvccStore } from "./store";

export const enc = (s: string) => new TextEncoder().encode(s);
export const dec = (b: Uint8Array) => new TextDecoder().decode(b);

export type Init<T> = Partial<Omit<T, "$typeName" | "key">>;

export const rangeReq = (key: string | Uint8Array, o: Init<RangeRequest> = {}): RangeRequest =>
  create(RangeRequestSchema, { key: typeof key === "string" ? enc(key) : key, ...o });
export const putReq = (key: string, value: string, o: Init<PutRequest> = {}): PutRequest =>
  create(PutRequestSchema, { key: enc(key), value: enc(value), ...o });
export const delReq = (key: string | Uint8Array, o: Init<DeleteRangeRequest> = {}): DeleteRangeRequest =>
  create(DeleteRangeRequestSchema, { key: typeof key === "string" ? enc(key) : key, ...o });
export const txnReq = (compare: Compare[], success: RequestOp[], failure: RequestOp[] = []): TxnRequest =>
  create(TxnRequestSchema, { compare, success, failure });

export const opRange = (r: RangeRequest) => create(RequestOpSchema, { request: { case: "requestRange", value: r } });
export const opPut = (r: PutRequest) => create(RequestOpSchema, { request: { case: "requestPut", value: r } });
export const opDel = (r: DeleteRangeRequest) => create(RequestOpSchema, { request: { case: "requestDeleteRange", value: r } });
export const opTxn = (r: TxnRequest) => create(RequestOpSchema, { request: { case: "requestTxn", value: r } });

type Target = "version" | "createRevision" | "modRevision" | "value" | "lease";
const targetEnum: Record<Target, Compare_CompareTarget> = {
  version: Compare_CompareTarget.VERSION,
  createRevision: Compare_CompareTarget.CREATE,
  modRevision: Compare_CompareTarget.MOD,
  value: Compare_CompareTarget.VALUE,
  lease: Compare_CompareTarget.LEASE,
};
const resultEnum = {
  "=": Compare_CompareResult.EQUAL,
  "!=": Compare_CompareResult.NOT_EQUAL,
  ">": Compare_CompareResult.GREATER,
  "<": Compare_CompareResult.LESS,
} as const;

export function cmp(key: string, target: Target, result: keyof typeof resultEnum, v: bigint | number | string, rangeEnd?: string): Compare {
  const value = target === "value" ? enc(String(v)) : BigInt(v);
  return create(CompareSchema, {
    key: enc(key),
    rangeEnd: rangeEnd === undefined ? new Uint8Array(0) : enc(rangeEnd),
    target: targetEnum[target],
    result: resultEnum[result],
    targetUnion: { case: target, value } as Compare["targetUnion"],
  });
}

/** A store on a backend, with what the tests need to inspect and restart it. */
export interface Env {
  name: string;
  store: MvccStore;
  backend: KvBackend;
  events: { rev: number; events: Event[] }[];
  /** Runs one request as the apply loop does (SQLite: inside one transaction, committed even on error). */
  apply<T>(f: () => T): T;
  /** Closes and reopens the storage (SQLite only); returns a new store. */
  reopen?(): MvccStore;
  close(): void;
}

export type EnvOptions = { leaseExists?: (id: bigint) => boolean };

function attach(env: Omit<Env, "store">, store: MvccStore): Env {
  const e = env as Env;
  e.store = store;
  store.onEvents = (rev, events) => e.events.push({ rev, events });
  return e;
}

export function memoryEnv(o: EnvOptions = {}): Env {
  const backend = new MemoryKvBackend();
  return attach({ name: "memory", backend, events: [], apply: (f) => f(), close() {} }, new MvccStore(backend, o));
}

export function sqliteEnv(o: EnvOptions = {}): Env {
  const dir = mkdtempSync(join(tmpdir(), "tsetcd-mvcc-"));
  const path = join(dir, "db", "tsetcd.db");
  let db: Database = openDatabase(path);
  // Tests do not need durability; the fsync per commit would dominate their run time.
  db.exec("PRAGMA synchronous = OFF");
  const env = {
    name: "sqlite",
    backend: new SqliteKvBackend(db) as KvBackend,
    events: [] as Env["events"],
    apply<T>(f: () => T): T {
      // Committed even when f throws: a request that failed must have written nothing.
      db.exec("BEGIN");
      try {
        return f();
      } finally {
        db.exec("COMMIT");
      }
    },
    reopen(): MvccStore {
      db.close();
      db = openDatabase(path);
      db.exec("PRAGMA synchronous = OFF");
      env.backend = new SqliteKvBackend(db);
      return attach(env, new MvccStore(env.backend, o)).store;
    },
    close() {
      db.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return attach(env, new MvccStore(env.backend, o));
}

export const backends: [string, (o?: EnvOptions) => Env][] = [
  ["memory", memoryEnv],
  ["sqlite", sqliteEnv],
];

export { mulberry32 } from "../testing/prng";
