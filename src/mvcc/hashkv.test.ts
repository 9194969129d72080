// MvccStore.hashKV: the same history gives the same hash on both backends,
// every change moves it, reads past the history are refused, and a
// revision with more rows than one read batch is hashed whole and once.
import { describe, expect, test } from "bun:test";
import { crc32 } from "node:zlib";
import { create } from "@bufbuild/protobuf";
import { DeleteRangeRequestSchema, PutRequestSchema } from "../gen/etcdserverpb/rpc_pb";
import { MemoryKvBackend } from "./memory-backend";
import { MvccStore } from "./store";
import { SqliteKvBackend } from "./sqlite-backend";
import { openDatabase } from "../storage/db";

const enc = (s: string) => new TextEncoder().encode(s);

function stores(): MvccStore[] {
  const db = openDatabase(":memory:");
  return [new MvccStore(new MemoryKvBackend()), new MvccStore(new SqliteKvBackend(db))];
}

function both(ss: MvccStore[], f: (s: MvccStore) => void): void {
  for (const s of ss) f(s);
}

describe("hashKV", () => {
  test("equal on both backends, and moved by every write", () => {
    const ss = stores();
    const hashes = () => ss.map((s) => s.hashKV(0).hash);
    const empty = hashes();
    expect(empty[0]).toBe(empty[1]);
    both(ss, (s) => s.put(create(PutRequestSchema, { key: enc("a"), value: enc("1") })));
    const one = hashes();
    expect(one[0]).toBe(one[1]);
    expect(one[0]).not.toBe(empty[0]);
    both(ss, (s) => s.deleteRange(create(DeleteRangeRequestSchema, { key: enc("a") })));
    const deleted = hashes();
    expect(deleted[0]).toBe(deleted[1]);
    expect(deleted[0]).not.toBe(one[0]);
    // A hash at an older revision ignores what came after it.
    expect(ss[1].hashKV(2).hash).toBe(one[0]);
  });

  test("a future or compacted revision is refused with etcd's errors", () => {
    const [m] = stores();
    for (let i = 0; i < 5; i++) m.put(create(PutRequestSchema, { key: enc(`k${i}`), value: enc("v") }));
    expect(() => m.hashKV(100)).toThrow("etcdserver: mvcc: required revision is a future revision");
    m.compact(4);
    expect(() => m.hashKV(3)).toThrow("etcdserver: mvcc: required revision has been compacted");
    expect(m.hashKV(0).compactRevision).toBe(4);
  });

  test("a revision with more rows than a read batch is hashed whole", () => {
    const ss = stores();
    for (let i = 0; i < 3000; i++) both(ss, (s) => s.put(create(PutRequestSchema, { key: enc(`k${String(i).padStart(5, "0")}`), value: enc("v") })));
    // One DeleteRange: 3,000 tombstones at one main revision.
    both(ss, (s) => s.deleteRange(create(DeleteRangeRequestSchema, { key: enc("k"), rangeEnd: enc("l") })));
    const [a, b] = ss.map((s) => s.hashKV(0).hash);
    expect(a).toBe(b);
    // Reference: every row read in one go, hashed in order.
    const backend = new MemoryKvBackend();
    const ref = new MvccStore(backend);
    for (let i = 0; i < 3000; i++) ref.put(create(PutRequestSchema, { key: enc(`k${String(i).padStart(5, "0")}`), value: enc("v") }));
    ref.deleteRange(create(DeleteRangeRequestSchema, { key: enc("k"), rangeEnd: enc("l") }));
    let expected = 0;
    const rev = new DataView(new ArrayBuffer(9));
    for (const kv of backend.readHistory(0, 0)) {
      rev.setBigInt64(0, kv.modRevision);
      rev.setUint8(8, kv.createRevision === 0n ? 1 : 0);
      expected = crc32(kv.value, crc32(kv.key, crc32(new Uint8Array(rev.buffer), expected)));
    }
    expect(a).toBe(expected);
    // Different from the same history without the last tombstone-bearing revision.
    expect(ss[0].hashKV(ss[0].rev - 1).hash).not.toBe(a);
  });
});
