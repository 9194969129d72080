// Forwarding `member promote` from a follower to the leader, as etcd's PromoteMember does when
// its own promoteMember answers ErrNotLeader: POST <leader peer URL>/members/promote/<id>.
// Only the leader knows whether the learner caught up, so only it decides.
//
// Wire format (ours; etcd puts the id in decimal and answers errors as plain text):
//   request   POST /members/promote/<id as lower-case hex>, no body
//   200       {"members":[{"id":"<hex>","name":...,"peerURLs":[...],"clientURLs":[...],"isLearner":false}, ...]}
//   error     {"code":<gRPC code>,"message":"<EtcdError message>"} with status 404 (member not
//             found), 412 (not a learner / learner not ready), 408 (timeout), 500 otherwise.
import { Code, EtcdError, Errors } from "../errors.js";
import type { Clock } from "../runtime/time.js";
import type { PeerResponse } from "../transport/types.js";
import type { PeerCaller } from "./peer-network.js";
import { hex, memberFromWire, memberToWire } from "./join.js";
import type { MemberInfo } from "./member-info.js";

export const PROMOTE_PREFIX = "/members/promote/";

export function promotePath(id: bigint): string {
  return PROMOTE_PREFIX + hex(id);
}

/** The member id of a promote request's path, or undefined when the path is not one. */
export function parsePromotePath(path: string): bigint | undefined {
  if (!path.startsWith(PROMOTE_PREFIX)) return undefined;
  const s = path.slice(PROMOTE_PREFIX.length);
  if (!/^[0-9a-f]{1,16}$/i.test(s)) return undefined;
  return BigInt("0x" + s);
}

const json = (status: number, v: unknown): PeerResponse => ({ status, headers: { "content-type": "application/json" }, body: JSON.stringify(v) + "\n" });

function statusFor(err: EtcdError): number {
  switch (err.message) {
    case Errors.memberNotFound().message:
      return 404;
    case Errors.memberNotLearner().message:
    case Errors.learnerNotReady().message:
      return 412;
    case Errors.timeout().message:
      return 408;
    default:
      return 500;
  }
}

/**
 * The leader's answer to a forwarded promote, from what the lead's promote logic returned or
 * threw. Anything not an EtcdError goes out as code Unknown with its message.
 */
export function encodePromoteResponse(result: MemberInfo[] | unknown): PeerResponse {
  if (Array.isArray(result)) return json(200, { members: (result as MemberInfo[]).map(memberToWire) });
  const err = result instanceof EtcdError ? result : new EtcdError(Code.Unknown, result instanceof Error ? result.message : String(result));
  return json(statusFor(err), { code: err.code, message: err.message });
}

/** The answer to a bad promote path (etcd: 404 "member <id> not found in cluster"). */
export function promoteBadPathResponse(path: string): PeerResponse {
  const idStr = path.startsWith(PROMOTE_PREFIX) ? path.slice(PROMOTE_PREFIX.length) : path;
  return json(404, { code: Code.NotFound, message: `member ${idStr} not found in cluster` });
}

/** The members of a 200 answer, or the EtcdError the leader sent back (thrown). */
export function decodePromoteReply(status: number, body: Uint8Array | string): MemberInfo[] {
  const text = typeof body === "string" ? body : new TextDecoder().decode(body);
  let v: Record<string, unknown> | undefined;
  try {
    const parsed = JSON.parse(text);
    if (parsed !== null && typeof parsed === "object") v = parsed as Record<string, unknown>;
  } catch {}
  if (status === 200) {
    if (v === undefined || !Array.isArray(v.members)) throw new Error(`member promote: unknown error(${text.trim()})`);
    return v.members.map(memberFromWire);
  }
  if (v !== undefined && Number.isInteger(v.code) && (v.code as number) >= 0 && (v.code as number) <= 16 && typeof v.message === "string") {
    throw new EtcdError(v.code as Code, v.message);
  }
  // Not our format: map by status as etcd's promoteMemberHTTP does.
  if (status === 408) throw Errors.timeout();
  if (status === 404) throw Errors.memberNotFound();
  if (status === 412) {
    if (text.includes(Errors.learnerNotReady().message)) throw Errors.learnerNotReady();
    if (text.includes(Errors.memberNotLearner().message)) throw Errors.memberNotLearner();
  }
  throw new Error(`member promote: unknown error(${text.trim()})`);
}

/** Errors after which etcd stops trying the leader's other URLs. */
export function isFinalPromoteError(err: unknown): boolean {
  if (!(err instanceof EtcdError)) return false;
  return [Errors.learnerNotReady().message, Errors.memberNotFound().message, Errors.memberNotLearner().message].includes(err.message);
}

/**
 * Sends the promotion to the leader, trying its peer URLs in turn as etcd does. Resolves with
 * the members after the promotion. Throws:
 *   - EtcdError memberNotFound / memberNotLearner / learnerNotReady at once (final answers);
 *   - otherwise the last URL's error: an EtcdError the leader sent (e.g. notLeader, timeout:
 *     the leader changed or was slow) or a transport error (leader unreachable).
 * etcd's PromoteMember keeps waiting for a leader and retrying until its request timeout, then
 * answers Errors.timeout(); that loop is the caller's (see isFinalPromoteError).
 */
export async function forwardPromote(leaderPeerUrls: string[], id: bigint, timeoutMs: number, request: PeerCaller, clock: Clock): Promise<MemberInfo[]> {
  let last: unknown = new Error("member promote: leader has no peer URLs");
  const deadline = clock.now() + timeoutMs;
  for (const url of leaderPeerUrls) {
    const left = Math.max(1, Math.round(deadline - clock.now()));
    try {
      const reply = await request([url], { method: "POST", path: promotePath(id), timeoutMs: left });
      return decodePromoteReply(reply.status, reply.body);
    } catch (err) {
      if (isFinalPromoteError(err)) throw err;
      last = err;
    }
    if (clock.now() >= deadline) break;
  }
  throw last;
}
