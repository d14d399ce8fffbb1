// The loop's work queue, in client-go's grammar: items are workload references, de-duplicated by key while
// they wait; an item being processed is never handed to a second worker, and one added meanwhile comes
// back once the first pass is over. Each item carries the triggers (which ConfigMap/Secret changed)
// merged while queued, so the Event of the rollout can say why.
import type { Clock } from '../clock.ts';
import { Backoff } from '../kube/backoff.ts';

export interface QueueOptions<T> {
  /** Delay before a newly added item is handed out; later adds within the window join it. */
  debounceMs: number;
  clock: Clock;
  /** The item's identity; items with one key are one work item. Default: the item itself as a string. */
  key?: (item: T) => string;
  /** Retry backoff, the process's one Backoff: about base * 2^(failures-1), at most max, with jitter. */
  retryBaseMs?: number;
  retryMaxMs?: number;
  /** The backoff's source of randomness; tests pass a fixed one. */
  random?: () => number;
}

export interface WorkItem<T> {
  readonly key: string;
  readonly item: T;
  readonly triggers: ReadonlySet<string>;
}

interface Waiting<T> {
  readonly item: T;
  readyAt: number;
  background: boolean;
  triggers: Set<string>;
  cancel: () => void;
}

interface Again<T> {
  readonly item: T;
  triggers: Set<string>;
  delayMs: number;
}

export class WorkQueue<T = string> {
  private readonly waiting = new Map<string, Waiting<T>>();
  private readonly ready: string[] = [];
  /** Ready keys of full passes (takeover, resync): handed out only when no change is ready. */
  private readonly readyBackground: string[] = [];
  private readonly readyItems = new Map<string, { item: T; triggers: Set<string>; background: boolean }>();
  private readonly processing = new Set<string>();
  /** Added while processing: scheduled again (with these triggers and delay) when the pass ends. */
  private readonly again = new Map<string, Again<T>>();
  private readonly failures = new Map<string, Backoff>();
  private readonly takers: ((item: WorkItem<T> | undefined) => void)[] = [];
  private closed = false;
  private readonly opts: QueueOptions<T>;
  private readonly keyOf: (item: T) => string;

  constructor(opts: QueueOptions<T>) {
    this.opts = opts;
    this.keyOf = opts.key ?? String;
  }

  /**
   * Schedules `item` after the debounce (or `delayMs`); an item already waiting keeps the earlier time.
   * A `background` add (a full pass over every workload) yields to every other ready item, so changes
   * made around a takeover or a resync do not wait behind thousands of workloads with nothing to do.
   */
  add(item: T, trigger?: string, delayMs = this.opts.debounceMs, background = false): void {
    if (this.closed) return;
    const key = this.keyOf(item);
    if (this.processing.has(key)) {
      const entry = this.again.get(key) ?? { item, triggers: new Set<string>(), delayMs };
      if (trigger !== undefined) entry.triggers.add(trigger);
      entry.delayMs = Math.min(entry.delayMs, delayMs);
      this.again.set(key, entry);
      return;
    }
    const ready = this.readyItems.get(key);
    if (ready !== undefined) {
      if (trigger !== undefined) ready.triggers.add(trigger);
      if (ready.background && !background) {
        // Promoted: its place in the background list is skipped when reached.
        ready.background = false;
        this.ready.push(key);
      }
      return;
    }
    const readyAt = this.opts.clock.now() + delayMs;
    const existing = this.waiting.get(key);
    if (existing !== undefined) {
      if (trigger !== undefined) existing.triggers.add(trigger);
      if (!background) existing.background = false;
      if (readyAt >= existing.readyAt) return;
      existing.cancel();
      this.waiting.delete(key);
    }
    const triggers = existing?.triggers ?? new Set<string>();
    if (trigger !== undefined) triggers.add(trigger);
    const entry: Waiting<T> = {
      item,
      readyAt,
      triggers,
      background: background && existing?.background !== false,
      cancel: () => undefined,
    };
    if (delayMs <= 0) {
      this.makeReady(key, item, triggers, entry.background);
      return;
    }
    entry.cancel = this.opts.clock.after(delayMs, () => {
      this.waiting.delete(key);
      this.makeReady(key, item, triggers, entry.background);
    });
    this.waiting.set(key, entry);
  }

  /** The next ready item if there is one now, without waiting. */
  tryNext(): WorkItem<T> | undefined {
    const key = this.nextReadyKey();
    return key === undefined ? undefined : this.take(key);
  }

