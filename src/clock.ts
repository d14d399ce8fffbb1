/**
 * The process's one source of time: the sync queue and rate limit, the watches' and cache reads'
 * backoff, the transport's silence watchdog, the lease, the startup wait, the certificate poll and the
 * admit deadline. Injected everywhere so unit tests step a fake clock through debounce, backoff and
 * expiry instead of sleeping in real time.
 */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  /** Calls `fn` after `ms`; returns a function that cancels it. Never keeps the process alive. */
  after(ms: number, fn: () => void): () => void;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  after(ms, fn) {
    const timer = setTimeout(fn, ms);
    timer.unref();
    return () => {
      clearTimeout(timer);
    };
  },
};

/**
 * The process's 1 s grid. Throttled workloads wake on it: at the default 20 rollouts/s, twenty of them
 * in one turn of the event loop, their patches and Events in flight together (the loop runs as many
 * workers as a tick releases), instead of one wake-up and its answers' wake-ups per 50 ms token. Each
 * wake-up of an idle process costs CPU of its own (a few hundred microseconds on a shared VM,
 * bench/README.md), and answers that arrive together are read in one.
 */
export const tickMs = 1000;

/** The wait from `now` until the first tick at or after `now + waitMs`. */
export function untilTick(now: number, waitMs: number): number {
  return Math.ceil((now + waitMs) / tickMs) * tickMs - now;
}

/** Resolves after `ms` on `clock`, or as soon as `signal` aborts (never rejects: callers check the signal). */
export function sleep(clock: Clock, ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted === true || ms <= 0) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      cancel();
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const cancel = clock.after(ms, done);
    signal?.addEventListener('abort', done, { once: true });
  });
}
