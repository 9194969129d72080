// HPACK against RFC 7541's appendix C examples (decoding, with and without
// Huffman, with evictions), the Huffman code against appendix B, and our
// encoder's output against our decoder.
import { expect, test } from "bun:test";
import { CODES, huffmanDecode } from "./huffman.js";
import {
  encodeHeaders,
  GRPC_OK_TRAILER_BLOCK,
  GRPC_RESPONSE_BLOCK,
  HpackDecoder,
  HpackError,
  isGrpcOkTrailer,
  isGrpcResponse,
  MALFORMED_NAME,
  PSEUDO_AFTER_REGULAR,
  TOO_LARGE,
} from "./hpack.js";

const hex = (s: string) => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ""), "hex"));
const entries = (d: HpackDecoder) => d.tableState.entries;

interface Step {
  block: string;
  headers: [string, string][];
  table: [string, string][];
  size: number;
}

function series(tableSize: number, steps: Step[]): void {
  const d = new HpackDecoder(tableSize);
  for (const step of steps) {
    const h = d.decode(hex(step.block));
    expect(Object.entries(h)).toEqual(step.headers);
    expect(entries(d)).toEqual(step.table);
    expect(d.tableState.size).toBe(step.size);
  }
}

const REQ1: [string, string][] = [
  [":method", "GET"],
  [":scheme", "http"],
  [":path", "/"],
  [":authority", "www.example.com"],
];
const REQ2: [string, string][] = [...REQ1, ["cache-control", "no-cache"]];
const REQ3: [string, string][] = [
  [":method", "GET"],
  [":scheme", "https"],
  [":path", "/index.html"],
  [":authority", "www.example.com"],
  ["custom-key", "custom-value"],
];
const REQ_TABLES: [string, string][][] = [
  [[":authority", "www.example.com"]],
  [
    ["cache-control", "no-cache"],
    [":authority", "www.example.com"],
  ],
  [
    ["custom-key", "custom-value"],
    ["cache-control", "no-cache"],
    [":authority", "www.example.com"],
  ],
];

test("C.3 requests without Huffman", () => {
  series(4096, [
    { block: "8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d", headers: REQ1, table: REQ_TABLES[0], size: 57 },
    { block: "8286 84be 5808 6e6f 2d63 6163 6865", headers: REQ2, table: REQ_TABLES[1], size: 110 },
    { block: "8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65", headers: REQ3, table: REQ_TABLES[2], size: 164 },
  ]);
});

test("C.4 requests with Huffman", () => {
  series(4096, [
    { block: "8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff", headers: REQ1, table: REQ_TABLES[0], size: 57 },
    { block: "8286 84be 5886 a8eb 1064 9cbf", headers: REQ2, table: REQ_TABLES[1], size: 110 },
    { block: "8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf", headers: REQ3, table: REQ_TABLES[2], size: 164 },
  ]);
});

const RESP1: [string, string][] = [
  [":status", "302"],
  ["cache-control", "private"],
  ["date", "Mon, 21 Oct 2013 20:13:21 GMT"],
  ["location", "https://www.example.com"],
];
const RESP2: [string, string][] = [[":status", "307"], ...RESP1.slice(1)];
const COOKIE = "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1";
const RESP3: [string, string][] = [
  [":status", "200"],
  ["cache-control", "private"],
  ["date", "Mon, 21 Oct 2013 20:13:22 GMT"],
  ["location", "https://www.example.com"],
  ["content-encoding", "gzip"],
  ["set-cookie", COOKIE],
];
const RESP_TABLES: [string, string][][] = [
  [
    ["location", "https://www.example.com"],
    ["date", "Mon, 21 Oct 2013 20:13:21 GMT"],
    ["cache-control", "private"],
    [":status", "302"],
  ],
  [
    [":status", "307"],
    ["location", "https://www.example.com"],
    ["date", "Mon, 21 Oct 2013 20:13:21 GMT"],
    ["cache-control", "private"],
  ],
  [
    ["set-cookie", COOKIE],
    ["content-encoding", "gzip"],
    ["date", "Mon, 21 Oct 2013 20:13:22 GMT"],
  ],
];

