// Randomized differential test: the same seeded sequence of random (valid)
// requests runs on MvccStore over both backends and on a deliberately naive
// reference model (whole history in one array, every read recomputed from
// it, no physical compaction); every response, error, event and revision
// must agree. A failure names its seed; replay it alone with
//   MVCC_SEED=<seed> npx bun test src/mvcc/store-random.test.ts
// (MVCC_SEEDS=<n> runs more seeds.)

import { describe, test } from "bun:test";
import { create, type DescMessage, type MessageShape, toJsonString } from "@bufbuild/protobuf";
import {
  type Compare,
  Compare_CompareResult,
  Compare_CompareTarget,
  type DeleteRangeRequest,
  DeleteRangeRequestSchema,
  type DeleteRangeResponse,
  DeleteRangeResponseSchema,
  type PutRequest,
  PutRequestSchema,
  type PutResponse,
  PutResponseSchema,
  type RangeRequest,
  RangeRequest_SortOrder,
  RangeRequest_SortTarget,
  RangeRequestSchema,
  type RangeResponse,
  RangeResponseSchema,
  type RequestOp,
  ResponseHeaderSchema,
  type ResponseOp,
  ResponseOpSchema,
  type TxnRequest,
  TxnRequestSchema,
  type TxnResponse,
  TxnResponseSchema,
} from "../gen/etcdserverpb/rpc_pb";
import { type Event, Event_EventType, EventSchema, type KeyValue, KeyValueSchema } from "../gen/mvccpb/kv_pb";
import { Errors } from "../errors";
import { bytesToKeyString, getPrefix, keyStringToBytes } from "./key-range";
import { cmp, type Env, memoryEnv, mulberry32, opDel, opPut, opRange, opTxn, sqliteEnv } from "./test-support";
import { validateDeleteRange, validatePut, validateRange, validateTxn } from "./validate";

// ---------------------------------------------------------------- the model

interface Rec {
  key: string; // latin1, one char per byte
  value: Uint8Array;
  create: number;
  mod: number;
  version: number;
  lease: bigint;
  tomb: boolean;
}

interface Ctx {
  begin: number;
  writes: number;
  events: Event[];
}

const bigCmp = (a: bigint, b: bigint) => (a < b ? -1 : a > b ? 1 : 0);
const strCmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** The key predicate of (key, range_end) per etcd, on latin1 strings. */
function matcher(key: Uint8Array, rangeEnd: Uint8Array): (k: string) => boolean {
  const start = bytesToKeyString(key);
  if (rangeEnd.length === 0) return (k) => k === start;
  if (rangeEnd.length === 1 && rangeEnd[0] === 0) return (k) => k >= start;
  const end = bytesToKeyString(rangeEnd);
  return (k) => k >= start && k < end;
}

class Model {
  hist: Rec[] = [];
  rev = 1;
  compactRev = -1;
  constructor(private readonly leaseOk: (id: bigint) => boolean) {}

  clone(): Model {
    const m = new Model(this.leaseOk);
    m.hist = this.hist.slice();
    m.rev = this.rev;
    m.compactRev = this.compactRev;
    return m;
  }

  private live(rev: number): Map<string, Rec> {
    const m = new Map<string, Rec>();
    for (const r of this.hist) {
      if (r.mod > rev) continue;
      if (r.tomb) m.delete(r.key);
      else m.set(r.key, r);
    }
    return m;
  }

  private kv(r: Rec): KeyValue {
    return create(KeyValueSchema, {
      key: keyStringToBytes(r.key),
      value: r.value,
      createRevision: BigInt(r.create),
      modRevision: BigInt(r.mod),
      version: BigInt(r.version),
      lease: r.lease,
    });
  }

  private cur(ctx: Ctx): number {
    return ctx.writes > 0 ? ctx.begin + 1 : ctx.begin;
  }

  private newCtx(): Ctx {
    return { begin: this.rev, writes: 0, events: [] };
  }

  private end(ctx: Ctx): Event[] {
    if (ctx.writes > 0) this.rev = ctx.begin + 1;
    return ctx.events;
  }

  range(req: RangeRequest): RangeResponse {
    return this.rangeIn(req, this.newCtx());
  }

