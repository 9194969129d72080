// Applies one logged request to the state machine. Deterministic: the same
// request on the same state gives the same result on every member and on
// every replay, which is what makes the log the source of truth.
import type { InternalRequest } from "../gen/tsetcdpb/internal_pb.js";
import type { MvccStore } from "../mvcc/store.js";
import { create } from "@bufbuild/protobuf";
import { CompactionResponseSchema, ResponseHeaderSchema } from "../gen/etcdserverpb/rpc_pb.js";

export type ApplyResult = unknown;

export function applyRequest(store: MvccStore, req: InternalRequest["request"]): ApplyResult {
  switch (req.case) {
    case "put":
      return store.put(req.value);
    case "deleteRange":
      return store.deleteRange(req.value);
    case "txn":
      return store.txn(req.value);
    case "compaction":
      store.compact(Number(req.value.revision));
      return create(CompactionResponseSchema, {
        header: create(ResponseHeaderSchema, { revision: BigInt(store.rev) }),
      });
    default:
      throw new Error(`apply: log entry carries no request (${String(req.case)})`);
  }
}
