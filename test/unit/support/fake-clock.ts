import type { Clock } from '../../../src/clock.ts';

/** A clock that moves only when told: timers fire in order as `advance` passes them. */
export class FakeClock implements Clock {
  private time: number;
  private timers: { at: number; fn: () => void; id: number }[] = [];
  private nextId = 0;

  /** `start`: the epoch milliseconds it reads first, for code that compares it with real dates. */
  constructor(start = 0) {
    this.time = start;
  }

  now(): number {
    return this.time;
  }

  after(ms: number, fn: () => void): () => void {
    const id = this.nextId++;
    this.timers.push({ at: this.time + ms, fn, id });
    return () => {
      this.timers = this.timers.filter((timer) => timer.id !== id);
    };
  }

  /** How long until each armed timer fires, soonest first: what the code under test is waiting for. */
  get pending(): number[] {
    return this.timers.map((timer) => timer.at - this.time).sort((a, b) => a - b);
  }

  advance(ms: number): void {
    const end = this.time + ms;
    for (;;) {
      const due = this.due(end);
      if (due === undefined) break;
      this.fire(due);
    }
    this.time = end;
  }

  /**
   * `advance` for code that awaits between timers (a retry loop awaiting `sleep`): before each due timer
   * and after the last, pending promise callbacks run, so a timer they arm inside the window fires too.
   * Network I/O is not waited for: a test waits for the request itself.
   */
  async advanceBy(ms: number): Promise<void> {
    const end = this.time + ms;
    for (;;) {
      await flush();
      const due = this.due(end);
      if (due === undefined) break;
      this.fire(due);
    }
    this.time = end;
    await flush();
  }

  private due(end: number): { at: number; fn: () => void; id: number } | undefined {
    return this.timers.filter((timer) => timer.at <= end).sort((a, b) => a.at - b.at || a.id - b.id)[0];
  }

  private fire(due: { at: number; fn: () => void; id: number }): void {
    this.timers = this.timers.filter((timer) => timer !== due);
    this.time = due.at;
    due.fn();
  }
}

/** Lets every queued promise callback run: setImmediate comes after the microtask queue has drained. */
function flush(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