  put(req: PutRequest): { resp: PutResponse; events: Event[] } {
    if (req.lease !== 0n && !this.leaseOk(req.lease)) throw Errors.leaseNotFound();
    const ctx = this.newCtx();
    const resp = this.putIn(req, ctx);
    return { resp, events: this.end(ctx) };
  }

  del(req: DeleteRangeRequest): { resp: DeleteRangeResponse; events: Event[] } {
    const ctx = this.newCtx();
    const resp = this.delIn(req, ctx);
    return { resp, events: this.end(ctx) };
  }

  txn(req: TxnRequest): { resp: TxnResponse; events: Event[] } {
    // Find the errors etcd finds up front: a dry run on a copy with the put
    // checks, then the revisions of the ranges the txn will run.
    this.clone().runTxn(req, this.newCtx(), this.rev, "puts");
    this.runTxn(req, this.newCtx(), this.rev, "ranges");
    const ctx = this.newCtx();
    const resp = this.runTxn(req, ctx, this.rev, "run");
    resp.header = create(ResponseHeaderSchema, { revision: BigInt(this.cur(ctx)) });
    return { resp, events: this.end(ctx) };
  }

  /**
   * The history rows storage must still hold: per key, everything after the
   * compact revision plus the newest revision at or before it unless that is
   * a tombstone. (Successive compactions add up to one at the last revision.)
   */
  retained(): KeyValue[] {
    const newestAtCompact = new Map<string, Rec>();
    for (const r of this.hist) if (r.mod <= this.compactRev) newestAtCompact.set(r.key, r);
    return this.hist
      .filter((r) => r.mod > this.compactRev || (newestAtCompact.get(r.key) === r && !r.tomb))
      .map((r) => (r.tomb ? create(KeyValueSchema, { key: keyStringToBytes(r.key), modRevision: BigInt(r.mod) }) : this.kv(r)));
  }

  compact(rev: number): void {
    if (rev <= this.compactRev) throw Errors.compacted();
    if (rev > this.rev) throw Errors.futureRev();
    this.compactRev = rev; // nothing is removed: reads at >= rev must not be able to tell
  }

  private rangeIn(req: RangeRequest, ctx: Ctx): RangeResponse {
    const cur = this.cur(ctx);
    let rev = Number(req.revision);
    if (rev > cur) throw Errors.futureRev();
    if (rev <= 0) rev = cur;
    if (rev < this.compactRev) throw Errors.compacted();
    const live = this.live(rev);
    const match = matcher(req.key, req.rangeEnd);
    const all = [...live.keys()]
      .filter(match)
      .sort(strCmp)
      .map((k) => this.kv(live.get(k)!));
    const resp = create(RangeResponseSchema, { header: { revision: BigInt(cur) }, count: BigInt(all.length) });
    if (req.countOnly) return resp;
    const limit = Number(req.limit);
    const filtering = req.minModRevision !== 0n || req.maxModRevision !== 0n || req.minCreateRevision !== 0n || req.maxCreateRevision !== 0n;
    let kvs = req.sortOrder === RangeRequest_SortOrder.NONE && !filtering && limit > 0 ? all.slice(0, limit + 1) : all;
    kvs = kvs.filter(
      (kv) =>
        !(req.maxModRevision !== 0n && kv.modRevision > req.maxModRevision) &&
        !(req.minModRevision !== 0n && kv.modRevision < req.minModRevision) &&
        !(req.maxCreateRevision !== 0n && kv.createRevision > req.maxCreateRevision) &&
        !(req.minCreateRevision !== 0n && kv.createRevision < req.minCreateRevision),
    );
    let order = req.sortOrder;
    if (req.sortTarget !== RangeRequest_SortTarget.KEY && order === RangeRequest_SortOrder.NONE) {
      order = RangeRequest_SortOrder.ASCEND;
    }
    if (order !== RangeRequest_SortOrder.NONE) {
      const by = (kv: KeyValue): bigint | string => {
        switch (req.sortTarget) {
          case RangeRequest_SortTarget.VERSION:
            return kv.version;
          case RangeRequest_SortTarget.CREATE:
            return kv.createRevision;
          case RangeRequest_SortTarget.MOD:
            return kv.modRevision;
          case RangeRequest_SortTarget.VALUE:
            return bytesToKeyString(kv.value);
          default:
            return bytesToKeyString(kv.key);
        }
      };
      const sign = order === RangeRequest_SortOrder.DESCEND ? -1 : 1;
      kvs = kvs
        .map((kv, i) => ({ kv, i }))
        .sort((x, y) => {
          const a = by(x.kv);
          const b = by(y.kv);
          const c = typeof a === "bigint" ? bigCmp(a, b as bigint) : strCmp(a, b as string);
          return c !== 0 ? sign * c : x.i - y.i;
        })
        .map((x) => x.kv);
    }
    if (limit > 0 && kvs.length > limit) {
      kvs = kvs.slice(0, limit);
      resp.more = true;
    }
    if (req.keysOnly) for (const kv of kvs) kv.value = new Uint8Array(0);
    resp.kvs = kvs;
    return resp;
  }

