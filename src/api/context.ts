// What a service implementation may use of the call it serves. Connect's
// HandlerContext satisfies this interface, and so does our gRPC layer's
// lighter context, so one implementation serves both transports.
import type { DescMethod, DescService } from "@bufbuild/protobuf";

export interface CallContext {
  /** Aborted when the client cancels, the deadline passes or the member stops. */
  readonly signal: AbortSignal;
  readonly requestHeader: { get(name: string): string | null };
}

/**
 * A transport-neutral implementation of some methods of a service, keyed by
 * the method's localName (Connect's ServiceImpl shape). Missing methods answer
 * UNIMPLEMENTED on every transport.
 */
export type ServiceImpl = Record<string, (input: any, ctx: CallContext) => any>;

/**
 * A response message may carry its own protobuf encoding under this key (a symbol, which no
 * serializer enumerates): the gRPC layer then sends those bytes instead of encoding the message again.
 * Other transports ignore it and encode the message itself, so both must say the same thing.
 */
export const ENCODED: unique symbol = Symbol("tsetcd.encoded");

/** What ENCODED holds: the encoding, or parts whose concatenation is the encoding (shared parts save copies). */
export type EncodedParts = Uint8Array | readonly Uint8Array[];

/**
 * A streaming method may yield several responses at once as a batch (many watchers answered
 * for one revision): the gRPC layer writes them with one write, other transports take them
 * one by one (unbatched). Every consumer of a streaming impl must accept batches.
 */
export const BATCH: unique symbol = Symbol("tsetcd.batch");

export interface ResponseBatch<T> {
  readonly [BATCH]: T[];
}

export function responseBatch<T>(messages: T[]): ResponseBatch<T> {
  return { [BATCH]: messages };
}

export function isBatch<T>(m: unknown): m is ResponseBatch<T> {
  return typeof m === "object" && m !== null && BATCH in m;
}

/** The responses of a stream that may yield batches, one by one. */
export async function* unbatched<T>(source: AsyncIterable<T | ResponseBatch<T>>): AsyncGenerator<T> {
  for await (const m of source) {
    if (isBatch<T>(m)) yield* m[BATCH];
    else yield m;
  }
}

export interface ServiceRegistration {
  service: DescService;
  impl: ServiceImpl;
}

export function methodPath(service: DescService, method: DescMethod): string {
  return `/${service.typeName}/${method.name}`;
}
