import t from 'tap';
import { createLogger } from '../../src/log.ts';
import { fullGc, releaseMemoryWhenIdle } from '../../src/memory-release.ts';
import { FakeClock } from './support/fake-clock.ts';

const mib = 1048576;

function harness() {
  const clock = new FakeClock();
  const state = { rss: 100 * mib, busy: false, gcs: 0, afterGc: 100 * mib };
  const stop = releaseMemoryWhenIdle({
    clock,
    logger: createLogger({ level: 'silent' }),
    busy: () => state.busy,
    rss: () => state.rss,
    gc: () => {
      state.gcs += 1;
      state.rss = state.afterGc;
    },
    checkEveryMs: 1000,
    growthBytes: 16 * mib,
  });
  return { clock, state, stop };
}

t.test('a burst that grew the RSS is collected once the loop has been idle for a whole period', (t) => {
  const { clock, state, stop } = harness();
  state.busy = true;
  state.rss = 160 * mib;
  clock.advance(5000);
  t.equal(state.gcs, 0, 'no GC while the loop is busy');
  state.busy = false;
  state.afterGc = 110 * mib;
  clock.advance(1000);
  t.equal(state.gcs, 0, 'idle at one check only: it may be between two items');
  clock.advance(1000);
  t.equal(state.gcs, 1, 'idle at two checks in a row with 60 MiB grown: one full GC');
  clock.advance(10_000);
  t.equal(state.gcs, 1, 'nothing grew since: no further GC');
  state.rss = 120 * mib;
  clock.advance(5000);
  t.equal(state.gcs, 1, '10 MiB above the RSS after the last GC is under the threshold');
  state.rss = 130 * mib;
  clock.advance(1000);
  t.equal(state.gcs, 2, '20 MiB above it is over');
  stop();
  state.rss = 500 * mib;
  clock.advance(10_000);
  t.equal(state.gcs, 2, 'stopped: no more checks');
  t.end();
});

t.test('growth without a burst of work still counts from the lowest idle RSS', (t) => {
  const { clock, state } = harness();
  state.rss = 90 * mib;
  clock.advance(1000);
  state.rss = 100 * mib;
  clock.advance(1000);
  t.equal(state.gcs, 0, '10 MiB above the lowest reading');
  state.rss = 107 * mib;
  clock.advance(1000);
  t.equal(state.gcs, 1, '17 MiB above the lowest reading');
  t.end();
});

t.test('fullGc gives a working full GC without --expose-gc', (t) => {
  const gc = fullGc();
  t.type(gc, 'function');
  const before = process.memoryUsage().heapUsed;
  const made = (() => Array.from({ length: 200_000 }, (_, i) => ({ i, s: `x${String(i)}` })).length)();
  t.equal(made, 200_000);
  gc();
  t.ok(process.memoryUsage().heapUsed < before + 8 * mib, 'the garbage made after the first reading is gone');
  t.end();
});