  private putIn(req: PutRequest, ctx: Ctx): PutResponse {
    const key = bytesToKeyString(req.key);
    const prevRec = this.live(this.cur(ctx)).get(key);
    if ((req.ignoreValue || req.ignoreLease) && prevRec === undefined) throw Errors.keyNotFound();
    const main = ctx.begin + 1;
    ctx.writes++;
    const rec: Rec = {
      key,
      value: req.ignoreValue ? prevRec!.value : req.value,
      create: prevRec ? prevRec.create : main,
      mod: main,
      version: prevRec ? prevRec.version + 1 : 1,
      lease: req.ignoreLease ? prevRec!.lease : req.lease,
      tomb: false,
    };
    this.hist.push(rec);
    const prev = prevRec && this.kv(prevRec);
    ctx.events.push(create(EventSchema, { type: Event_EventType.PUT, kv: this.kv(rec), prevKv: prev }));
    return create(PutResponseSchema, { header: { revision: BigInt(main) }, prevKv: req.prevKv ? prev : undefined });
  }

  private delIn(req: DeleteRangeRequest, ctx: Ctx): DeleteRangeResponse {
    const live = this.live(this.cur(ctx));
    const match = matcher(req.key, req.rangeEnd);
    const gone = [...live.keys()].filter(match).sort(strCmp);
    const prevKvs = gone.map((k) => this.kv(live.get(k)!));
    const main = ctx.begin + 1;
    for (const [i, k] of gone.entries()) {
      ctx.writes++;
      this.hist.push({ key: k, value: new Uint8Array(0), create: 0, mod: main, version: 0, lease: 0n, tomb: true });
      const kv = create(KeyValueSchema, { key: keyStringToBytes(k), modRevision: BigInt(main) });
      ctx.events.push(create(EventSchema, { type: Event_EventType.DELETE, kv, prevKv: prevKvs[i] }));
    }
    return create(DeleteRangeResponseSchema, {
      header: { revision: BigInt(this.cur(ctx)) },
      deleted: BigInt(gone.length),
      prevKvs: req.prevKv ? prevKvs : [],
    });
  }

  private holds(c: Compare, at: number): boolean {
    const live = this.live(at);
    const match = matcher(c.key, c.rangeEnd);
    const kvs = [...live.keys()].filter(match).map((k) => this.kv(live.get(k)!));
    if (kvs.length === 0) {
      if (c.target === Compare_CompareTarget.VALUE) return false;
      kvs.push(create(KeyValueSchema));
    }
    return kvs.every((kv) => {
      const u = c.targetUnion;
      let r = 0;
      if (c.target === Compare_CompareTarget.VALUE) {
        r = strCmp(bytesToKeyString(kv.value), u.case === "value" ? bytesToKeyString(u.value) : "");
      } else {
        const pick: Record<number, [bigint, string]> = {
          [Compare_CompareTarget.VERSION]: [kv.version, "version"],
          [Compare_CompareTarget.CREATE]: [kv.createRevision, "createRevision"],
          [Compare_CompareTarget.MOD]: [kv.modRevision, "modRevision"],
          [Compare_CompareTarget.LEASE]: [kv.lease, "lease"],
        };
        const [have, name] = pick[c.target];
        r = bigCmp(have, u.case === name ? (u.value as bigint) : 0n);
      }
      switch (c.result) {
        case Compare_CompareResult.EQUAL:
          return r === 0;
        case Compare_CompareResult.NOT_EQUAL:
          return r !== 0;
        case Compare_CompareResult.GREATER:
          return r > 0;
        default:
          return r < 0;
      }
    });
  }

