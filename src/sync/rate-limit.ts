/**
 * A token bucket for rollouts: `ratePerSecond` tokens a second, at most `burst` saved up. Taking never
 * waits: it answers how long until a token is there, so the caller requeues that workload and goes on with
 * other work. A rate of 0 means unlimited.
 */
import type { Clock } from '../clock.ts';

export class TokenBucket {
  private tokens: number;
  private last: number;
  private readonly ratePerSecond: number;
  private readonly burst: number;
  private readonly clock: Clock;

  constructor(ratePerSecond: number, burst: number, clock: Clock) {
    this.ratePerSecond = ratePerSecond;
    this.burst = burst;
    this.clock = clock;
    this.tokens = Math.max(1, burst);
    this.last = clock.now();
  }

  /** 0 when a token was taken, else the milliseconds until one will be there (nothing taken). */
  take(): number {
    if (this.ratePerSecond <= 0) return 0;
    const now = this.clock.now();
    this.tokens = Math.min(
      Math.max(1, this.burst),
      this.tokens + ((now - this.last) / 1000) * this.ratePerSecond,
    );
    this.last = now;
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return 0;
    }
    return Math.ceil(((1 - this.tokens) / this.ratePerSecond) * 1000);
  }
}
