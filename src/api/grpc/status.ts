// Turns any thrown value into a gRPC status code and message.
import { ConnectError } from "@connectrpc/connect";
import { Code, EtcdError } from "../../errors.js";
import { log } from "../../log.js";

export interface Status {
  code: number;
  message: string;
}

export function statusOf(err: unknown): Status {
  if (err instanceof EtcdError) return { code: err.code, message: err.message };
  if (err instanceof ConnectError) return { code: err.code, message: err.rawMessage };
  log.error("unexpected error in request handler", { error: String((err as Error)?.stack ?? err) });
  return { code: Code.Unknown, message: String((err as Error)?.message ?? err) };
}

/** grpc-message is percent-encoded (the gRPC HTTP/2 spec): keep printable ASCII except '%'. */
export function encodeGrpcMessage(message: string): string {
  let plain = true;
  for (let i = 0; i < message.length; i++) {
    const c = message.charCodeAt(i);
    if (c < 0x20 || c > 0x7e || c === 0x25) {
      plain = false;
      break;
    }
  }
  if (plain) return message;
  let out = "";
  for (const byte of new TextEncoder().encode(message)) {
    out += byte < 0x20 || byte > 0x7e || byte === 0x25 ? "%" + byte.toString(16).toUpperCase().padStart(2, "0") : String.fromCharCode(byte);
  }
  return out;
}
