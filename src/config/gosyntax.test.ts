import { expect, test } from "bun:test";
import { parseCompactionRetention, parseInitialCluster } from "./derived";
import { parseGoBool, parseGoDuration, parseGoInt, parseURLList, splitHostPort } from "./gosyntax";

test("strconv.ParseBool", () => {
  expect(["1", "t", "T", "TRUE", "true", "True"].map(parseGoBool)).toEqual(Array(6).fill(true));
  expect(["0", "f", "F", "FALSE", "false", "False"].map(parseGoBool)).toEqual(Array(6).fill(false));
  expect(parseGoBool("yes")).toBeUndefined();
  expect(parseGoBool("tRUE")).toBeUndefined();
});

test("strconv.ParseInt/ParseUint with base 0", () => {
  expect(parseGoInt("0x1F", false, 64)).toEqual({ value: 31n });
  expect(parseGoInt("0o17", false, 64)).toEqual({ value: 15n });
  expect(parseGoInt("017", false, 64)).toEqual({ value: 15n });
  expect(parseGoInt("0b101", false, 64)).toEqual({ value: 5n });
  expect(parseGoInt("1_000", false, 64)).toEqual({ value: 1000n });
  expect(parseGoInt("1__0", false, 64)).toEqual({ error: "syntax" });
  expect(parseGoInt("_1", false, 64)).toEqual({ error: "syntax" });
  expect(parseGoInt("-1", false, 64)).toEqual({ error: "syntax" });
  expect(parseGoInt("-9223372036854775808", true, 64)).toEqual({ value: -9223372036854775808n });
  expect(parseGoInt("9223372036854775808", true, 64)).toEqual({ error: "range" });
  expect(parseGoInt("4294967296", false, 32)).toEqual({ error: "range" });
  expect(parseGoInt("", false, 64)).toEqual({ error: "syntax" });
  expect(parseGoInt("08", false, 64)).toEqual({ error: "syntax" });
});

test("time.ParseDuration", () => {
  expect(parseGoDuration("1h30m")).toEqual({ ok: true, value: 5_400_000 });
  expect(parseGoDuration("1.5s")).toEqual({ ok: true, value: 1500 });
  expect(parseGoDuration("100us")).toEqual({ ok: true, value: 0.1 });
  expect(parseGoDuration("-2ms")).toEqual({ ok: true, value: -2 });
  expect(parseGoDuration("0")).toEqual({ ok: true, value: 0 });
  expect(parseGoDuration("5")).toEqual({ ok: false, error: 'time: missing unit in duration "5"' });
  expect(parseGoDuration("5d")).toEqual({ ok: false, error: 'time: unknown unit "d" in duration "5d"' });
  expect(parseGoDuration("")).toEqual({ ok: false, error: 'time: invalid duration ""' });
  expect(parseGoDuration(".s")).toEqual({ ok: false, error: 'time: invalid duration ".s"' });
});

test("net.SplitHostPort", () => {
  expect(splitHostPort("[::1]:2379")).toEqual({ ok: true, value: { host: "::1", port: "2379" } });
  expect(splitHostPort("localhost")).toEqual({ ok: false, error: "address localhost: missing port in address" });
  expect(splitHostPort("::1:2379")).toEqual({ ok: false, error: "address ::1:2379: too many colons in address" });
});

test("etcd's URL lists", () => {
  expect(parseURLList(["HTTP://127.0.0.1:1", " unix://sock "])).toEqual({ ok: true, value: ["http://127.0.0.1:1", "unix://sock"] });
  expect(parseURLList(["http://h"])).toEqual({ ok: false, error: 'URL address does not have the form "host:port": http://h' });
  expect(parseURLList(["localhost:2379"])).toEqual({ ok: false, error: "URL scheme must be http, https, unix, or unixs: localhost:2379" });
  expect(parseURLList(["http://h:x"]).ok).toBe(false);
});

test("initial cluster and compaction retention, read as etcd reads them", () => {
  const c = parseInitialCluster("a=http://1.1.1.1:1,b=http://2.2.2.2:2,a=http://1.1.1.1:3");
  expect(c.ok && [...c.value]).toEqual([
    ["a", ["http://1.1.1.1:1", "http://1.1.1.1:3"]],
    ["b", ["http://2.2.2.2:2"]],
  ]);
  expect(parseInitialCluster("a").ok).toBe(false);
  expect(parseCompactionRetention("periodic", "2")).toEqual({ ok: true, value: { mode: "periodic", ms: 7_200_000 } });
  expect(parseCompactionRetention("periodic", "30m")).toEqual({ ok: true, value: { mode: "periodic", ms: 1_800_000 } });
  expect(parseCompactionRetention("revision", "1000")).toEqual({ ok: true, value: { mode: "revision", revisions: 1000 } });
  expect(parseCompactionRetention("periodic", "x").ok).toBe(false);
});
