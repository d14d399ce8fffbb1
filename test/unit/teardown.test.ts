// The one place that knows what `wave serve` started: closed newest first, each step bounded, nothing
// started once the shutdown has begun.
import t from 'tap';
import { ShuttingDown, Teardown } from '../../src/cli/teardown.ts';
import { createLogger } from '../../src/log.ts';

function capture() {
  const lines: { msg: string; step?: string }[] = [];
  const logger = createLogger({
    level: 'debug',
    destination: {
      write: (line: string) => {
        lines.push(JSON.parse(line) as { msg: string; step?: string });
      },
    },
  });
  return { logger, lines };
}

const never = () => new Promise<void>(() => undefined);

t.test('everything added is closed once, newest first', async (t) => {
  const { logger } = capture();
  const teardown = new Teardown(logger, 1000);
  const closed: string[] = [];
  for (const name of ['events', 'health', 'webhook', 'loop']) {
    teardown.add(name, 100, () => {
      closed.push(name);
    });
  }
  const first = teardown.close();
  t.equal(teardown.close(), first, 'a second close() is the same shutdown');
  await first;
  t.same(closed, ['loop', 'webhook', 'health', 'events']);
  await teardown.close();
  t.equal(closed.length, 4, 'nothing is closed twice');
});

t.test('a step that hangs or throws is logged and the next ones still close', async (t) => {
  const { logger, lines } = capture();
  const teardown = new Teardown(logger, 5000);
  const closed: string[] = [];
  teardown.add('events', 100, () => {
    closed.push('events');
  });
  teardown.add('lease', 20, never);
  teardown.add('registration', 100, () => Promise.reject(new Error('HTTP 500')));
  const startedAt = performance.now();
  await teardown.close();
  t.ok(performance.now() - startedAt < 1000, 'the hung step was given up at its deadline');
  t.same(closed, ['events']);
  t.ok(
    lines.some((l) => l.step === 'lease' && /did not stop in time/.test(l.msg)),
    'the hung step is named',
  );
  t.ok(
    lines.some((l) => l.step === 'registration' && l.msg === 'stopping registration failed: HTTP 500'),
    'the failed step is named with its error',
  );
});

t.test('the budget bounds the whole shutdown, however long each step may take', async (t) => {
  const { logger, lines } = capture();
  const teardown = new Teardown(logger, 50);
  for (const name of ['a', 'b', 'c']) teardown.add(name, 60_000, never);
  const startedAt = performance.now();
  await teardown.close();
  t.ok(performance.now() - startedAt < 1000, 'three hung steps of 60 s each took the 50 ms budget');
  t.equal(lines.filter((l) => /did not stop in time/.test(l.msg)).length, 3, 'each is reported');
});

t.test('once the shutdown began, nothing more is started', async (t) => {
  const { logger } = capture();
  const teardown = new Teardown(logger, 1000);
  const closing = teardown.close();
  let closedLate = false;
  t.throws(
    () => {
      teardown.add('sync loop', 100, () => {
        closedLate = true;
      });
    },
    ShuttingDown,
    'add() refuses, so start-up stops before starting it',
  );
  await closing;
  t.equal(closedLate, false, 'and what it refused is not closed: it never started');
});
