// One user's merged key permissions and the question every request asks of
// them (etcd's range_perm_cache.go): may this user read (write) this key, or
// every key of this range? A role's permission is a point (one key), a range
// [key, end), or [key, ∞) when its end is "\0"; a request's range is allowed
// only when the union of the user's ranges covers all of it.
import { Permission_Type, type Permission } from "../gen/authpb/auth_pb.js";
import { compareBytes } from "../bytes.js";

export type Access = "read" | "write";

/** [begin, end); end undefined: no upper bound. */
interface Interval {
  begin: Uint8Array;
  end: Uint8Array | undefined;
}

export class UserPermissions {
  private readonly read: Interval[] = [];
  private readonly write: Interval[] = [];

  /** From every permission of every role the user holds (missing roles contribute nothing). */
  constructor(perms: Iterable<Permission>) {
    for (const p of perms) {
      const ivl = permissionInterval(p);
      if (p.permType === Permission_Type.READ || p.permType === Permission_Type.READWRITE) this.read.push(ivl);
      if (p.permType === Permission_Type.WRITE || p.permType === Permission_Type.READWRITE) this.write.push(ivl);
    }
    for (const list of [this.read, this.write]) list.sort((a, b) => compareBytes(a.begin, b.begin));
  }

  /**
   * Whether the user may `access` the key (rangeEnd empty) or every key in [key, rangeEnd)
   * (rangeEnd "\0": every key from `key` on).
   */
  permits(access: Access, key: Uint8Array, rangeEnd: Uint8Array): boolean {
    const intervals = access === "read" ? this.read : this.write;
    if (rangeEnd.length === 0) return intervals.some((i) => contains(i, key));
    return covers(intervals, { begin: key, end: isOpenEnded(rangeEnd) ? undefined : rangeEnd });
  }
}

/** A permission as an interval: a key is [key, key + "\0"), "\0" as its end means no bound. */
function permissionInterval(p: Permission): Interval {
  if (p.rangeEnd.length === 0) return { begin: p.key, end: successor(p.key) };
  return { begin: p.key, end: isOpenEnded(p.rangeEnd) ? undefined : p.rangeEnd };
}

/** The smallest key after `key`: key + "\0". */
function successor(key: Uint8Array): Uint8Array {
  const out = new Uint8Array(key.length + 1);
  out.set(key);
  return out;
}

/** A range end of "\0": every key from the start on (etcd's isOpenEnded). */
export function isOpenEnded(rangeEnd: Uint8Array): boolean {
  return rangeEnd.length === 1 && rangeEnd[0] === 0;
}

function contains(i: Interval, key: Uint8Array): boolean {
  return compareBytes(i.begin, key) <= 0 && (i.end === undefined || compareBytes(key, i.end) < 0);
}

/** Whether intervals sorted by begin cover all of `want`, with no gap. An empty or backwards `want` is never covered. */
function covers(sorted: Interval[], want: Interval): boolean {
  if (want.end !== undefined && compareBytes(want.begin, want.end) >= 0) return false;
  let reached = want.begin; // everything below `reached` (from want.begin) is covered
  for (const i of sorted) {
    if (compareBytes(i.begin, reached) > 0) return false; // a gap at `reached`
    if (i.end === undefined) return true;
    if (compareBytes(i.end, reached) > 0) reached = i.end;
    if (want.end !== undefined && compareBytes(reached, want.end) >= 0) return true;
  }
  return false;
}
