// A user's merged permissions: etcd's range_perm_cache cases (an interval end of "" there is
// "\0", no bound, here), points, prefixes, gaps, and the read/write split.
import { create } from "@bufbuild/protobuf";
import { describe, expect, test } from "bun:test";
import { Permission_Type, PermissionSchema } from "../gen/authpb/auth_pb.js";
import { UserPermissions } from "./permissions.js";

const enc = (s: string) => new TextEncoder().encode(s);
const perm = (key: string, end = "", type = Permission_Type.READ) => create(PermissionSchema, { permType: type, key: enc(key), rangeEnd: enc(end) });
const reads = (...ranges: Array<[string, string?]>) => new UserPermissions(ranges.map(([k, e]) => perm(k, e)));

describe("ranges (etcd's TestRangePermission)", () => {
  test.each([
    [
      [
        ["a", "c"],
        ["x", "z"],
      ],
      "a",
      "z",
      false,
    ],
    [
      [
        ["a", "f"],
        ["c", "d"],
        ["f", "z"],
      ],
      "a",
      "z",
      true,
    ],
    [
      [
        ["a", "d"],
        ["a", "b"],
        ["c", "f"],
      ],
      "a",
      "f",
      true,
    ],
    [
      [
        ["a", "d"],
        ["a", "b"],
        ["c", "f"],
      ],
      "a",
      "\0",
      false,
    ],
    [[["a", "\0"]], "a", "\0", true],
    [[["\0", "\0"]], "a", "\0", true],
    [[["\0", "\0"]], "\0", "\0", true],
  ] as Array<[Array<[string, string]>, string, string, boolean]>)("%j covers [%s, %s): %s", (perms, begin, end, want) => {
    expect(reads(...perms).permits("read", enc(begin), enc(end))).toBe(want);
  });
});

describe("keys (etcd's TestKeyPermission)", () => {
  test.each([
    [
      [
        ["a", "c"],
        ["x", "z"],
      ],
      "f",
      false,
    ],
    [
      [
        ["a", "f"],
        ["c", "d"],
        ["f", "z"],
      ],
      "b",
      true,
    ],
    [
      [
        ["a", "d"],
        ["a", "b"],
        ["c", "f"],
      ],
      "d",
      true,
    ],
    [
      [
        ["a", "d"],
        ["a", "b"],
        ["c", "f"],
      ],
      "f",
      false,
    ],
    [
      [
        ["a", "d"],
        ["a", "b"],
        ["c", "\0"],
      ],
      "f",
      true,
    ],
    [
      [
        ["a", "d"],
        ["a", "b"],
        ["\0", "\0"],
      ],
      "f",
      true,
    ],
  ] as Array<[Array<[string, string]>, string, boolean]>)("%j permits %s: %s", (perms, key, want) => {
    expect(reads(...perms).permits("read", enc(key), new Uint8Array())).toBe(want);
  });
});

test("a key permission is exactly that key; a prefix is its range; the edges are exclusive", () => {
  const p = reads(["k"], ["app/", "app0"]);
  expect(p.permits("read", enc("k"), new Uint8Array())).toBe(true);
  expect(p.permits("read", enc("k"), enc("k\0"))).toBe(true); // the range holding only "k"
  expect(p.permits("read", enc("k\0"), new Uint8Array())).toBe(false);
  expect(p.permits("read", enc("kk"), new Uint8Array())).toBe(false);
  expect(p.permits("read", enc("app/x"), new Uint8Array())).toBe(true);
  expect(p.permits("read", enc("app/"), enc("app0"))).toBe(true);
  expect(p.permits("read", enc("app/"), enc("app1"))).toBe(false);
  expect(p.permits("read", enc("app0"), new Uint8Array())).toBe(false);
  expect(p.permits("read", enc("app"), enc("app0"))).toBe(false); // "app" itself is outside
});

test("read and write are separate; READWRITE grants both; empty or backwards ranges are never covered", () => {
  const p = new UserPermissions([perm("r", "", Permission_Type.READ), perm("w", "", Permission_Type.WRITE), perm("b", "", Permission_Type.READWRITE)]);
  expect([p.permits("read", enc("r"), new Uint8Array()), p.permits("write", enc("r"), new Uint8Array())]).toEqual([true, false]);
  expect([p.permits("read", enc("w"), new Uint8Array()), p.permits("write", enc("w"), new Uint8Array())]).toEqual([false, true]);
  expect([p.permits("read", enc("b"), new Uint8Array()), p.permits("write", enc("b"), new Uint8Array())]).toEqual([true, true]);
  const all = reads(["\0", "\0"]);
  expect(all.permits("read", enc("b"), enc("a"))).toBe(false);
  expect(all.permits("read", enc("a"), enc("a"))).toBe(false);
  expect(new UserPermissions([]).permits("read", enc("a"), new Uint8Array())).toBe(false);
});
