// Byte-string order, as etcd compares keys and names (Go's bytes.Compare):
// unsigned bytes, a shorter prefix first, which is also how SQLite compares
// BLOBs. One definition for every layer (MVCC keys, auth names and ranges).

/** memcmp order: negative if a < b, 0 if equal, positive if a > b. */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = a.length < b.length ? a.length : b.length;
  for (let i = 0; i < n; i++) {
    const d = a[i] - b[i];
    if (d !== 0) return d;
  }
  return a.length - b.length;
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
