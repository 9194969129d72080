// A small event emitter with node's on/once/off/emit semantics, tuned for a
// stream's handful of events: each has its own field (no per-stream
// dictionary), a lone listener is stored without an array, and events that
// fire at most once need no once-wrapper. Unlike node's, emitting 'error'
// with no listener does not throw: a stream error must never take the
// process down.

type Listener = (...args: any[]) => void;
type Slot = Listener | Listener[] | undefined;

interface OnceWrapper extends Listener {
  listener: Listener;
}

/** Events a stream emits at most once: once() needs no wrapper for them. */
const SINGLE_SHOT = new Set(["end", "close", "finish", "aborted", "wantTrailers"]);

export class Emitter {
  private evData: Slot = undefined;
  private evEnd: Slot = undefined;
  private evClose: Slot = undefined;
  private evError: Slot = undefined;
  private evDrain: Slot = undefined;
  private evWantTrailers: Slot = undefined;
  private evOther: Map<string, Slot> | undefined = undefined;

  private getSlot(name: string): Slot {
    switch (name) {
      case "data":
        return this.evData;
      case "end":
        return this.evEnd;
      case "close":
        return this.evClose;
      case "error":
        return this.evError;
      case "drain":
        return this.evDrain;
      case "wantTrailers":
        return this.evWantTrailers;
      default:
        return this.evOther?.get(name);
    }
  }

  private setSlot(name: string, slot: Slot): void {
    switch (name) {
      case "data":
        this.evData = slot;
        return;
      case "end":
        this.evEnd = slot;
        return;
      case "close":
        this.evClose = slot;
        return;
      case "error":
        this.evError = slot;
        return;
      case "drain":
        this.evDrain = slot;
        return;
      case "wantTrailers":
        this.evWantTrailers = slot;
        return;
      default:
        (this.evOther ??= new Map()).set(name, slot);
    }
  }

  on(name: string, fn: Listener): this {
    const slot = this.getSlot(name);
    if (slot === undefined) this.setSlot(name, fn);
    else if (typeof slot === "function") this.setSlot(name, [slot, fn]);
    else slot.push(fn);
    this.onListenerAdded(name);
    return this;
  }

  addListener(name: string, fn: Listener): this {
    return this.on(name, fn);
  }

  once(name: string, fn: Listener): this {
    if (SINGLE_SHOT.has(name)) return this.on(name, fn);
    const wrapper = ((...args: any[]) => {
      this.off(name, wrapper);
      fn.apply(this, args);
    }) as OnceWrapper;
    wrapper.listener = fn;
    return this.on(name, wrapper);
  }

  off(name: string, fn: Listener): this {
    const slot = this.getSlot(name);
    if (slot === undefined) return this;
    const matches = (l: Listener) => l === fn || (l as OnceWrapper).listener === fn;
    if (typeof slot === "function") {
      if (matches(slot)) this.setSlot(name, undefined);
      return this;
    }
    // Remove the last matching listener, as node does.
    for (let i = slot.length - 1; i >= 0; i--) {
      if (matches(slot[i])) {
        slot.splice(i, 1);
        break;
      }
    }
    if (slot.length === 0) this.setSlot(name, undefined);
    else if (slot.length === 1) this.setSlot(name, slot[0]);
    return this;
  }

  removeListener(name: string, fn: Listener): this {
    return this.off(name, fn);
  }

  removeAllListeners(name?: string): this {
    if (name !== undefined) {
      this.setSlot(name, undefined);
      return this;
    }
    this.evData = this.evEnd = this.evClose = this.evError = this.evDrain = this.evWantTrailers = undefined;
    this.evOther = undefined;
    return this;
  }

  listenerCount(name: string): number {
    const slot = this.getSlot(name);
    return slot === undefined ? 0 : typeof slot === "function" ? 1 : slot.length;
  }

  emit(name: string, a?: unknown, b?: unknown): boolean {
    const slot = this.getSlot(name);
    if (slot === undefined) return false;
    if (typeof slot === "function") {
      slot.call(this, a, b);
      return true;
    }
    // Copy: a listener may add or remove listeners while we iterate.
    const copy = slot.slice();
    for (let i = 0; i < copy.length; i++) copy[i].call(this, a, b);
    return true;
  }

  /** Hook for subclasses (a stream starts flowing when 'data' gets a listener). */
  protected onListenerAdded(_name: string): void {}
}