  /** mode: "puts" = dry run checking puts, "ranges" = check range revisions only, "run" = apply. */
  private runTxn(req: TxnRequest, ctx: Ctx, start: number, mode: "puts" | "ranges" | "run"): TxnResponse {
    const ok = req.compare.every((c) => this.holds(c, start));
    const ops = ok ? req.success : req.failure;
    const responses: ResponseOp[] = [];
    for (const op of ops) {
      const r = op.request;
      let response: ResponseOp["response"] = { case: undefined };
      if (r.case === "requestRange") {
        if (mode === "ranges") {
          const rev = Number(r.value.revision);
          if (rev !== 0 && rev > start) throw Errors.futureRev();
          if (rev !== 0 && rev < this.compactRev) throw Errors.compacted();
        } else if (mode === "run") {
          response = { case: "responseRange", value: this.rangeIn(r.value, ctx) };
        }
      } else if (r.case === "requestPut") {
        if (mode === "puts") {
          const exists = this.live(this.cur(ctx)).has(bytesToKeyString(r.value.key));
          if ((r.value.ignoreValue || r.value.ignoreLease) && !exists) throw Errors.keyNotFound();
          if (r.value.lease !== 0n && !this.leaseOk(r.value.lease)) throw Errors.leaseNotFound();
        }
        if (mode !== "ranges") response = { case: "responsePut", value: this.putIn(r.value, ctx) };
      } else if (r.case === "requestDeleteRange") {
        if (mode !== "ranges") response = { case: "responseDeleteRange", value: this.delIn(r.value, ctx) };
      } else if (r.case === "requestTxn") {
        response = { case: "responseTxn", value: this.runTxn(r.value, ctx, start, mode) };
      }
      responses.push(create(ResponseOpSchema, { response }));
    }
    return create(TxnResponseSchema, { header: {}, succeeded: ok, responses });
  }
}

// ---------------------------------------------------------------- random requests

const KEYS = ["a", "b", "c", "d", "ab", "a\x00", "\x00", "\xff", "\xff\xff", "e"];
const VALUES = ["", "1", "2", "10", "x", "\x00", "\xff"];

class Gen {
  constructor(
    readonly rnd: () => number,
    readonly rev: () => number,
  ) {}
  int(n: number): number {
    return Math.floor(this.rnd() * n);
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)];
  }
  chance(p: number): boolean {
    return this.rnd() < p;
  }
  key(): Uint8Array {
    return keyStringToBytes(this.pick(KEYS));
  }
  value(): Uint8Array {
    return keyStringToBytes(this.pick(VALUES));
  }
  rangeEnd(key: Uint8Array): Uint8Array {
    switch (this.int(5)) {
      case 0:
      case 1:
        return new Uint8Array(0);
      case 2:
        return new Uint8Array([0]);
      case 3:
        return getPrefix(key);
      default:
        return this.key();
    }
  }
  revision(): bigint {
    if (this.chance(0.6)) return 0n;
    return BigInt(this.int(this.rev() + 3) - 1);
  }
  lease(): bigint {
    return this.pick([0n, 0n, 0n, 7n, 7n, 9n, 8n]);
  }

  range(): RangeRequest {
    const key = this.chance(0.1) ? new Uint8Array([0]) : this.key();
    const f = (p: number) => (this.chance(p) ? BigInt(this.int(this.rev() + 1)) : 0n);
    return create(RangeRequestSchema, {
      key,
      rangeEnd: this.rangeEnd(key),
      limit: this.chance(0.4) ? BigInt(this.int(5) - 1) : 0n,
      revision: this.revision(),
      sortOrder: this.chance(0.5) ? 0 : this.int(3),
      sortTarget: this.chance(0.5) ? 0 : this.int(5),
      keysOnly: this.chance(0.2),
      countOnly: this.chance(0.1),
      minModRevision: f(0.1),
      maxModRevision: f(0.1),
      minCreateRevision: f(0.1),
      maxCreateRevision: f(0.1),
    });
  }

  put(): PutRequest {
    const ignoreValue = this.chance(0.15);
    const ignoreLease = this.chance(0.15);
    return create(PutRequestSchema, {
      key: this.key(),
      value: ignoreValue ? new Uint8Array(0) : this.value(),
      lease: ignoreLease ? 0n : this.lease(),
      prevKv: this.chance(0.4),
      ignoreValue,
      ignoreLease,
    });
  }

  del(): DeleteRangeRequest {
    const key = this.key();
    return create(DeleteRangeRequestSchema, { key, rangeEnd: this.chance(0.6) ? new Uint8Array(0) : this.rangeEnd(key), prevKv: this.chance(0.5) });
  }

  compare(): Compare {
    const targets = ["version", "createRevision", "modRevision", "value", "lease"] as const;
    const target = this.pick(targets);
    const v = target === "value" ? this.pick(VALUES) : target === "lease" ? this.pick([0, 7, 9]) : this.int(this.rev() + 2);
    const c = cmp("a", target, this.pick(["=", "!=", ">", "<"] as const), v);
    c.key = this.key();
    if (this.chance(0.2)) c.rangeEnd = this.rangeEnd(c.key);
    return c;
  }

  ops(depth: number): RequestOp[] {
    return Array.from({ length: this.int(4) }, () => {
      switch (this.int(depth < 2 ? 5 : 4)) {
        case 0:
          return opRange(this.range());
        case 1:
        case 2:
          return opPut(this.put());
        case 3:
          return opDel(this.del());
        default:
          return opTxn(this.txn(depth + 1));
      }
    });
  }

  txn(depth = 0): TxnRequest {
    return create(TxnRequestSchema, {
      compare: Array.from({ length: this.int(3) }, () => this.compare()),
      success: this.ops(depth),
      failure: this.ops(depth),
    });
  }
}

