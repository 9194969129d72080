// A min-heap of (time, id) with one entry per id: setting an id again moves
// its entry instead of adding one. The lessor keeps lease expiries and
// checkpoint times here; a keep-alive storm on one lease (etcd's
// lease-keepalive benchmark renews the same lease thousands of times a
// second) then costs O(log n) per renewal and no memory, where a heap with
// lazy deletion would grow by one stale entry per renewal.

interface Slot {
  id: bigint;
  time: number;
}

export class IndexedHeap {
  private readonly slots: Slot[] = [];
  private readonly pos = new Map<bigint, number>();

  get size(): number {
    return this.slots.length;
  }

  /** Adds `id` at `time`, or moves it there. */
  set(id: bigint, time: number): void {
    const i = this.pos.get(id);
    if (i === undefined) {
      this.slots.push({ id, time });
      this.pos.set(id, this.slots.length - 1);
      this.up(this.slots.length - 1);
      return;
    }
    const before = this.slots[i].time;
    this.slots[i].time = time;
    if (time < before) this.up(i);
    else this.down(i);
  }

  delete(id: bigint): void {
    const i = this.pos.get(id);
    if (i === undefined) return;
    const last = this.slots.length - 1;
    this.swap(i, last);
    this.slots.pop();
    this.pos.delete(id);
    if (i < this.slots.length) {
      this.up(i);
      this.down(i);
    }
  }

  /** The earliest entry, if any. */
  peek(): Slot | undefined {
    return this.slots[0];
  }

  clear(): void {
    this.slots.length = 0;
    this.pos.clear();
  }

  private up(i: number): void {
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.less(i, parent)) break;
      this.swap(i, parent);
      i = parent;
    }
  }

  private down(i: number): void {
    const n = this.slots.length;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let min = i;
      if (l < n && this.less(l, min)) min = l;
      if (r < n && this.less(r, min)) min = r;
      if (min === i) return;
      this.swap(i, min);
      i = min;
    }
  }

  /** Ties broken by id, so the order never depends on insertion history. */
  private less(a: number, b: number): boolean {
    const x = this.slots[a];
    const y = this.slots[b];
    return x.time < y.time || (x.time === y.time && x.id < y.id);
  }

  private swap(a: number, b: number): void {
    if (a === b) return;
    const x = this.slots[a];
    const y = this.slots[b];
    this.slots[a] = y;
    this.slots[b] = x;
    this.pos.set(y.id, a);
    this.pos.set(x.id, b);
  }
}
