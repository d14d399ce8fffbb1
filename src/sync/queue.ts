// The loop's work queue, in client-go's grammar: items are workload keys, de-duplicated while they wait;
// a key being processed is never handed to a second worker, and a key added meanwhile comes back once the
// first pass is done. Each key carries the triggers (which ConfigMap/Secret changed) merged while queued,
// so the Event of the rollout can say why.
import type { Clock } from '../clock.ts';

export interface QueueOptions {
  /** Delay before a newly added key is handed out; later adds within the window join it. */
  debounceMs: number;
  clock: Clock;
  /** Retry backoff: base * 2^(failures-1), at most max. */
  retryBaseMs?: number;
  retryMaxMs?: number;
}

export interface WorkItem {
  readonly key: string;
  readonly triggers: ReadonlySet<string>;
}

interface Waiting {
  readyAt: number;
  triggers: Set<string>;
  cancel: () => void;
}

export class WorkQueue {
  private readonly waiting = new Map<string, Waiting>();
  private readonly ready: string[] = [];
  private readonly readyTriggers = new Map<string, Set<string>>();
  private readonly processing = new Set<string>();
  /** Added while processing: requeued (with these triggers and delay) when done() is called. */
  private readonly again = new Map<string, { triggers: Set<string>; delayMs: number }>();
  private readonly failures = new Map<string, number>();
  private readonly takers: ((item: WorkItem | undefined) => void)[] = [];
  private closed = false;
  private readonly opts: QueueOptions;

  constructor(opts: QueueOptions) {
    this.opts = opts;
  }

  /** Schedules `key` after the debounce (or `delayMs`); a key already waiting keeps the earlier time. */
  add(key: string, trigger?: string, delayMs = this.opts.debounceMs): void {
    if (this.closed) return;
    if (this.processing.has(key)) {
      const entry = this.again.get(key) ?? { triggers: new Set<string>(), delayMs };
      if (trigger !== undefined) entry.triggers.add(trigger);
      entry.delayMs = Math.min(entry.delayMs, delayMs);
      this.again.set(key, entry);
      return;
    }
    const readyTriggers = this.readyTriggers.get(key);
    if (readyTriggers !== undefined) {
      if (trigger !== undefined) readyTriggers.add(trigger);
      return;
    }
    const readyAt = this.opts.clock.now() + delayMs;
    const existing = this.waiting.get(key);
    if (existing !== undefined) {
      if (trigger !== undefined) existing.triggers.add(trigger);
      if (readyAt >= existing.readyAt) return;
      existing.cancel();
      this.waiting.delete(key);
    }
    const triggers = existing?.triggers ?? new Set<string>();
    if (trigger !== undefined) triggers.add(trigger);
    if (delayMs <= 0) {
      this.makeReady(key, triggers);
      return;
    }
    const cancel = this.opts.clock.after(delayMs, () => {
      this.waiting.delete(key);
      this.makeReady(key, triggers);
    });
    this.waiting.set(key, { readyAt, triggers, cancel });
  }

  /** The next ready key if there is one now, without waiting. */
  tryNext(): WorkItem | undefined {
    const key = this.ready.shift();
    return key === undefined ? undefined : this.take(key);
  }

  /** Hands out the next ready key, waiting for one; undefined once the queue is shut down. */
  async next(): Promise<WorkItem | undefined> {
    const key = this.ready.shift();
    if (key !== undefined) return this.take(key);
    if (this.closed) return undefined;
    return new Promise((resolve) => this.takers.push(resolve));
  }

  /** The key's pass is over; if it was added meanwhile it is scheduled again. */
  done(key: string): void {
    this.processing.delete(key);
    const again = this.again.get(key);
    if (again === undefined) return;
    this.again.delete(key);
    for (const trigger of again.triggers) this.add(key, trigger, again.delayMs);
    if (again.triggers.size === 0) this.add(key, undefined, again.delayMs);
  }

  /** The key's pass failed: schedule it again with exponential backoff. */
  retry(key: string, triggers: ReadonlySet<string>): number {
    const failures = (this.failures.get(key) ?? 0) + 1;
    this.failures.set(key, failures);
    const base = this.opts.retryBaseMs ?? 500;
    const delay = Math.min(base * 2 ** (failures - 1), this.opts.retryMaxMs ?? 60_000);
    this.done(key);
    this.requeue(key, triggers, delay);
    return delay;
  }

  /** Schedules the key again after `delayMs` keeping its triggers (e.g. waiting for a rollout token). */
  requeue(key: string, triggers: ReadonlySet<string>, delayMs: number): void {
    this.processing.delete(key);
    if (triggers.size === 0) this.add(key, undefined, delayMs);
    for (const trigger of triggers) this.add(key, trigger, delayMs);
  }

  /** The key succeeded: its next failure starts the backoff afresh. */
  forget(key: string): void {
    this.failures.delete(key);
  }

  /** Keys waiting, ready or being processed. */
  get depth(): number {
    return this.waiting.size + this.ready.length + this.processing.size;
  }

  shutdown(): void {
    this.closed = true;
    for (const waiting of this.waiting.values()) waiting.cancel();
    this.waiting.clear();
    for (const taker of this.takers.splice(0)) taker(undefined);
  }

  private makeReady(key: string, triggers: Set<string>): void {
    if (this.closed) return;
    const taker = this.takers.shift();
    this.readyTriggers.set(key, triggers);
    if (taker !== undefined) {
      taker(this.take(key));
      return;
    }
    this.ready.push(key);
  }

  private take(key: string): WorkItem {
    const triggers = this.readyTriggers.get(key) ?? new Set<string>();
    this.readyTriggers.delete(key);
    this.processing.add(key);
    return { key, triggers };
  }
}
