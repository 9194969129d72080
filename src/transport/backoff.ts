// Exponential reconnect delays, doubling from min to max, each drawn from
// [d/2, d) with an injected random source so tests replay exactly.
export class Backoff {
  private attempt = 0;

  constructor(
    private readonly minMs: number,
    private readonly maxMs: number,
    private readonly random: () => number,
  ) {}

  next(): number {
    const d = Math.min(this.maxMs, this.minMs * 2 ** Math.min(this.attempt, 30));
    this.attempt++;
    return Math.round(d / 2 + (this.random() * d) / 2);
  }

  /** Jump straight to the longest delay (the peer refused us for a reason retrying will not fix soon). */
  exhaust(): void {
    this.attempt = 31;
  }

  reset(): void {
    this.attempt = 0;
  }
}
