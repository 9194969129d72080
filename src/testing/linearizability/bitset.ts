// Fixed-size bitset of linearized operation ids, the memoization key of the
// search together with the model state (Lowe's "configuration").
export class Bitset {
  private readonly words: Uint32Array;

  constructor(size: number) {
    this.words = new Uint32Array(Math.ceil(size / 32));
  }

  set(i: number): void {
    this.words[i >>> 5] |= 1 << (i & 31);
  }

  clear(i: number): void {
    this.words[i >>> 5] &= ~(1 << (i & 31));
  }

  /** Exact (injective) string form, so a Map lookup needs no further comparison. */
  key(): string {
    return this.words.join(",");
  }

  /** key() as if bit i were also set, without mutating: the cache probe. */
  keyWith(i: number): string {
    this.set(i);
    const k = this.key();
    this.clear(i);
    return k;
  }
}
