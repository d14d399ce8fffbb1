import t from 'tap';
import { WorkQueue } from '../../src/sync/queue.ts';
import { tickMs, untilTick } from '../../src/clock.ts';
import { syncWorkers, TokenBucket } from '../../src/sync/rate-limit.ts';
import { FakeClock } from './support/fake-clock.ts';

t.test('changes arriving within the debounce window are one work item with every trigger', async (t) => {
  const clock = new FakeClock();
  const queue = new WorkQueue({ debounceMs: 1000, clock });
  queue.add('Deployment/shop/web', 'ConfigMap shop/prices');
  clock.advance(400);
  queue.add('Deployment/shop/web', 'Secret shop/db');
  clock.advance(599);
  t.equal(queue.tryNext(), undefined, 'nothing before the window closes');
  clock.advance(1);
  const item = await queue.next();
  t.equal(item?.key, 'Deployment/shop/web');
  t.same([...(item?.triggers ?? [])].sort(), ['ConfigMap shop/prices', 'Secret shop/db']);
  t.equal(queue.depth, 1, 'the key is being processed');
  queue.done('Deployment/shop/web');
  t.equal(queue.depth, 0);
});

t.test(
  'a key is never processed twice at once; an add during processing comes back after done',
  async (t) => {
    const clock = new FakeClock();
    const queue = new WorkQueue({ debounceMs: 0, clock });
    queue.add('a', 'first');
    const item = await queue.next();
    queue.add('a', 'second');
    t.equal(queue.tryNext(), undefined, 'not handed out while processing');
    queue.done(item?.key ?? '');
    const again = await queue.next();
    t.same([...(again?.triggers ?? [])], ['second']);
  },
);

t.test('an earlier add wins over a later one for the same key', async (t) => {
  const clock = new FakeClock();
  const queue = new WorkQueue({ debounceMs: 1000, clock });
  queue.add('a', 'slow');
  queue.add('a', 'resync', 0);
  t.equal((await queue.next())?.key, 'a', 'handed out at once');
  queue.done('a');
  clock.advance(1000);
  t.equal(queue.tryNext(), undefined, 'and only once');
});

t.test('unrelated keys are handed out in the order they became ready', async (t) => {
  const clock = new FakeClock();
  const queue = new WorkQueue({ debounceMs: 10, clock });
  queue.add('b');
  clock.advance(5);
  queue.add('a');
  clock.advance(10);
  t.equal((await queue.next())?.key, 'b');
  t.equal((await queue.next())?.key, 'a');
});

t.test('retries back off exponentially until forgotten', async (t) => {
  const clock = new FakeClock();
  // The jitter at its top: each pause is the whole ceiling.
  const queue = new WorkQueue({ debounceMs: 0, clock, retryBaseMs: 100, retryMaxMs: 250, random: () => 1 });
  queue.add('a');
  await queue.next();
  t.equal(queue.retry('a', new Set()), 100);
  clock.advance(100);
  await queue.next();
  t.equal(queue.retry('a', new Set()), 200);
  clock.advance(200);
  await queue.next();
  t.equal(queue.retry('a', new Set()), 250, 'capped');
  clock.advance(250);
  await queue.next();
  queue.forget('a');
  t.equal(queue.retry('a', new Set()), 100, 'afresh after success');
});

t.test(
  'a key added while processing and then requeued comes back once, with every trigger, and never again',
  async (t) => {
    const clock = new FakeClock();
    const queue = new WorkQueue({ debounceMs: 1000, clock });
    queue.add('a', 'ConfigMap shop/one', 0);
    const first = await queue.next();
    queue.add('a', 'ConfigMap shop/two'); // arrives during the pass
    queue.requeue('a', first?.triggers ?? new Set(), 300); // throttled: a token in 300 ms
    clock.advance(300);
    const again = queue.tryNext();
    t.same(
      [...(again?.triggers ?? [])].sort(),
      ['ConfigMap shop/one', 'ConfigMap shop/two'],
      'one pass for both',
    );
    queue.done('a');
    clock.advance(10_000);
    t.equal(queue.tryNext(), undefined, 'no stale pass after it');
    t.equal(queue.depth, 0);
  },
);

t.test('a change during a failed pass brings the retry forward to its own delay', async (t) => {
  const clock = new FakeClock();
  const queue = new WorkQueue({ debounceMs: 50, clock, retryBaseMs: 800 });
  queue.add('a', undefined, 0);
  await queue.next();
  queue.add('a', 'Secret shop/db');
  t.equal(queue.retry('a', new Set()), 50, 'the debounce of the new change, not the 800 ms backoff');
  clock.advance(50);
  t.same([...(queue.tryNext()?.triggers ?? [])], ['Secret shop/db']);
  queue.done('a');
  clock.advance(10_000);
  t.equal(queue.tryNext(), undefined, 'and only once');
});

t.test('items are any value with a key: one work item per key', async (t) => {
  const clock = new FakeClock();
  const queue = new WorkQueue<{ kind: string; name: string }>({
    debounceMs: 0,
    clock,
    key: (ref) => `${ref.kind}/${ref.name}`,
  });
  queue.add({ kind: 'Deployment', name: 'web' }, 'x');
  queue.add({ kind: 'Deployment', name: 'web' }, 'y');
  queue.add({ kind: 'StatefulSet', name: 'web' });
  const first = await queue.next();
  t.same(first?.item, { kind: 'Deployment', name: 'web' });
  t.same([...(first?.triggers ?? [])].sort(), ['x', 'y']);
  t.equal((await queue.next())?.key, 'StatefulSet/web');
});

