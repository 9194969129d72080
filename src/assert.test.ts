import { describe, expect, test } from "bun:test";
import { type Assert, AssertionError, assert, assertWith, unreachable } from "./assert.ts";
import { invariant } from "./raft/types.ts";

describe("assert", () => {
  test("passes on a truthy condition and throws an AssertionError saying what broke otherwise", () => {
    expect(() => assert(1, "one")).not.toThrow();
    const err = (() => {
      try {
        assert(0, "the count is positive");
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(AssertionError);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).name).toBe("AssertionError");
    expect((err as Error).message).toBe("the count is positive");
  });

  test("a per-layer assert keeps the layer's prefix, and raft's is the one raft/ exports", () => {
    const check: Assert = assertWith("demo invariant violated");
    expect(() => check(false, "x")).toThrow(new AssertionError("demo invariant violated: x"));
    expect(() => invariant(undefined, "term going backwards")).toThrow("raft invariant violated: term going backwards");
  });

  test("narrows the type it checks", () => {
    const v: string | undefined = [..."ab"].join("") || undefined;
    assert(v !== undefined, "joined");
    expect(v.length).toBe(2);
  });

  test("unreachable names the value that arrived, bigints and objects included", () => {
    type Shape = { kind: "a" } | { kind: "b" };
    const area = (s: Shape): number => {
      switch (s.kind) {
        case "a":
          return 1;
        case "b":
          return 2;
        default:
          return unreachable(s, "unknown shape");
      }
    };
    expect(area({ kind: "b" })).toBe(2);
    expect(() => area({ kind: "c", size: 3n } as unknown as Shape)).toThrow('unknown shape: {"kind":"c","size":"3n"}');
    expect(() => unreachable(7n as never)).toThrow("unexpected value: 7n");
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(() => unreachable(cyclic as never)).toThrow("unexpected value: [object Object]");
  });
});
