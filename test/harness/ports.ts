// The free-port helper lives in src/testing/ports.ts, where src/'s own tests can reach it
// (src/ never imports test/); re-exported so the harness keeps one place to import from. One
// module either way, so ports handed out are never handed out twice within a process.
export * from "../../src/testing/ports.ts";
