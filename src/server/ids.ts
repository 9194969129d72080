// Member and cluster ids derived exactly as etcd derives them, so a member
// started with the same --initial-cluster and --initial-cluster-token as an
// etcd member gets the same ids (and etcdctl output matches byte for byte).
import { createHash } from "node:crypto";

function first8BigEndian(data: Uint8Array): bigint {
  const hash = createHash("sha1").update(data).digest();
  return hash.readBigUInt64BE(0);
}

/** sha1(sorted peer URLs concatenated + cluster token), first 8 bytes big-endian. */
export function memberId(peerUrls: string[], clusterToken: string): bigint {
  const joined = [...peerUrls].sort().join("") + clusterToken;
  return first8BigEndian(new TextEncoder().encode(joined));
}

/** sha1 of the sorted member ids as 8-byte big-endian words, first 8 bytes. */
export function clusterId(memberIds: bigint[]): bigint {
  const ids = [...memberIds].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const buf = Buffer.alloc(8 * ids.length);
  ids.forEach((id, i) => buf.writeBigUInt64BE(id, 8 * i));
  return first8BigEndian(buf);
}

/** Parses --initial-cluster ("a=http://x:2380,a=http://y:2380,b=...") into name → peer URLs. */
export function parseInitialCluster(value: string): Map<string, string[]> {
  const members = new Map<string, string[]>();
  for (const part of value.split(",")) {
    const eq = part.indexOf("=");
    if (eq <= 0) throw new Error(`invalid --initial-cluster entry ${JSON.stringify(part)}: want name=url`);
    const name = part.slice(0, eq).trim();
    const url = part.slice(eq + 1).trim();
    members.set(name, [...(members.get(name) ?? []), url]);
  }
  return members;
}