test("C.5 responses without Huffman, 256-octet table with evictions", () => {
  series(256, [
    {
      block: `4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133
              2032 303a 3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70 6c65 2e63 6f6d`,
      headers: RESP1,
      table: RESP_TABLES[0],
      size: 222,
    },
    { block: "4803 3330 37c1 c0bf", headers: RESP2, table: RESP_TABLES[1], size: 222 },
    {
      block: `88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d
              54c0 5a04 677a 6970 7738 666f 6f3d 4153 444a 4b48 514b 425a 584f 5157 454f 5049
              5541 5851 5745 4f49 553b 206d 6178 2d61 6765 3d33 3630 303b 2076 6572 7369 6f6e 3d31`,
      headers: RESP3,
      table: RESP_TABLES[2],
      size: 215,
    },
  ]);
});

test("C.6 responses with Huffman, 256-octet table with evictions", () => {
  series(256, [
    {
      block: `4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6
              2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3`,
      headers: RESP1,
      table: RESP_TABLES[0],
      size: 222,
    },
    { block: "4883 640e ffc1 c0bf", headers: RESP2, table: RESP_TABLES[1], size: 222 },
    {
      block: `88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab
              77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f
              9587 3160 65c0 03ed 4ee5 b106 3d50 07`,
      headers: RESP3,
      table: RESP_TABLES[2],
      size: 215,
    },
  ]);
});

test("C.2 single fields: literal with, without and never indexed; indexed", () => {
  const d = new HpackDecoder();
  expect(d.decode(hex("400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572"))).toEqual({ "custom-key": "custom-header" } as any);
  expect(d.tableState.count).toBe(1);
  const d2 = new HpackDecoder();
  expect(d2.decode(hex("040c 2f73 616d 706c 652f 7061 7468"))[":path"]).toBe("/sample/path");
  expect(d2.decode(hex("1008 7061 7373 776f 7264 0673 6563 7265 74")).password).toBe("secret");
  expect(d2.decode(hex("82"))[":method"]).toBe("GET");
  expect(d2.tableState.count).toBe(0);
});

test("Huffman codes derived from the lengths match appendix B", () => {
  const known: [number, number, number][] = [
    [0, 0x1ff8, 13],
    [32, 0x14, 6],
    [48, 0x0, 5],
    [97, 0x3, 5],
    [92, 0x7fff0, 19],
    [127, 0xffffffc, 28],
    [200, 0x3ffffe2, 26],
    [255, 0x3ffffee, 26],
    [256, 0x3fffffff, 30],
  ];
  for (const [sym, code, length] of known) expect(CODES[sym]).toEqual({ code, length });
});

test("Huffman rejects EOS, over-long and non-one padding", () => {
  for (const bad of ["ff", "1fff", "1fffff", "ff9fffffff", "52bc30ffffffff", "fffffffffc", "00"]) {
    const b = hex(bad);
    expect(huffmanDecode(b, 0, b.length)).toBeNull();
  }
  const ok = hex("f1e3 c2e5 f23a 6ba0 ab90 f4ff");
  const r = huffmanDecode(ok, 0, ok.length)!;
  expect(Buffer.from(r.bytes.subarray(0, r.length)).toString("latin1")).toBe("www.example.com");
});

test("every byte value survives a Huffman round trip", () => {
  // Encode with the derived codes (test-only encoder), decode with the state machine.
  const input = Uint8Array.from({ length: 512 }, (_, i) => (i * 7919) & 0xff);
  let bits = "";
  for (const b of input) bits += CODES[b].code.toString(2).padStart(CODES[b].length, "0");
  while (bits.length % 8) bits += "1";
  const bytes = Uint8Array.from(bits.match(/.{8}/g)!, (s) => parseInt(s, 2));
  const r = huffmanDecode(bytes, 0, bytes.length)!;
  expect(Array.from(r.bytes.subarray(0, r.length))).toEqual(Array.from(input));
});

