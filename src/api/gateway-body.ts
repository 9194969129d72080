// A gateway request's body, read within the server's body size limit.
// Shared by the unary routes (gateway.ts) and the streaming observe route (gateway-observe.ts),
// which gateway.ts registers: kept in its own file so that neither imports the other for it.
import { Code, EtcdError } from "../errors.js";

/** The body as text, refusing (before buffering it) one larger than `limit` bytes. */
export async function readBounded(req: Request, limit: number): Promise<string> {
  const tooLarge = () => new EtcdError(Code.ResourceExhausted, `request body larger than ${limit} bytes`);
  if (Number(req.headers.get("content-length") ?? 0) > limit) throw tooLarge();
  if (!req.body) return "";
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = req.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.length;
    if (size > limit) {
      await reader.cancel();
      throw tooLarge();
    }
    chunks.push(value);
  }
  return new TextDecoder().decode(Buffer.concat(chunks));
}