t.test('a full pass yields to changes: a change made during it is handed out next', async (t) => {
  const clock = new FakeClock();
  const queue = new WorkQueue({ debounceMs: 200, clock });
  for (let i = 0; i < 1000; i++) queue.add(`w${String(i)}`, undefined, 0, true);
  t.equal((await queue.next())?.key, 'w0');
  queue.done('w0');
  queue.add('w999', 'ConfigMap shop/changed');
  clock.advance(200);
  const next = await queue.next();
  t.equal(next?.key, 'w999', 'the changed workload jumps the pass');
  t.same([...(next?.triggers ?? [])], ['ConfigMap shop/changed']);
  queue.done('w999');
  const rest: string[] = [];
  for (let item = queue.tryNext(); item !== undefined; item = queue.tryNext()) {
    rest.push(item.key);
    queue.done(item.key);
  }
  t.equal(rest.length, 998, 'the pass goes on, without a second look at the changed one');
  t.equal(rest[0], 'w1', 'in its order');
  t.equal(queue.depth, 0);
});

t.test('shutdown releases waiting workers', async (t) => {
  const queue = new WorkQueue({ debounceMs: 0, clock: new FakeClock() });
  const waiting = queue.next();
  queue.shutdown();
  t.equal(await waiting, undefined);
});

t.test('the rollout bucket allows a burst, then one token per 1/rate seconds, never blocking', (t) => {
  const clock = new FakeClock();
  const bucket = new TokenBucket(2, 3, clock);
  t.same([bucket.take(), bucket.take(), bucket.take()], [0, 0, 0], 'the burst');
  t.equal(bucket.take(), 500, 'the next token is 500 ms away');
  clock.advance(500);
  t.equal(bucket.take(), 0);
  t.equal(new TokenBucket(0, 0, clock).take(), 0, 'rate 0 is unlimited');
  t.end();
});

t.test('a throttled workload waits once: its token is kept for it, after those promised before', (t) => {
  const clock = new FakeClock();
  const bucket = new TokenBucket(10, 2, clock);
  t.same([bucket.take('a'), bucket.take('b')], [0, 0], 'the burst');
  const waits = ['c', 'd', 'e'].map((key) => bucket.take(key));
  t.same(waits, [100, 200, 300], 'each its own turn, 1/rate apart');
  t.equal(bucket.take(), 400, 'a caller without a key comes after them, and takes nothing');
  clock.advance(100);
  t.equal(bucket.take('c'), 0, 'c comes back at its time and gets its token');
  t.equal(bucket.take('d'), 100, 'd is early: the rest of its wait, nothing new reserved');
  clock.advance(100);
  t.equal(bucket.take('d'), 0);
  t.equal(bucket.reservations, 1, 'e still waits');
  t.end();
});

t.test('a reservation given back goes to the next workload', (t) => {
  const clock = new FakeClock();
  const bucket = new TokenBucket(10, 1, clock);
  t.equal(bucket.take('a'), 0);
  t.equal(bucket.take('b'), 100);
  bucket.release('b');
  bucket.release('b');
  t.equal(bucket.reservations, 0);
  t.equal(bucket.take('c'), 100, 'the turn b gave back is c’s');
  t.end();
});

t.test('a throttled workload wakes on the first token tick at or after its token', (t) => {
  const tick = tickMs;
  t.equal(untilTick(10 * tick, tick), tick, 'a token due on a tick: that tick');
  t.equal(untilTick(10 * tick, 1), tick, 'due just after a tick: the next one');
  t.equal(untilTick(10 * tick + 1, tick), 2 * tick - 1, 'due just after the next tick: the one after');
  const due = [50, 100, 150, 200, 250];
  const waits = due.map((wait) => untilTick(1_000_003, wait));
  t.ok(
    waits.every((wait, i) => wait >= (due[i] ?? Infinity)),
    'never before its token is there',
  );
  t.equal(
    new Set(waits.map((wait) => 1_000_003 + wait)).size <= 2,
    true,
    'five 50 ms tokens: at most two wake-ups',
  );
  t.end();
});

t.test('the loop runs as many workers as one tick of the limit releases, within bounds', (t) => {
  t.equal(syncWorkers(20), Math.ceil((20 * tickMs) / 1000), 'the default limit: one tick’s rollouts at once');
  t.equal(syncWorkers(0), 4, 'unlimited: four, as before');
  t.equal(syncWorkers(1), 4, 'a low limit: still four for the passes that roll nothing');
  t.equal(syncWorkers(10_000), 32, 'a high limit: at most 32 patches in flight');
  t.end();
});

t.test('has() tells whether an item is waiting, ready or being processed', async (t) => {
  const clock = new FakeClock();
  const queue = new WorkQueue({ debounceMs: 1000, clock });
  t.equal(queue.has('a'), false, 'never added');
  queue.add('a');
  t.equal(queue.has('a'), true, 'waiting out its debounce');
  clock.advance(1000);
  t.equal(queue.has('a'), true, 'ready');
  const item = await queue.next();
  t.equal(item?.key, 'a');
  t.equal(queue.has('a'), true, 'being processed');
  queue.done('a');
  t.equal(queue.has('a'), false, 'done');
});