// ---------------------------------------------------------------- the comparison

type Outcome = { json: string; events: string; rev: number; compactRev: number };

function json<D extends DescMessage>(schema: D, m: MessageShape<D> | undefined): string {
  return m === undefined ? "-" : toJsonString(schema, m);
}
const eventsJson = (evs: Event[]) => evs.map((e) => toJsonString(EventSchema, e)).join("\n");

type Op =
  | { kind: "range"; req: RangeRequest }
  | { kind: "put"; req: PutRequest }
  | { kind: "delete"; req: DeleteRangeRequest }
  | { kind: "txn"; req: TxnRequest }
  | { kind: "compact"; rev: number };

function describeOp(op: Op): string {
  switch (op.kind) {
    case "range":
      return `range ${toJsonString(RangeRequestSchema, op.req)}`;
    case "put":
      return `put ${toJsonString(PutRequestSchema, op.req)}`;
    case "delete":
      return `delete ${toJsonString(DeleteRangeRequestSchema, op.req)}`;
    case "txn":
      return `txn ${toJsonString(TxnRequestSchema, op.req)}`;
    case "compact":
      return `compact ${op.rev}`;
  }
}

function onStore(env: Env, op: Op): Outcome {
  env.events.length = 0;
  const s = env.store;
  let out: string;
  try {
    out = env.apply(() => {
      switch (op.kind) {
        case "range":
          return json(RangeResponseSchema, s.range(op.req));
        case "put":
          return json(PutResponseSchema, s.put(op.req));
        case "delete":
          return json(DeleteRangeResponseSchema, s.deleteRange(op.req));
        case "txn":
          return json(TxnResponseSchema, s.txn(op.req));
        case "compact":
          s.compact(op.rev);
          return "compacted";
      }
    });
  } catch (e) {
    out = `error: ${(e as Error).message}`;
  }
  const events = env.events.map((x) => `@${x.rev}\n${eventsJson(x.events)}`).join("\n");
  return { json: out, events, rev: s.rev, compactRev: s.compactRev };
}

function onModel(m: Model, op: Op): Outcome {
  const before = m.rev;
  let out: string;
  let evs: Event[] = [];
  try {
    switch (op.kind) {
      case "range":
        out = json(RangeResponseSchema, m.range(op.req));
        break;
      case "put": {
        const r = m.put(op.req);
        out = json(PutResponseSchema, r.resp);
        evs = r.events;
        break;
      }
      case "delete": {
        const r = m.del(op.req);
        out = json(DeleteRangeResponseSchema, r.resp);
        evs = r.events;
        break;
      }
      case "txn": {
        const r = m.txn(op.req);
        out = json(TxnResponseSchema, r.resp);
        evs = r.events;
        break;
      }
      case "compact":
        m.compact(op.rev);
        out = "compacted";
        break;
    }
  } catch (e) {
    out = `error: ${(e as Error).message}`;
  }
  const events = evs.length > 0 ? `@${m.rev}\n${eventsJson(evs)}` : "";
  if (evs.length > 0 && m.rev !== before + 1) throw new Error("model: revision did not advance by one");
  return { json: out, events, rev: m.rev, compactRev: m.compactRev };
}

