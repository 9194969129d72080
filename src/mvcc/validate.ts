// Request checks the API layer runs before proposing a KV request, with
// etcd's (v3rpc) rules, order and errors. They look only at the request; the
// checks that need the data (missing key for ignore_value, unknown lease,
// compacted/future revision) happen at apply time in MvccStore.

import type { DeleteRangeRequest, PutRequest, RangeRequest, RequestOp, TxnRequest } from "../gen/etcdserverpb/rpc_pb";
import { Errors } from "../errors";
import { bytesToKeyString } from "./key-range";

/** etcd's default --max-txn-ops. */
export const DEFAULT_MAX_TXN_OPS = 128;

export function validateRange(req: RangeRequest): void {
  if (req.key.length === 0) throw Errors.emptyKey();
}

export function validatePut(req: PutRequest): void {
  if (req.key.length === 0) throw Errors.emptyKey();
  if (req.ignoreValue && req.value.length !== 0) throw Errors.valueProvided();
  if (req.ignoreLease && req.lease !== 0n) throw Errors.leaseProvided();
}

export function validateDeleteRange(req: DeleteRangeRequest): void {
  if (req.key.length === 0) throw Errors.emptyKey();
}

/**
 * Shape checks first (op counts, empty keys, recursively), then the
 * overlap check per branch, which runs only on requests that passed the
 * first (it is quadratic-ish in the worst case).
 */
export function validateTxn(req: TxnRequest, maxTxnOps: number = DEFAULT_MAX_TXN_OPS): void {
  checkTxnShape(req, maxTxnOps);
  checkIntervals(req.success);
  checkIntervals(req.failure);
}

function checkTxnShape(req: TxnRequest, maxTxnOps: number): void {
  // The limit applies to each list separately; nested txns share what is left.
  const opc = Math.max(req.compare.length, req.success.length, req.failure.length);
  if (opc > maxTxnOps) throw Errors.tooManyOps();
  for (const c of req.compare) if (c.key.length === 0) throw Errors.emptyKey();
  for (const op of req.success) checkOp(op, maxTxnOps - opc);
  for (const op of req.failure) checkOp(op, maxTxnOps - opc);
}

function checkOp(op: RequestOp, maxTxnOps: number): void {
  const r = op.request;
  switch (r.case) {
    case "requestRange":
      return validateRange(r.value);
    case "requestPut":
      return validatePut(r.value);
    case "requestDeleteRange":
      return validateDeleteRange(r.value);
    case "requestTxn":
      return checkTxnShape(r.value, maxTxnOps);
    default:
      // an op with nothing in it
      throw Errors.keyNotFound();
  }
}

/**
 * A deleted interval as etcd's interval tree sees it: [begin, end) compared
 * as byte strings, where an empty end means "beyond every key". A point
 * delete is [k, k+"\0"), which contains only k. A delete's range_end is taken
 * literally (etcd does not expand "\0" here), so a from-key delete ([k, "\0"))
 * overlaps no put, exactly as in etcd 3.4.
 */
interface Interval {
  begin: string;
  end: string;
}

function contains(dels: Interval[], k: string): boolean {
  for (const d of dels) {
    if (k >= d.begin && (d.end === "" || k < d.end)) return true;
  }
  return false;
}

/**
 * No key may be put twice, or be put and deleted, in one branch of a txn,
 * including its nested txns (a nested txn's then and else branches may put
 * the same key: only one of them runs). Returns the puts and deletes of
 * `ops` so the enclosing level can check against them.
 */
function checkIntervals(ops: RequestOp[]): { puts: Set<string>; dels: Interval[] } {
  const dels: Interval[] = [];
  for (const op of ops) {
    if (op.request.case !== "requestDeleteRange") continue;
    const d = op.request.value;
    const begin = bytesToKeyString(d.key);
    dels.push({ begin, end: d.rangeEnd.length !== 0 ? bytesToKeyString(d.rangeEnd) : begin + "\0" });
  }

  const puts = new Set<string>();
  for (const op of ops) {
    if (op.request.case !== "requestTxn") continue;
    const then = checkIntervals(op.request.value.success);
    const otherwise = checkIntervals(op.request.value.failure);
    for (const k of then.puts) {
      if (puts.has(k) || contains(dels, k)) throw Errors.duplicateKey();
      puts.add(k);
    }
    for (const k of otherwise.puts) {
      if ((puts.has(k) && !then.puts.has(k)) || contains(dels, k)) throw Errors.duplicateKey();
      puts.add(k);
    }
    dels.push(...then.dels, ...otherwise.dels);
  }

  for (const op of ops) {
    if (op.request.case !== "requestPut") continue;
    const k = bytesToKeyString(op.request.value.key);
    if (puts.has(k) || contains(dels, k)) throw Errors.duplicateKey();
    puts.add(k);
  }
  return { puts, dels };
}