  /** Hands out the next ready item, waiting for one; undefined once the queue is shut down. */
  async next(): Promise<WorkItem<T> | undefined> {
    const key = this.nextReadyKey();
    if (key !== undefined) return this.take(key);
    if (this.closed) return undefined;
    return new Promise((resolve) => this.takers.push(resolve));
  }

  /** The item's pass is over; if it was added meanwhile it is scheduled again. */
  done(item: T): void {
    const key = this.keyOf(item);
    this.processing.delete(key);
    const again = this.again.get(key);
    if (again === undefined) return;
    this.again.delete(key);
    this.schedule(again.item, again.triggers, again.delayMs);
  }

  /**
   * The item's pass failed: schedule it again with exponential backoff; returns the delay. A change that
   * arrived during the failed pass is new information: it may bring the pass forward to its own delay.
   */
  retry(item: T, triggers: ReadonlySet<string>): number {
    const key = this.keyOf(item);
    let failures = this.failures.get(key);
    if (failures === undefined) {
      failures = new Backoff({
        initialMs: this.opts.retryBaseMs ?? 500,
        maxMs: this.opts.retryMaxMs ?? 60_000,
        ...(this.opts.random === undefined ? {} : { random: this.opts.random }),
      });
      this.failures.set(key, failures);
    }
    const backoff = failures.next();
    const delay = Math.min(backoff, this.again.get(key)?.delayMs ?? backoff);
    this.requeue(item, triggers, delay);
    return delay;
  }

  /**
   * Ends the item's pass and schedules it again after `delayMs` with its triggers (e.g. waiting for a
   * rollout token). Adds that arrived during the pass join this one pass: the later pass reads the
   * caches afresh, so a second one for them would only repeat it.
   */
  requeue(item: T, triggers: ReadonlySet<string>, delayMs: number): void {
    const key = this.keyOf(item);
    this.processing.delete(key);
    const again = this.again.get(key);
    this.again.delete(key);
    this.schedule(item, new Set([...triggers, ...(again?.triggers ?? [])]), delayMs);
  }

  /** The item succeeded: its next failure starts the backoff afresh. */
  forget(item: T): void {
    this.failures.delete(this.keyOf(item));
  }

  /** Whether the item is waiting, ready or being processed. */
  has(item: T): boolean {
    const key = this.keyOf(item);
    return this.waiting.has(key) || this.readyItems.has(key) || this.processing.has(key);
  }

  /** Items ready or being processed (not those waiting for their time). */
  get active(): number {
    return this.readyItems.size + this.processing.size;
  }

  /** Items waiting, ready or being processed. */
  get depth(): number {
    return this.waiting.size + this.readyItems.size + this.processing.size;
  }

  shutdown(): void {
    this.closed = true;
    for (const waiting of this.waiting.values()) waiting.cancel();
    this.waiting.clear();
    for (const taker of this.takers.splice(0)) taker(undefined);
  }

  private schedule(item: T, triggers: ReadonlySet<string>, delayMs: number): void {
    if (triggers.size === 0) this.add(item, undefined, delayMs);
    for (const trigger of triggers) this.add(item, trigger, delayMs);
  }

  private makeReady(key: string, item: T, triggers: Set<string>, background: boolean): void {
    if (this.closed) return;
    const taker = this.takers.shift();
    this.readyItems.set(key, { item, triggers, background });
    if (taker !== undefined) {
      taker(this.take(key));
      return;
    }
    (background ? this.readyBackground : this.ready).push(key);
  }

  /** A ready change first, else the next of a full pass; skips keys handed out or promoted meanwhile. */
  private nextReadyKey(): string | undefined {
    for (;;) {
      const key = this.ready.shift();
      if (key === undefined) break;
      const entry = this.readyItems.get(key);
      if (entry !== undefined && !entry.background) return key;
    }
    for (;;) {
      const key = this.readyBackground.shift();
      if (key === undefined) return undefined;
      if (this.readyItems.get(key)?.background === true) return key;
    }
  }

  private take(key: string): WorkItem<T> {
    const ready = this.readyItems.get(key);
    this.readyItems.delete(key);
    if (ready === undefined) throw new Error(`queue item ${key} was handed out without being ready`);
    this.processing.add(key);
    return { key, item: ready.item, triggers: ready.triggers };
  }
}
