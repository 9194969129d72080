// Where the external programs the tests drive live: src/testing/tools.ts, where src/'s own
// tests (the HTTP/2 server against etcdctl and etcd's benchmark) can reach it; re-exported so
// the harness keeps one place to import from.
export * from "../../src/testing/tools.ts";
