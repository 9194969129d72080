// A real gRPC client (HTTP/2, gRPC framing, trailers) for tests that need
// thousands of precise calls: connect-node's gRPC transport over the generated
// etcd service descriptors. etcdctl covers the CLI; this covers load.
import { createClient, type Client } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { KV, Lease, Maintenance } from "../../src/gen/etcdserverpb/rpc_pb.js";

export interface EtcdClient {
  kv: Client<typeof KV>;
  maintenance: Client<typeof Maintenance>;
  lease: Client<typeof Lease>;
}

export function grpcClient(clientUrl: string): EtcdClient {
  const transport = createGrpcTransport({ baseUrl: clientUrl });
  return { kv: createClient(KV, transport), maintenance: createClient(Maintenance, transport), lease: createClient(Lease, transport) };
}

export const enc = (s: string) => new TextEncoder().encode(s);
export const dec = (b: Uint8Array) => new TextDecoder().decode(b);