test("decoder errors: bad index, late size update, size above the setting, truncation", () => {
  expect(() => new HpackDecoder().decode(hex("80"))).toThrow(HpackError);
  expect(() => new HpackDecoder().decode(hex("be"))).toThrow(HpackError); // index 62, empty table
  expect(() => new HpackDecoder().decode(hex("82 20"))).toThrow(HpackError);
  expect(() => new HpackDecoder().decode(hex("3fe21f"))).toThrow(HpackError); // 4096 + 1
  expect(() => new HpackDecoder().decode(hex("400a 6375 73"))).toThrow(HpackError);
  expect(() => new HpackDecoder().decode(hex("ff ff ff ff ff ff"))).toThrow(HpackError);
});

test("size update to 0 evicts everything; updates at the start are allowed", () => {
  const d = new HpackDecoder();
  d.decode(hex("400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572"));
  expect(d.tableState.count).toBe(1);
  d.decode(hex("20 3fe11f 82")); // 0, then back to 4096
  expect(d.tableState.count).toBe(0);
});

test("flags: upper-case names, pseudo after regular, list too large", () => {
  const d = new HpackDecoder(4096, 100);
  d.decode(Uint8Array.from([0x00, 1, 0x41, 1, 0x78])); // "A: x"
  expect(d.flags & MALFORMED_NAME).toBeTruthy();
  d.decode(Uint8Array.from([0x00, 1, 0x61, 1, 0x78, 0x82])); // "a: x", ":method GET"
  expect(d.flags & PSEUDO_AFTER_REGULAR).toBeTruthy();
  const big = encodeHeaders({ a: "x".repeat(60) });
  const h = d.decode(Uint8Array.from([...big, ...big]));
  expect(d.flags & TOO_LARGE).toBeTruthy();
  expect(h.a).toBe("x".repeat(60));
});

test("the table holds at most its size even when full of minimal entries", () => {
  const d = new HpackDecoder(256);
  // 40 insertions of a 33-octet entry ("a": "") into a 256-octet table.
  const block = Uint8Array.from(Array.from({ length: 40 }, () => [0x40, 1, 0x61, 1, 0x62]).flat());
  d.decode(block);
  expect(d.tableState.size).toBeLessThanOrEqual(256);
  expect(d.tableState.count).toBe(Math.floor(256 / 34));
});

test("encoder output decodes back, pseudo-headers first", () => {
  const block = encodeHeaders({ "grpc-status": 3, ":status": 200, "X-Custom": ["a", "b"], "grpc-message": "key is not provided" });
  const h = new HpackDecoder().decode(block);
  expect(Object.keys(h)[0]).toBe(":status");
  expect(h).toEqual({ ":status": "200", "grpc-status": "3", "x-custom": ["a", "b"], "grpc-message": "key is not provided" } as any);
  expect(new HpackDecoder().decode(encodeHeaders({ ":status": 431 }))[":status"]).toBe("431");
  expect(new HpackDecoder().decode(encodeHeaders({ long: "v".repeat(300) })).long).toBe("v".repeat(300));
});

test("precomputed gRPC blocks", () => {
  expect(GRPC_RESPONSE_BLOCK[0]).toBe(0x88); // :status 200 from the static table
  expect(new HpackDecoder().decode(GRPC_RESPONSE_BLOCK)).toEqual({ ":status": "200", "content-type": "application/grpc" } as any);
  expect(new HpackDecoder().decode(GRPC_OK_TRAILER_BLOCK)).toEqual({ "grpc-status": "0" } as any);
  expect(isGrpcResponse({ ":status": 200, "content-type": "application/grpc" })).toBe(true);
  expect(isGrpcResponse({ ":status": 200, "content-type": "application/grpc", x: "1" })).toBe(false);
  expect(isGrpcOkTrailer({ "grpc-status": "0" })).toBe(true);
  expect(isGrpcOkTrailer({ "grpc-status": "0", "grpc-message": "x" })).toBe(false);
  expect(isGrpcOkTrailer({ "grpc-status": "" })).toBe(false);
});
