/**
 * A token bucket for rollouts: `ratePerSecond` tokens a second, at most `burst` saved up. Taking never
 * waits: it answers how long until a token is there, so the caller requeues that workload and goes on with
 * other work. A rate of 0 means unlimited.
 *
 * A caller that names itself (`take(key)`) and finds no token gets one reserved, the next after those
 * already promised, and the wait until it: coming back then, it is handed that token. So a throttled
 * workload waits once for its turn, instead of 1,000 of them waking together for each new token and all
 * but one going back to sleep. A reservation its caller no longer needs is given back with `release`.
 */
import { tickMs } from '../clock.ts';
import type { Clock } from '../clock.ts';

/**
 * Sync workers without a limit, or when a low one leaves fewer to do at once. Without a limit, 20 did not
 * measurably lower the CPU of 1,000 rollouts (bench/README.md), so a start or takeover stays at four.
 */
const minWorkers = 4;
/** Sync workers at most, however high the limit: patches in flight to one apiserver. */
const maxWorkers = 32;

/**
 * How many workloads the loop reconciles at a time, and how many Events are written at a time: as many
 * as one tick of the limit releases (20 at the default 20/s), so a tick's patches and Events are in
 * flight together and their answers are read in a few wake-ups instead of one round of four after the
 * other; at least 4 (and 4 without a limit), at most 32.
 */
export function syncWorkers(ratePerSecond: number): number {
  if (ratePerSecond <= 0) return minWorkers;
  const perTick = Math.ceil((ratePerSecond * tickMs) / 1000);
  return Math.min(maxWorkers, Math.max(minWorkers, perTick));
}

export class TokenBucket {
  /** Below 0 while reservations are outstanding: the debt the refill pays back first. */
  private tokens: number;
  private last: number;
  private readonly ratePerSecond: number;
  private readonly burst: number;
  private readonly clock: Clock;
  /** key → when its reserved token is there. */
  private readonly reserved = new Map<string, number>();

  constructor(ratePerSecond: number, burst: number, clock: Clock) {
    this.ratePerSecond = ratePerSecond;
    this.burst = burst;
    this.clock = clock;
    this.tokens = Math.max(1, burst);
    this.last = clock.now();
  }

  /**
   * 0 when a token was taken, else the milliseconds until one will be there. With a `key`, that token is
   * then reserved for it; without, nothing is taken.
   */
  take(key?: string): number {
    if (this.ratePerSecond <= 0) return 0;
    const now = this.clock.now();
    this.tokens = Math.min(
      Math.max(1, this.burst),
      this.tokens + ((now - this.last) / 1000) * this.ratePerSecond,
    );
    this.last = now;
    if (key !== undefined) {
      const at = this.reserved.get(key);
      if (at !== undefined) {
        if (at > now) return at - now;
        this.reserved.delete(key);
        return 0;
      }
    }
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return 0;
    }
    if (key === undefined) return Math.ceil(((1 - this.tokens) / this.ratePerSecond) * 1000);
    this.tokens -= 1;
    const wait = Math.ceil((-this.tokens / this.ratePerSecond) * 1000);
    this.reserved.set(key, now + wait);
    return wait;
  }

  /** Gives back the token reserved for `key`, if it has one it did not take. */
  release(key: string): void {
    if (!this.reserved.delete(key)) return;
    this.tokens = Math.min(Math.max(1, this.burst), this.tokens + 1);
  }

  /** Reservations outstanding. */
  get reservations(): number {
    return this.reserved.size;
  }
}
