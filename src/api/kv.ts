// The KV service: validate like etcd's v3rpc layer, then hand the request to
// the server's RaftKV (reads are served locally, writes go through the log).
import type { CompactionRequest, DeleteRangeRequest, PutRequest, RangeRequest, TxnRequest } from "../gen/etcdserverpb/rpc_pb.js";
import { validateDeleteRange, validatePut, validateRange, validateTxn } from "../mvcc/validate.js";
import type { RaftKV } from "../server/v3-server.js";
import type { ServiceImpl } from "./context.js";

export function kvService(kv: RaftKV, maxTxnOps: number): ServiceImpl {
  return {
    range(req: RangeRequest) {
      validateRange(req);
      return kv.range(req);
    },
    put(req: PutRequest) {
      validatePut(req);
      return kv.put(req);
    },
    deleteRange(req: DeleteRangeRequest) {
      validateDeleteRange(req);
      return kv.deleteRange(req);
    },
    txn(req: TxnRequest) {
      validateTxn(req, maxTxnOps);
      return kv.txn(req);
    },
    compact(req: CompactionRequest) {
      return kv.compact(req);
    },
  };
}
