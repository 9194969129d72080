// Applies one logged request to the state machine. Deterministic: the same
// request on the same state gives the same result on every member and on
// every replay, which is what makes the log the source of truth.
import { create } from "@bufbuild/protobuf";
import {
  AlarmType,
  CompactionResponseSchema,
  LeaseCheckpointResponseSchema,
  LeaseGrantResponseSchema,
  LeaseRevokeResponseSchema,
  ResponseHeaderSchema,
  type RequestOp,
  type TxnRequest,
} from "../gen/etcdserverpb/rpc_pb.js";
import type { InternalRequest } from "../gen/tsetcdpb/internal_pb.js";
import type { MvccStore } from "../mvcc/store.js";
import { Errors } from "../errors.js";
import type { Lessor } from "../lease/lessor.js";
import type { Alarms } from "./alarms.js";

export interface StateMachine {
  store: MvccStore;
  alarms: Alarms;
  lessor: Lessor;
  /** A lease was revoked (by a client or by expiry): renewals waiting on it can answer. */
  leaseRevoked?(id: bigint): void;
}

export function applyRequest(sm: StateMachine, req: InternalRequest["request"]): unknown {
  const { store, alarms, lessor } = sm;
  const header = () => create(ResponseHeaderSchema, { revision: BigInt(store.rev) });
  switch (req.case) {
    case "put":
      if (alarms.has(AlarmType.NOSPACE)) throw Errors.noSpace();
      return store.put(req.value);
    case "deleteRange":
      return store.deleteRange(req.value);
    case "txn":
      if (alarms.has(AlarmType.NOSPACE) && txnPuts(req.value)) throw Errors.noSpace();
      return store.txn(req.value);
    case "compaction":
      store.compact(Number(req.value.revision));
      return create(CompactionResponseSchema, {
        header: header(),
      });
    case "alarm":
      return alarms.apply(req.value);
    case "leaseGrant": {
      // etcd's capped applier refuses new leases too while NOSPACE is raised.
      if (alarms.has(AlarmType.NOSPACE)) throw Errors.noSpace();
      const l = lessor.grant(req.value.ID, Number(req.value.TTL));
      return create(LeaseGrantResponseSchema, { header: header(), ID: l.id, TTL: BigInt(l.ttl) });
    }
    case "leaseRevoke": {
      const id = req.value.ID;
      lessor.revoke(id, (keys) => {
        if (keys.length > 0) store.deleteKeys(keys);
      });
      sm.leaseRevoked?.(id);
      return create(LeaseRevokeResponseSchema, { header: header() });
    }
    case "leaseCheckpoint":
      for (const cp of req.value.checkpoints) lessor.checkpoint(cp.ID, Number(cp.remainingTTL));
      return create(LeaseCheckpointResponseSchema, { header: header() });
    default:
      throw new Error(`apply: log entry carries no request (${String(req.case)})`);
  }
}

/** Whether a txn may add data (a put in any branch, nested included): refused while NOSPACE is active. */
function txnPuts(t: TxnRequest): boolean {
  const puts = (op: RequestOp): boolean => op.request.case === "requestPut" || (op.request.case === "requestTxn" && txnPuts(op.request.value));
  return t.success.some(puts) || t.failure.some(puts);
}
