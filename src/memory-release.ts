// Gives a burst's memory back once wave is idle again. V8 keeps the pages a heap grew to during a burst
// of work (the first sync of thousands of objects, a fan-out of rollouts) until a full GC, and an idle
// process seldom runs one: the RSS a burst left stayed, 30 s later, within 0.1 MiB (bench/README.md,
// "Loaded memory after a forced GC"). So, when the loop has been idle for a whole check period and the RSS
// has grown by more than `growthBytes` since the last release, one full GC runs (tens of ms on wave's
// heap, while nothing waits on it). The RSS a memory limit must cover is then what wave holds, not the
// garbage of its last burst.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { Clock } from './clock.ts';
import type { Logger } from './log.ts';

/** V8's full GC: `globalThis.gc` when node runs with --expose-gc, else exposed at run time. */
export function fullGc(): () => void {
  const exposed = (globalThis as { gc?: unknown }).gc;
  if (typeof exposed === 'function') return exposed as () => void;
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}

export interface MemoryReleaseOptions {
  readonly clock: Clock;
  readonly logger: Logger;
  /** True while there is work being done or ready to be done (not work scheduled for later). */
  readonly busy: () => boolean;
  /** Default 16 MiB. */
  readonly growthBytes?: number;
  /** Default 5 s. */
  readonly checkEveryMs?: number;
  /** Default process.memoryUsage.rss. */
  readonly rss?: () => number;
  /** Default fullGc(). */
  readonly gc?: () => void;
}

const mib = (bytes: number) => Math.round((bytes / 1048576) * 10) / 10;

/** Starts the checks; returns the function that stops them. */
export function releaseMemoryWhenIdle(o: MemoryReleaseOptions): () => void {
  const growthBytes = o.growthBytes ?? 16 * 1048576;
  const checkEveryMs = o.checkEveryMs ?? 5000;
  const rss = o.rss ?? (() => process.memoryUsage.rss());
  let gc = o.gc;
  let baseline = rss();
  let idleChecks = 0;
  let cancel: (() => void) | undefined;
  const check = () => {
    if (o.busy()) {
      idleChecks = 0;
    } else {
      idleChecks += 1;
      const before = rss();
      baseline = Math.min(baseline, before);
      // Idle at two checks in a row: idle for at least a whole period, not between two items.
      if (idleChecks >= 2 && before - baseline > growthBytes) {
        gc ??= fullGc();
        const started = performance.now();
        gc();
        baseline = rss();
        o.logger.debug(
          { rssMiB: mib(before), afterMiB: mib(baseline), ms: Math.round(performance.now() - started) },
          'idle after a burst of work: ran a full GC to return its memory',
        );
      }
    }
    cancel = o.clock.after(checkEveryMs, check);
  };
  cancel = o.clock.after(checkEveryMs, check);
  return () => {
    cancel?.();
  };
}
