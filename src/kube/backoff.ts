/**
 * Exponential backoff with jitter, as client-go's reflector uses it (800 ms doubling up to 30 s): after a
 * burst of failures, many replicas reconnecting to a recovering apiserver spread out instead of arriving
 * together, and a connection that keeps failing costs a request every 30 s, not a hot loop.
 */
export interface BackoffOptions {
  /** Delay ceiling before jitter for the first failure. Default 800. */
  readonly initialMs?: number;
  /** Delay ceiling never exceeded. Default 30 000. */
  readonly maxMs?: number;
  /** Source of randomness in [0, 1); tests pass a fixed one. Default Math.random. */
  readonly random?: () => number;
}

export class Backoff {
  readonly #initialMs: number;
  readonly #maxMs: number;
  readonly #random: () => number;
  #failures = 0;

  constructor(opts: BackoffOptions = {}) {
    this.#initialMs = opts.initialMs ?? 800;
    this.#maxMs = opts.maxMs ?? 30_000;
    this.#random = opts.random ?? Math.random;
  }

  /** Consecutive failures since the last reset. */
  get failures(): number {
    return this.#failures;
  }

  /**
   * Records a failure and returns how long to wait: half the ceiling plus a random share of the other
   * half ("equal jitter"), so waits grow reliably yet never line up across clients.
   */
  next(): number {
    this.#failures += 1;
    const ceiling = Math.min(this.#maxMs, this.#initialMs * 2 ** Math.min(this.#failures - 1, 30));
    return Math.round(ceiling / 2 + (this.#random() * ceiling) / 2);
  }

  /** A healthy period ended the series: the next failure waits the initial delay again. */
  reset(): void {
    this.#failures = 0;
  }
}
