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
import type { Clock } from '../clock.ts';

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
