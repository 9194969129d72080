// The v3lock service (etcd's etcdserver/api/v3lock): a Lock is a
// clientv3/concurrency Mutex on the caller's lease. The lock's key is
// "<name>/<lease id in hex>", created (if absent) with the lease; the caller
// holds the lock once every key under "<name>/" with a lower create revision
// is gone. The server never keeps the lease alive: the caller does, and an
// expired lease deletes the key and so releases the lock.
import { create } from "@bufbuild/protobuf";
import type { LockRequest, LockResponse, UnlockRequest, UnlockResponse } from "../gen/v3lockpb/v3lock_pb.js";
import { LockResponseSchema, UnlockResponseSchema } from "../gen/v3lockpb/v3lock_pb.js";
import type { CallContext, ServiceImpl } from "./context.js";
import { asUnknown, concat, type ConcurrencyDeps, createRevIs, firstCreateOp, getOp, InnerClient, leaseHex, putOp, txnRange, utf8 } from "./concurrency.js";

export function lockService(deps: ConcurrencyDeps): ServiceImpl {
  const c = new InnerClient(deps);
  return {
    async lock(req: LockRequest, ctx: CallContext): Promise<LockResponse> {
      try {
        return await lock(c, req, ctx.signal);
      } catch (err) {
        throw asUnknown(err);
      }
    },
    async unlock(req: UnlockRequest): Promise<UnlockResponse> {
      try {
        const r = await c.deleteRange({ key: req.key });
        return create(UnlockResponseSchema, { header: r.header });
      } catch (err) {
        throw asUnknown(err);
      }
    },
  };
}

async function lock(c: InnerClient, req: LockRequest, signal: AbortSignal): Promise<LockResponse> {
  const lease = await c.sessionLease(req.lease);
  const prefix = concat(req.name, utf8("/"));
  const key = concat(prefix, utf8(leaseHex(lease)));
  // Join the queue (or find our key from an earlier Lock on the same lease) and
  // read the current holder in the same transaction.
  const t = await c.txn({
    compare: [createRevIs(key, 0n)],
    success: [putOp(key, new Uint8Array(0), lease), firstCreateOp(prefix)],
    failure: [getOp(key), firstCreateOp(prefix)],
  });
  let myRev = t.header!.revision;
  if (!t.succeeded) myRev = txnRange(t, 0)[0]!.createRevision;
  const owner = txnRange(t, 1)[0];
  if (owner === undefined || owner.createRevision === myRev) {
    return create(LockResponseSchema, { header: t.header, key });
  }
  try {
    const header = await c.waitDeletes(prefix, myRev - 1n, signal);
    return create(LockResponseSchema, { header, key });
  } catch (err) {
    // As etcd's Mutex: a wait that fails (the caller went away) leaves the queue.
    await c.deleteRange({ key }).catch(() => {});
    throw err;
  }
}
