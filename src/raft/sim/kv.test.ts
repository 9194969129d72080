// The simulator's key-value state machine: client commands only, applied once each.
import { expect, test } from "bun:test";
import { EntryType, type Entry } from "../types.ts";
import { encodeCommand, KvStore, type KvCommand } from "./kv.ts";

let index = 0;
const entry = (data: Uint8Array): Entry => ({ term: 1, index: ++index, type: EntryType.Normal, data });
const cmd = (c: KvCommand) => entry(encodeCommand(c));

test("put and cas apply; non-client entries are skipped", () => {
  const kv = new KvStore();
  expect(kv.apply(entry(new Uint8Array(0)))).toBeUndefined(); // a new leader's empty entry
  expect(kv.apply(entry(new TextEncoder().encode("s1p3")))).toBeUndefined(); // background load
  expect(kv.apply(cmd({ id: "a", op: "put", key: "x", value: "1" }))?.result).toBeNull();
  expect(kv.apply(cmd({ id: "b", op: "cas", key: "x", expected: "0", value: "2" }))?.result).toBe(false);
  expect(kv.apply(cmd({ id: "c", op: "cas", key: "x", expected: "1", value: "2" }))?.result).toBe(true);
  expect(kv.get("x")).toBe("2");
  expect(kv.get("y")).toBeNull();
});

test("a command committed twice (duplicated proposal) takes effect once", () => {
  const kv = new KvStore();
  const put1 = cmd({ id: "a", op: "put", key: "x", value: "1" });
  kv.apply(put1);
  kv.apply(cmd({ id: "b", op: "put", key: "x", value: "2" }));
  // The stale copy of "a" must not overwrite the later write.
  expect(kv.apply({ ...put1, index: ++index })?.result).toBeNull();
  expect(kv.get("x")).toBe("2");
});
