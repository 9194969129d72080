// Fake KV / Maintenance / Watch implementations for transport tests: enough
// behaviour to exercise unary calls, errors, cancellation, server streaming
// and bidi streaming without a member behind them.
import { create } from "@bufbuild/protobuf";
import {
  KV,
  Maintenance,
  PutResponseSchema,
  RangeResponseSchema,
  ResponseHeaderSchema,
  SnapshotResponseSchema,
  Watch,
  WatchResponseSchema,
  type PutRequest,
  type RangeRequest,
  type WatchRequest,
} from "../../gen/etcdserverpb/rpc_pb.js";
import { KeyValueSchema } from "../../gen/mvccpb/kv_pb.js";
import { Errors } from "../../errors.js";
import type { CallContext, ServiceRegistration } from "../context.js";

export const enc = (s: string) => new TextEncoder().encode(s);
export const dec = (b: Uint8Array) => new TextDecoder().decode(b);

export interface FakeOptions {
  /** Snapshot sends this many chunks, counting remaining_bytes down to 0. */
  snapshotChunks: number;
  snapshotChunkBytes: number;
  /** Called when a put of key "slow" (which waits for cancellation) is aborted. */
  onAbort?: () => void;
}

export function fakeServices(opts: FakeOptions): { services: ServiceRegistration[]; store: Map<string, Uint8Array> } {
  const store = new Map<string, Uint8Array>();
  const services: ServiceRegistration[] = [
    {
      service: KV,
      impl: {
        range(req: RangeRequest) {
          const v = store.get(dec(req.key));
          return create(RangeResponseSchema, { count: v ? 1n : 0n, kvs: v ? [create(KeyValueSchema, { key: req.key, value: v })] : [] });
        },
        async put(req: PutRequest, ctx: CallContext) {
          if (req.key.length === 0) throw Errors.emptyKey();
          if (dec(req.key) === "slow") {
            await new Promise((_, reject) =>
              ctx.signal.addEventListener("abort", () => {
                opts.onAbort?.();
                reject(ctx.signal.reason);
              }),
            );
          }
          store.set(dec(req.key), req.value);
          return create(PutResponseSchema, { header: create(ResponseHeaderSchema, { revision: BigInt(store.size) }) });
        },
      },
    },
    {
      service: Maintenance,
      impl: {
        async *snapshot() {
          for (let i = opts.snapshotChunks - 1; i >= 0; i--) {
            yield create(SnapshotResponseSchema, { remainingBytes: BigInt(i), blob: new Uint8Array(opts.snapshotChunkBytes).fill(i & 0xff) });
          }
        },
      },
    },
    {
      service: Watch,
      impl: {
        async *watch(reqs: AsyncIterable<WatchRequest>) {
          for await (const r of reqs) {
            if (r.requestUnion.case === "createRequest") yield create(WatchResponseSchema, { watchId: r.requestUnion.value.watchId, created: true });
          }
        },
      },
    },
  ];
  return { services, store };
}
