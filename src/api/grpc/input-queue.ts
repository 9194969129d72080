// The request messages of a client-streaming or bidi call as an AsyncIterable,
// with a bound: when the handler falls behind, the HTTP/2 stream is paused so
// flow control pushes back on the client instead of buffering without limit.

const HIGH_WATER = 64;

export class InputQueue<T> implements AsyncIterable<T> {
  private items: T[] = [];
  private ended = false;
  private failure: unknown = undefined;
  private wake: (() => void) | undefined;

  constructor(
    private readonly pause: () => void,
    private readonly resume: () => void,
  ) {}

  push(item: T): void {
    this.items.push(item);
    if (this.items.length >= HIGH_WATER) this.pause();
    this.notify();
  }

  end(): void {
    this.ended = true;
    this.notify();
  }

  fail(err: unknown): void {
    this.failure = err;
    this.ended = true;
    this.notify();
  }

  private notify(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<T> {
    for (;;) {
      if (this.items.length > 0) {
        const item = this.items.shift() as T;
        if (this.items.length === HIGH_WATER / 2) this.resume();
        yield item;
        continue;
      }
      if (this.failure !== undefined) throw this.failure;
      if (this.ended) return;
      await new Promise<void>((r) => (this.wake = r));
    }
  }
}
