// etcd's unix:// and unixs:// peer URLs name a socket file, not a host and port: the listener
// and the dialer both need to tell them apart and find the file.
export function isUnixUrl(u: URL): boolean {
  return u.protocol === "unix:" || u.protocol === "unixs:";
}

export function unixSocketPath(u: URL): string {
  return u.host;
}
