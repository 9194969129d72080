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
 * A response message may carry its own protobuf encoding under this key (a non-enumerable
 * property): the gRPC layer then sends those bytes instead of encoding the message again.
 * Other transports ignore it and encode the message itself, so both must say the same thing.
 */
export const ENCODED: unique symbol = Symbol("tsetcd.encoded");

export interface ServiceRegistration {
  service: DescService;
  impl: ServiceImpl;
}

export function methodPath(service: DescService, method: DescMethod): string {
  return `/${service.typeName}/${method.name}`;
}
