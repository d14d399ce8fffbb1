// What a long-running command has started, closed in reverse order. Start-up adds each thing as it begins
// starting it; a start-up failure, a signal and a fatal error all end in the same close(), so exactly what
// was started is closed, once, whatever state the process was in. Every step is bounded by its own
// deadline and by the budget of the whole shutdown: a hung API call delays the exit, it never keeps the
// process alive.
import { errorMessage } from '../errors.ts';
import type { Logger } from '../log.ts';

interface Step {
  readonly name: string;
  readonly timeoutMs: number;
  readonly close: () => unknown;
}

/** Thrown by add() once the shutdown has begun. */
export class ShuttingDown extends Error {
  override name = 'ShuttingDown';
  constructor(step: string) {
    super(`not starting ${step}: shutting down`);
  }
}

export class Teardown {
  readonly #logger: Logger;
  readonly #budgetMs: number;
  readonly #steps: Step[] = [];
  #closing: Promise<void> | undefined;

  /** `budgetMs` bounds the whole close(); each step is also bounded by its own timeout. */
  constructor(logger: Logger, budgetMs: number) {
    this.#logger = logger;
    this.#budgetMs = budgetMs;
  }

  /**
   * Records that `name` is about to start: close() will call `close` (within `timeoutMs`). Call it before
   * starting the thing, so a shutdown that comes while it starts still closes it. Once close() has begun
   * it throws instead: start-up stops there, and nothing starts after the shutdown did.
   */
  add(name: string, timeoutMs: number, close: () => unknown): void {
    if (this.#closing !== undefined) throw new ShuttingDown(name);
    this.#steps.push({ name, timeoutMs, close });
  }

  /** Closes everything added, newest first. Calling it again returns the same promise. */
  close(): Promise<void> {
    this.#closing ??= this.#closeAll();
    return this.#closing;
  }

  async #closeAll(): Promise<void> {
    const deadline = performance.now() + this.#budgetMs;
    for (const step of this.#steps.splice(0).reverse()) {
      await this.#run(step, Math.max(0, Math.min(step.timeoutMs, deadline - performance.now())));
    }
  }

  async #run(step: Step, timeoutMs: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => {
        resolve('timeout');
      }, timeoutMs);
    });
    const started = performance.now();
    try {
      const outcome = await Promise.race([Promise.resolve().then(step.close), timedOut]);
      if (outcome === 'timeout') {
        this.#logger.warn(
          { step: step.name, timeoutMs: Math.round(timeoutMs) },
          `${step.name} did not stop in time; shutting down without waiting for it`,
        );
      } else {
        this.#logger.debug({ step: step.name, ms: Math.round(performance.now() - started) }, 'stopped');
      }
    } catch (err) {
      this.#logger.warn({ step: step.name }, `stopping ${step.name} failed: ${errorMessage(err)}`);
    } finally {
      clearTimeout(timer);
    }
  }
}
