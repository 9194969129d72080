// HPACK's Huffman code (RFC 7541 appendix B), decoding only: our encoder
// never Huffman-codes, but clients (Go's gRPC, nghttp2) do.
//
// The appendix's code is canonical: codes of one length are consecutive and
// in symbol order, and each length's first code follows the previous length's
// last. So the 257 code lengths below define every code; the codes are
// derived from them (the tests check derived codes against the appendix).
// Decoding walks a 4-bit-at-a-time state machine built from that code once
// at load time: one table lookup per nibble instead of one branch per bit.

/** Code length of symbols 0..256 (256 is EOS), one base-36 digit each. */
const LENGTHS =
  "dnsssssssoussussssssssusssssssss6aacd68baa8b8666555666666678f6cad67777777777777777777777878djde6f" +
  "56565666577666567655677777fbedskmkkmmmnmnnnnnonoomnonnnnlmnmnnomlkmmnnlnmmolmnnllmlnmnnkmmmnmmnqq" +
  "kjmnmpqqqrrqopjlqrrqrollqqsrrrkoklmllnmmppooqnqrqqrrrrrsrrrrrqu";

const EOS = 256;

export interface HuffmanCode {
  code: number;
  length: number;
}

/** The canonical codes, indexed by symbol (exported for the tests). */
export const CODES: HuffmanCode[] = buildCodes();

function buildCodes(): HuffmanCode[] {
  if (LENGTHS.length !== 257) throw new Error("huffman: need 257 code lengths");
  const lengths = Array.from(LENGTHS, (c) => parseInt(c, 36));
  const order = lengths.map((_, s) => s).sort((a, b) => lengths[a] - lengths[b] || a - b);
  const codes: HuffmanCode[] = new Array(257);
  let code = 0;
  let prev = lengths[order[0]];
  for (let i = 0; i < order.length; i++) {
    const s = order[i];
    if (i > 0) code = (code + 1) * 2 ** (lengths[s] - prev);
    prev = lengths[s];
    codes[s] = { code, length: lengths[s] };
  }
  // A complete prefix code: the last (longest) code is all ones.
  const last = codes[order[order.length - 1]];
  if (last.code !== 2 ** last.length - 1) throw new Error("huffman: code lengths do not form a complete code");
  return codes;
}

// The decoding tree: node 0 is the root; child[2n+bit] is a node id, or
// -(symbol+1) for a leaf.
const child = new Int32Array(2 * 256);
let nodes = 1;
for (let s = 0; s <= EOS; s++) {
  const { code, length } = CODES[s];
  let n = 0;
  for (let i = length - 1; i >= 0; i--) {
    const bit = Math.floor(code / 2 ** i) & 1;
    const slot = 2 * n + bit;
    if (i === 0) {
      child[slot] = -(s + 1);
    } else {
      if (child[slot] === 0) child[slot] = nodes++;
      n = child[slot];
    }
  }
}
if (nodes !== 256) throw new Error("huffman: expected 256 internal nodes");

// Per internal node: bits from the root and whether they are all ones. The
// string may end only in a node reached by at most 7 one-bits since the last
// symbol (a prefix of EOS used as padding).
const depth = new Uint8Array(256);
const allOnes = new Uint8Array(256);
allOnes[0] = 1;
for (let n = 0; n < 256; n++) {
  for (let bit = 0; bit < 2; bit++) {
    const c = child[2 * n + bit];
    if (c > 0) {
      depth[c] = depth[n] + 1;
      allOnes[c] = allOnes[n] & bit;
    }
  }
}

/** Per (node, nibble): the next node. */
const NEXT = new Uint8Array(256 * 16);
/** Per (node, nibble): the symbol emitted, -1 for none, -2 for EOS (an error). */
const EMIT = new Int16Array(256 * 16);
for (let n = 0; n < 256; n++) {
  for (let nib = 0; nib < 16; nib++) {
    let cur = n;
    let emit = -1;
    for (let i = 3; i >= 0; i--) {
      const c = child[2 * cur + ((nib >> i) & 1)];
      if (c > 0) {
        cur = c;
      } else {
        // Codes are at least 5 bits long, so one nibble completes at most one symbol.
        const sym = -c - 1;
        emit = sym === EOS ? -2 : sym;
        cur = 0;
        if (sym === EOS) break;
      }
    }
    NEXT[n * 16 + nib] = cur;
    EMIT[n * 16 + nib] = emit;
  }
}

let scratch = new Uint8Array(256);

/**
 * Decodes `src[start, end)`; returns the decoded bytes in a scratch buffer
 * valid until the next call (the caller turns them into a string at once),
 * or null for an invalid string (EOS inside, or bad padding).
 */
export function huffmanDecode(src: Uint8Array, start: number, end: number): { bytes: Uint8Array; length: number } | null {
  // Each symbol takes at least 5 bits, so 8/5 of the input bounds the output.
  const max = Math.ceil(((end - start) * 8) / 5);
  if (scratch.length < max) scratch = new Uint8Array(Math.max(max, scratch.length * 2));
  const out = scratch;
  let o = 0;
  let state = 0;
  for (let i = start; i < end; i++) {
    const b = src[i];
    let k = state * 16 + (b >> 4);
    let e = EMIT[k];
    if (e === -2) return null;
    if (e >= 0) out[o++] = e;
    state = NEXT[k];
    k = state * 16 + (b & 15);
    e = EMIT[k];
    if (e === -2) return null;
    if (e >= 0) out[o++] = e;
    state = NEXT[k];
  }
  if (!allOnes[state] || depth[state] > 7) return null;
  return { bytes: out, length: o };
}