/** Draws the next valid request; invalid ones (per validate*) are drawn again. */
function nextOp(g: Gen, m: Model): Op {
  for (;;) {
    const k = g.rnd();
    try {
      if (k < 0.28) {
        const req = g.put();
        validatePut(req);
        return { kind: "put", req };
      }
      if (k < 0.5) {
        const req = g.range();
        validateRange(req);
        return { kind: "range", req };
      }
      if (k < 0.62) {
        const req = g.del();
        validateDeleteRange(req);
        return { kind: "delete", req };
      }
      if (k < 0.96) {
        const req = g.txn();
        validateTxn(req);
        return { kind: "txn", req };
      }
      return { kind: "compact", rev: m.compactRev + g.int(Math.max(2, m.rev - m.compactRev + 2)) - 1 };
    } catch {
      // rejected by validation: draw another
    }
  }
}

const STEPS = 300;

function runSeed(seed: number, steps: number): void {
  const leaseOk = (id: bigint) => id === 7n || id === 9n;
  const mem = memoryEnv({ leaseExists: leaseOk });
  const sql = sqliteEnv({ leaseExists: leaseOk });
  const model = new Model(leaseOk);
  const g = new Gen(mulberry32(seed), () => model.rev);
  const fail = (step: number, op: Op | null, what: string, want: unknown, got: unknown) => {
    const where = `seed=${seed} step=${step}${op ? `\n  op: ${describeOp(op)}` : ""}`;
    throw new Error(
      `mvcc random test failed (${what}) at ${where}\n  replay: MVCC_SEED=${seed} npx bun test src/mvcc/store-random.test.ts\n  model: ${JSON.stringify(want)}\n  store: ${JSON.stringify(got)}`,
    );
  };
  // Compaction must really remove rows, and only those no read at >= the compact revision needs.
  const checkRetained = (env: Env, step: number, op: Op | null) => {
    const have = env.backend.readHistory(0, 0).map((kv) => toJsonString(KeyValueSchema, kv));
    const want = model.retained().map((kv) => toJsonString(KeyValueSchema, kv));
    if (have.join("\n") !== want.join("\n")) fail(step, op, `${env.name} stored history`, want, have);
  };
  try {
    for (let step = 0; step < steps; step++) {
      const op = nextOp(g, model);
      const want = onModel(model, op);
      for (const env of [mem, sql]) {
        const got = onStore(env, op);
        for (const f of ["json", "events", "rev", "compactRev"] as const) {
          if (got[f] !== want[f]) fail(step, op, `${env.name} ${f}`, want[f], got[f]);
        }
        if (op.kind === "compact") checkRetained(env, step, op);
      }
    }
    for (const env of [mem, sql]) checkRetained(env, steps, null);
    // Every readable revision reads the same everywhere, also after reopening the file.
    sql.reopen!();
    if (sql.store.rev !== model.rev || sql.store.compactRev !== model.compactRev) {
      fail(steps, null, "revisions after reopen", [model.rev, model.compactRev], [sql.store.rev, sql.store.compactRev]);
    }
    for (let rev = Math.max(1, model.compactRev); rev <= model.rev; rev++) {
      const req = create(RangeRequestSchema, { key: new Uint8Array([0]), rangeEnd: new Uint8Array([0]), revision: BigInt(rev) });
      const op: Op = { kind: "range", req };
      const want = onModel(model, op).json;
      for (const env of [mem, sql]) {
        const got = onStore(env, op).json;
        if (got !== want) fail(steps, op, `${env.name} final read at ${rev}`, want, got);
      }
    }
  } finally {
    mem.close();
    sql.close();
  }
}

describe("MvccStore randomized against a reference model", () => {
  const only = process.env.MVCC_SEED;
  const count = Number(process.env.MVCC_SEEDS ?? 40);
  const seeds = only !== undefined ? [Number(only)] : Array.from({ length: count }, (_, i) => 1000 + i * 7919);
  for (const seed of seeds) {
    test(`seed ${seed}`, () => runSeed(seed, STEPS));
  }
});
