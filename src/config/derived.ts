// Values etcd keeps as strings in its configuration and interprets later
// (initial cluster, compaction retention). Parsed here so the schema can reject
// bad input up front, and so the server interprets them exactly as etcd does.
import { parseGoDuration, parseURLList, type Parsed } from "./gosyntax";

/**
 * `--initial-cluster` → member name → peer URLs, as etcd's types.NewURLsMap:
 * entries split on `,` then on the first `=`; a name may repeat to give a
 * member several URLs.
 */
export function parseInitialCluster(s: string): Parsed<Map<string, string[]>> {
  const raw = new Map<string, string[]>();
  for (const entry of s.split(",")) {
    if (entry === "") continue;
    const eq = entry.indexOf("=");
    const name = eq >= 0 ? entry.slice(0, eq) : entry;
    const url = eq >= 0 ? entry.slice(eq + 1) : "";
    raw.set(name, [...(raw.get(name) ?? []), url]);
  }
  const out = new Map<string, string[]>();
  for (const [name, list] of raw) {
    const urls = parseURLList(list);
    if (!urls.ok) return urls;
    out.set(name, urls.value);
  }
  return { ok: true, value: out };
}

export type CompactionRetention = { mode: "periodic"; ms: number } | { mode: "revision"; revisions: number };

/**
 * `--auto-compaction-retention` under `--auto-compaction-mode`, as etcd reads it:
 * a bare non-negative integer is hours (periodic) or revisions (revision);
 * anything else must be a Go duration. 0 disables auto compaction.
 */
export function parseCompactionRetention(mode: string, retention: string): Parsed<CompactionRetention> {
  const text = retention === "" ? "0" : retention;
  const revisionMode = mode === "revision";
  if (/^[+-]?\d+$/.test(text) && Number(text) >= 0) {
    const n = Number(text);
    return { ok: true, value: revisionMode ? { mode: "revision", revisions: n } : { mode: "periodic", ms: n * 3_600_000 } };
  }
  const d = parseGoDuration(text);
  if (!d.ok) return { ok: false, error: `error parsing CompactionRetention: ${d.error}` };
  // In revision mode etcd uses the duration's nanosecond count as a revision count.
  return { ok: true, value: revisionMode ? { mode: "revision", revisions: d.value * 1e6 } : { mode: "periodic", ms: d.value } };
}

/** etcd's backend quota when --quota-backend-bytes is 0: 2 GiB. */
export const DEFAULT_QUOTA_BACKEND_BYTES = 2 * 1024 ** 3;

/**
 * The space alarm threshold etcd enforces for a --quota-backend-bytes value:
 * 0 means the default, a negative value disables the quota (null).
 */
export function effectiveQuotaBytes(quotaBackendBytes: number): number | null {
  if (quotaBackendBytes < 0) return null;
  return quotaBackendBytes === 0 ? DEFAULT_QUOTA_BACKEND_BYTES : quotaBackendBytes;
}
