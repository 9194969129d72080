// The KV service: validate like etcd's v3rpc layer, then read locally or
// propose the write to the member's log.
import type { CompactionRequest, DeleteRangeRequest, PutRequest, RangeRequest, RequestOp, TxnRequest } from "../gen/etcdserverpb/rpc_pb.js";
import type { Member } from "../server/member.js";
import { validateDeleteRange, validatePut, validateRange, validateTxn } from "../mvcc/validate.js";
import type { ServiceImpl } from "./context.js";

export function kvService(member: Member, maxTxnOps: number): ServiceImpl {
  return {
    range(req: RangeRequest) {
      validateRange(req);
      return member.range(req);
    },
    put(req: PutRequest) {
      validatePut(req);
      return member.propose({ case: "put", value: req });
    },
    deleteRange(req: DeleteRangeRequest) {
      validateDeleteRange(req);
      return member.propose({ case: "deleteRange", value: req });
    },
    txn(req: TxnRequest) {
      validateTxn(req, maxTxnOps);
      if (isReadOnly(req)) return member.readTxn(req, isSerializable(req));
      return member.propose({ case: "txn", value: req });
    },
    compact(req: CompactionRequest) {
      return member.propose({ case: "compaction", value: req });
    },
  };
}

/** etcd's isTxnSerializable: every op a serializable range (a nested txn is not). */
function isSerializable(req: TxnRequest): boolean {
  const ser = (op: RequestOp): boolean => op.request.case === "requestRange" && op.request.value.serializable;
  return req.success.every(ser) && req.failure.every(ser);
}

function isReadOnly(req: TxnRequest): boolean {
  const readOnlyOp = (op: RequestOp): boolean => op.request.case === "requestRange" || (op.request.case === "requestTxn" && isReadOnly(op.request.value));
  return req.success.every(readOnlyOp) && req.failure.every(readOnlyOp);
}
