// The reflector against a scripted fake apiserver: every network condition it promises to survive,
// produced on demand. The reflector and its transport run on a fake clock the tests step, so pauses,
// backoff growth and silence timeouts are asserted to the millisecond and no test sleeps to count
// requests; only the HTTP itself is real, and waiting for it is waiting for I/O, not for time.
import t from 'tap';
import type { Test } from 'tap';
import { KubeTransport } from '../../src/kube/transport.ts';
import { configMapsResource, Reflector, ReflectorGroup } from '../../src/kube/watch.ts';
import type { ReflectorOptions, WatchEvent } from '../../src/kube/watch.ts';
import { createLogger } from '../../src/log.ts';
import { Metrics } from '../../src/metrics.ts';
import { waitFor } from '../support/cluster.ts';
import { FakeApiServer, configMap, listPage } from '../support/fake-apiserver.ts';
import type { FakeRequest, Responder, WatchStream } from '../support/fake-apiserver.ts';
import { FakeClock } from './support/fake-clock.ts';

interface Item {
  readonly name: string;
  readonly resourceVersion: string;
  readonly data: unknown;
}

async function harness(
  t: Test,
  respond: Responder,
  options: Partial<Omit<ReflectorOptions<Item>, 'transport' | 'handler' | 'transform' | 'logger'>> = {},
  /** Called after each delivered event is recorded, from inside the reflector's handler. */
  onEvent?: (event: WatchEvent<Item>) => void,
) {
  const clock = new FakeClock();
  /** When each request arrived, on the fake clock. */
  const arrivals = new Map<FakeRequest, number>();
  const server = await FakeApiServer.start((request, response) => {
    arrivals.set(request, clock.now());
    respond(request, response);
  });
  const lines: { level: string; msg: string }[] = [];
  const logger = createLogger({
    level: 'debug',
    destination: {
      write: (line: string) => void lines.push(JSON.parse(line) as { level: string; msg: string }),
    },
  });
  const metrics = new Metrics({ defaultMetrics: false });
  const events: WatchEvent<Item>[] = [];
  const reflector = new Reflector<Item>({
    resource: configMapsResource,
    namespace: 'ns',
    silenceTimeoutMs: 2_000,
    minHealthyWatchMs: 1_000,
    ...options,
    // Half-way jitter: every pause is known in advance (three quarters of its ceiling).
    backoff: { initialMs: 20, maxMs: 100, random: () => 0.5, ...options.backoff },
    clock,
    transport: new KubeTransport(server.kubeConfig(), { clock }),
    transform: (raw, identity) => ({
      name: identity.name,
      resourceVersion: identity.resourceVersion,
      data: raw['data'],
    }),
    handler: (event) => {
      events.push(event);
      onEvent?.(event);
    },
    logger,
    metrics,
  });
  t.teardown(async () => {
    await reflector.stop();
    await server.close();
  });
  const restarts = async (reason: string): Promise<number> => {
    const metric = await metrics.watchRestarts.get();
    return metric.values.find((value) => value.labels['reason'] === reason)?.value ?? 0;
  };
  const at = (request: FakeRequest | undefined): number => {
    const time = request === undefined ? undefined : arrivals.get(request);
    if (time === undefined) throw new Error('no such request');
    return time;
  };
  /** Waits for I/O until the reflector's one timer is a pause of `ms`: it sleeps, nothing in flight. */
  const pausing = (ms: number) =>
    until(`a pause of ${ms} ms alone`, () => clock.pending.length === 1 && clock.pending[0] === ms);
  return { server, reflector, events, lines, restarts, clock, at, pausing };
}

/** Scripts a list answer and keeps each watch stream open for the test to feed. */
function listThenWatch(list: () => unknown, streams: WatchStream[]): Responder {
  return (request, response) => {
    if (request.watch) streams.push(response.stream());
    else response.json(200, list());
  };
}

const describe = (event: WatchEvent<Item>): string => {
  switch (event.type) {
    case 'added':
      return `added ${event.object.name}@${event.object.resourceVersion}`;
    case 'updated':
      return `updated ${event.old.name}@${event.old.resourceVersion}->${event.object.resourceVersion}`;
    case 'deleted':
      return `deleted ${event.old.name}@${event.old.resourceVersion}`;
    case 'synced':
      return `synced ${event.initial ? 'initial' : 'relist'} ${event.count}`;
  }
};

const until = (what: string, check: () => boolean, timeoutMs = 5_000) =>
  waitFor(what, () => check() || undefined, { timeoutMs, intervalMs: 5 });

t.test(
  'a paginated list is read page by page, delivered, and the watch starts at its resourceVersion',
  async (t) => {
    const pages: Record<string, unknown> = {
      '': listPage([configMap('a', '1'), configMap('b', '2')], '15', 'page-2'),
      'page-2': listPage([configMap('c', '3'), configMap('d', '4')], '15', 'page-3'),
      'page-3': listPage([configMap('e', '5')], '15'),
    };
    const streams: WatchStream[] = [];
    const h = await harness(
      t,
      (request, response) => {
        if (request.watch) streams.push(response.stream());
        else response.json(200, pages[request.query.get('continue') ?? '']);
      },
      { pageSize: 2 },
    );
    h.reflector.start();
    await h.reflector.whenSynced();
    await until('the watch', () => streams.length === 1);

    t.same(
      h.server.lists.map((request) => [request.query.get('limit'), request.query.get('continue')]),
      [
        ['2', null],
        ['2', 'page-2'],
        ['2', 'page-3'],
      ],
      'three pages of two, each asked with the previous continue token',
    );
    t.same(h.events.map(describe), [
      'added a@1',
      'added b@2',
      'added c@3',
      'added d@4',
      'added e@5',
      'synced initial 5',
    ]);
    const watch = h.server.watches[0];
    t.equal(watch?.query.get('resourceVersion'), '15', 'the watch starts at the list resourceVersion');
    t.equal(watch?.query.get('allowWatchBookmarks'), 'true');
    const timeout = Number(watch?.query.get('timeoutSeconds'));
    t.ok(timeout >= 300 && timeout < 600, `the server timeout ${timeout}s is drawn from [5, 10) minutes`);
    t.equal(h.reflector.size, 5);
  },
);

t.test(
  'an empty list, whose items PartialObjectMetadataList sends as null, syncs with nothing',
  async (t) => {
    const streams: WatchStream[] = [];
    const h = await harness(
      t,
      listThenWatch(
        () => ({ kind: 'PartialObjectMetadataList', metadata: { resourceVersion: '7' }, items: null }),
        streams,
      ),
      { metadataOnly: true },
    );
    h.reflector.start();
    await h.reflector.whenSynced();
    t.same(h.events.map(describe), ['synced initial 0']);
    await until('the watch', () => streams.length === 1);
    t.equal(h.server.watches[0]?.query.get('resourceVersion'), '7');
  },
);

t.test('watch events reach the handler with the old and new object', async (t) => {
  const streams: WatchStream[] = [];
  const h = await harness(
    t,
    listThenWatch(() => listPage([configMap('a', '1'), configMap('b', '2')], '10'), streams),
  );
  h.reflector.start();
  await until('the watch', () => streams.length === 1);
  const stream = streams[0] as WatchStream;
  stream.event('ADDED', configMap('c', '11'));
  stream.event('MODIFIED', configMap('a', '12', { k: 'v2' }));
  stream.event('DELETED', configMap('b', '13'));
  await until('three events', () => h.events.length === 6);

  t.same(h.events.slice(3).map(describe), ['added c@11', 'updated a@1->12', 'deleted b@2']);
  const updated = h.events[4];
  t.same(
    updated?.type === 'updated' ? updated.object.data : undefined,
    { k: 'v2' },
    'the new object is the event one',
  );
  t.equal(h.reflector.resourceVersion, '13');
  t.same([...h.reflector.entries()].map(([key]) => key).sort(), ['ns/a', 'ns/c']);
});

t.test('410 Gone in the watch stream relists and delivers a synthetic diff: nothing is lost', async (t) => {
  let listCalls = 0;
  const streams: WatchStream[] = [];
  const h = await harness(
    t,
    listThenWatch(() => {
      listCalls += 1;
      return listCalls === 1
        ? listPage([configMap('a', '1'), configMap('b', '2'), configMap('c', '3')], '10')
        : listPage([configMap('a', '1'), configMap('b', '20'), configMap('d', '21')], '25');
    }, streams),
  );
  h.reflector.start();
  await until('the first watch', () => streams.length === 1);
  streams[0]?.error(410, 'Expired', 'too old resource version: 10 (20)');
  await until('the watch after the relist', () => streams.length === 2);

  t.same(h.events.map(describe), [
    'added a@1',
    'added b@2',
    'added c@3',
    'synced initial 3',
    'updated b@2->20',
    'added d@21',
    'deleted c@3',
    'synced relist 3',
  ]);
  t.equal(
    h.server.watches[1]?.query.get('resourceVersion'),
    '25',
    'the new watch starts at the relist version',
  );
  t.equal(await h.restarts('gone'), 1, 'the restart is counted as gone');
  t.equal(h.clock.now(), 0, 'the first 410 relists at once: the relist came without the clock moving');
  t.same(h.clock.pending, [2_000], "nothing is armed but the new watch's silence timeout");
});

t.test('a server that answers every watch with 410 is relisted with growing pauses', async (t) => {
  const h = await harness(
    t,
    (request, response) => {
      if (request.watch) response.stream().error(410, 'Expired', 'too old resource version');
      else response.json(200, listPage([configMap('a', '1')], '10'));
    },
    { backoff: { initialMs: 100, maxMs: 400 } },
  );
  h.reflector.start();
  // The first 410 relists at once; each one after waits three quarters of a ceiling doubling to 400.
  for (const pauseMs of [150, 300, 300]) {
    await h.pausing(pauseMs);
    const lists = h.server.lists.length;
    await h.clock.advanceBy(pauseMs - 1);
    t.equal(h.server.lists.length, lists, `no relist 1 ms before the end of the ${pauseMs} ms pause`);
    t.same(h.clock.pending, [1], 'still pausing');
    await h.clock.advanceBy(1);
    await until('the relist', () => h.server.lists.length === lists + 1);
  }
  await h.pausing(300);
  t.same(
    h.server.lists.map((request) => h.at(request)),
    [0, 0, 150, 450, 750],
    'lists at 0, at once, then after pauses of 150, 300 and 300 ms (the cap): no hot loop',
  );
  t.equal(await h.restarts('gone'), 5, 'every 410 is counted');
  t.same(
    h.events.filter((event) => event.type !== 'synced'),
    [{ type: 'added', key: 'ns/a', object: { name: 'a', resourceVersion: '1', data: {} } }],
    'relists of an unchanged list deliver nothing new',
  );
});

t.test('an HTTP 410 answer to the watch request relists too', async (t) => {
  let watchCalls = 0;
  const streams: WatchStream[] = [];
  const h = await harness(t, (request, response) => {
    if (!request.watch) {
      response.json(200, listPage([configMap('a', String(h.server.lists.length))], '10'));
      return;
    }
    watchCalls += 1;
    if (watchCalls === 1) response.status(410, 'Gone', 'the resourceVersion is gone');
    else streams.push(response.stream());
  });
  h.reflector.start();
  await until('the second watch', () => streams.length === 1);
  t.equal(h.server.lists.length, 2, 'listed again');
  t.same(h.events.map(describe), ['added a@1', 'synced initial 1', 'updated a@1->2', 'synced relist 1']);
  t.equal(await h.restarts('gone'), 1);
  t.equal(h.clock.now(), 0, 'relisted at once');
});

t.test('an expired continue token restarts the list from the first page', async (t) => {
  let firstPages = 0;
  const streams: WatchStream[] = [];
  const h = await harness(
    t,
    (request, response) => {
      if (request.watch) {
        streams.push(response.stream());
        return;
      }
      const token = request.query.get('continue');
      if (token === null) {
        firstPages += 1;
        response.json(200, listPage([configMap('a', '1')], '10', `page-2-of-list-${firstPages}`));
      } else if (token === 'page-2-of-list-1') {
        response.status(410, 'Expired', 'The provided continue parameter is too old');
      } else {
        response.json(200, listPage([configMap('b', '2')], '10'));
      }
    },
    { pageSize: 1 },
  );
  h.reflector.start();
  await h.reflector.whenSynced();

  t.same(
    h.server.lists.map((request) => request.query.get('continue')),
    [null, 'page-2-of-list-1', null, 'page-2-of-list-2'],
  );
  t.same(
    h.events.map(describe),
    ['added a@1', 'added b@2', 'synced initial 2'],
    'each object is delivered once',
  );
  t.equal(await h.restarts('continue_expired'), 1);
});

t.test('429 waits for Retry-After, not the (much shorter) backoff', async (t) => {
  let watchCalls = 0;
  const streams: WatchStream[] = [];
  const h = await harness(t, (request, response) => {
    if (!request.watch) {
      response.json(200, listPage([], '10'));
      return;
    }
    watchCalls += 1;
    if (watchCalls === 1)
      response.status(429, 'TooManyRequests', 'storage is (re)initializing', { 'Retry-After': '1' });
    else streams.push(response.stream());
  });
  h.reflector.start();
  await h.pausing(1000);
  await h.clock.advanceBy(999);
  t.equal(h.server.watches.length, 1, 'no watch 1 ms before Retry-After ends');
  await h.clock.advanceBy(1);
  await until('the second watch', () => streams.length === 1);
  const [first, second] = h.server.watches;
  t.equal(h.at(second) - h.at(first), 1000, 'waited 1000 ms for Retry-After: 1 (the backoff alone is 15 ms)');
  t.equal(second?.query.get('resourceVersion'), '10', 'watched again from where it was');
  t.equal(h.server.lists.length, 1, 'no relist');
  t.equal(await h.restarts('throttled'), 1);
});

t.test('watches the server closes at once are retried with growing pauses, not in a hot loop', async (t) => {
  const h = await harness(
    t,
    (request, response) => {
      if (request.watch) response.stream().end();
      else response.json(200, listPage([configMap('a', '1')], '10'));
    },
    { backoff: { initialMs: 100, maxMs: 400 } },
  );
  h.reflector.start();
  await h.reflector.whenSynced();
  for (const pauseMs of [75, 150, 300, 300]) {
    await h.pausing(pauseMs);
    const watches = h.server.watches.length;
    await h.clock.advanceBy(pauseMs - 1);
    t.equal(h.server.watches.length, watches, `no watch 1 ms before the end of the ${pauseMs} ms pause`);
    await h.clock.advanceBy(1);
    await until('the next watch', () => h.server.watches.length === watches + 1);
  }
  await h.pausing(300);

  const gaps = h.server.watches.slice(1).map((request, i) => h.at(request) - h.at(h.server.watches[i]));
  t.same(gaps, [75, 150, 300, 300], 'the pause grew from 75 ms to the 400 ms cap (jitter at half)');
  t.equal(h.server.lists.length, 1, 'a clean close re-watches without relisting');
  t.ok(h.server.watches.every((request) => request.query.get('resourceVersion') === '10'));
  t.equal(await h.restarts('early_close'), 5, 'every early close is counted');
  t.equal(await h.restarts('closed'), 0);
});

t.test('a watch that stayed healthy resets the backoff: the next early close pauses briefly', async (t) => {
  const streams: WatchStream[] = [];
  const h = await harness(
    t,
    (request, response) => {
      if (!request.watch) {
        response.json(200, listPage([], '10'));
        return;
      }
      const stream = response.stream();
      // The third watch stays open until the test ends it; the others end at once.
      if (h.server.watches.length === 3) streams.push(stream);
      else stream.end();
    },
    { minHealthyWatchMs: 1_000 },
  );
  h.reflector.start();
  for (const pauseMs of [15, 30]) {
    await h.pausing(pauseMs);
    await h.clock.advanceBy(pauseMs);
  }
  await until('the third watch', () => streams.length === 1);
  await h.clock.advanceBy(999);
  const healthyAt = h.clock.now() + 1;
  await h.clock.advanceBy(1);
  streams[0]?.end();
  await until('the fourth watch', () => h.server.watches.length === 4);
  t.equal(h.at(h.server.watches[3]), healthyAt, 'a watch that lived 1000 ms is re-watched at once');
  t.equal(await h.restarts('closed'), 1, 'and counted as closed');
  await until('the pause after the fourth watch', () => h.clock.pending.some((ms) => ms < 2_000));
  t.same(h.clock.pending, [15], 'the fourth watch, ended at once, pauses the initial 15 ms again, not 60');
  t.equal(await h.restarts('early_close'), 3);
});

t.test('a watch that falls silent is abandoned and resumed from the last resourceVersion', async (t) => {
  const streams: WatchStream[] = [];
  const h = await harness(
    t,
    listThenWatch(() => listPage([], '10'), streams),
    { silenceTimeoutMs: 300 },
  );
  h.reflector.start();
  await until('the first watch', () => streams.length === 1);
  streams[0]?.event('ADDED', configMap('x', '11'));
  await until('the event', () => h.reflector.resourceVersion === '11');
  await h.clock.advanceBy(299);
  t.equal(h.server.watches.length, 1, 'still watching after 299 ms of silence');
  await h.clock.advanceBy(1);
  await h.pausing(15);
  await h.clock.advanceBy(15);
  await until('the second watch', () => streams.length === 2);
  await streams[0]?.closed;

  const [first, second] = h.server.watches;
  t.equal(h.at(second) - h.at(first), 315, 'gave up after 300 ms of silence, watched again after 15');
  t.equal(second?.query.get('resourceVersion'), '11', 'resumed from the last event');
  t.equal(h.server.lists.length, 1, 'no relist');
  t.equal(await h.restarts('silence'), 1);

  // Bookmarks are bytes: a watch that receives one every 100 ms is alive however quiet its objects are.
  const stream = streams[1] as WatchStream;
  for (let i = 0; i < 9; i++) {
    const resourceVersion = String(12 + i);
    stream.bookmark(resourceVersion);
    await until(`bookmark ${resourceVersion}`, () => h.reflector.resourceVersion === resourceVersion);
    await h.clock.advanceBy(100);
  }
  t.equal(h.server.watches.length, 2, 'bookmarks kept the second watch open for three silence timeouts');
  // Without them it falls silent like the first; having lived past minHealthyWatchMs, it pauses briefly.
  await h.clock.advanceBy(200);
  await h.pausing(15);
  await h.clock.advanceBy(15);
  await until('the third watch', () => streams.length === 3);
  t.equal(h.server.watches[2]?.query.get('resourceVersion'), '20', 'resumed from the last bookmark');
  t.equal(await h.restarts('silence'), 2);
});

t.test('a bookmark moves the resourceVersion the next watch starts from, and is not an event', async (t) => {
  let watchCalls = 0;
  const h = await harness(
    t,
    (request, response) => {
      if (!request.watch) {
        response.json(200, listPage([configMap('a', '1')], '10'));
        return;
      }
      watchCalls += 1;
      const stream = response.stream();
      if (watchCalls === 1) {
        stream.bookmark('42');
        stream.end();
      }
    },
    { minHealthyWatchMs: 0 },
  );
  h.reflector.start();
  await until('the second watch', () => h.server.watches.length === 2);
  t.equal(h.server.watches[1]?.query.get('resourceVersion'), '42');
  t.same(
    h.events.map(describe),
    ['added a@1', 'synced initial 1'],
    'the handler heard nothing of the bookmark',
  );
  t.equal(await h.restarts('closed'), 1, 'a healthy watch ended by the server counts as closed');
});

t.test('a connection that dies mid-stream is resumed from the last resourceVersion', async (t) => {
  const streams: WatchStream[] = [];
  const h = await harness(
    t,
    listThenWatch(() => listPage([], '10'), streams),
  );
  h.reflector.start();
  await until('the first watch', () => streams.length === 1);
  streams[0]?.event('ADDED', configMap('x', '11'));
  await until('the event', () => h.events.length === 2);
  streams[0]?.destroy();
  await h.pausing(15);
  await h.clock.advanceBy(14);
  t.equal(h.server.watches.length, 1, 'no reconnect before the pause ends');
  await h.clock.advanceBy(1);
  await until('the second watch', () => streams.length === 2);
  t.equal(h.at(h.server.watches[1]), 15, 'reconnected after the 15 ms pause');
  t.equal(h.server.watches[1]?.query.get('resourceVersion'), '11');
  t.equal(await h.restarts('error'), 1);
  t.ok(
    h.lines.some((line) => line.level === 'warn' && line.msg.includes('retrying')),
    'the failure is logged',
  );
});

t.test('a list that never answers is abandoned after the silence timeout and retried', async (t) => {
  let listCalls = 0;
  const streams: WatchStream[] = [];
  const h = await harness(
    t,
    (request, response) => {
      if (request.watch) {
        streams.push(response.stream());
        return;
      }
      listCalls += 1;
      if (listCalls === 1) response.hang();
      else response.json(200, listPage([configMap('a', '1')], '10'));
    },
    { silenceTimeoutMs: 200 },
  );
  h.reflector.start();
  await until('the list', () => h.server.lists.length === 1);
  t.same(h.clock.pending, [200], 'only the silence timeout is armed');
  await h.clock.advanceBy(199);
  t.notOk(h.reflector.synced);
  await h.clock.advanceBy(1);
  await h.pausing(15);
  t.equal(h.server.lists.length, 1, 'abandoned after 200 ms; retried after a pause');
  await h.clock.advanceBy(15);
  await h.reflector.whenSynced();
  t.equal(h.server.lists.length, 2);
  t.equal(h.at(h.server.lists[1]), 215);
  t.equal(await h.restarts('silence'), 1);
});

t.test('metadataOnly asks for the PartialObjectMetadata projection', async (t) => {
  const streams: WatchStream[] = [];
  const h = await harness(
    t,
    listThenWatch(() => listPage([], '10'), streams),
    { metadataOnly: true },
  );
  h.reflector.start();
  await until('the watch', () => streams.length === 1);
  t.match(h.server.lists[0]?.accept, /^application\/json;as=PartialObjectMetadataList;g=meta\.k8s\.io;v=v1/);
  t.match(h.server.watches[0]?.accept, /^application\/json;as=PartialObjectMetadata;g=meta\.k8s\.io;v=v1/);
});

t.test('stop() ends an open watch at once, logs nothing and delivers nothing more', async (t) => {
  const streams: WatchStream[] = [];
  // stop() is called by the handler of the first of two events that arrive in one chunk: the second is
  // parsed in the same tick, after stop(), and must not be delivered.
  let stopping: Promise<void> | undefined;
  let started = 0;
  const h = await harness(
    t,
    listThenWatch(() => listPage([configMap('a', '1')], '10'), streams),
    {},
    (event) => {
      if (event.type === 'added' && event.object.name === 'b') {
        started = performance.now();
        stopping = h.reflector.stop();
      }
    },
  );
  h.reflector.start();
  await until('the watch', () => streams.length === 1);
  const linesBefore = h.lines.length;
  streams[0]?.raw(
    `${JSON.stringify({ type: 'ADDED', object: configMap('b', '11') })}\n` +
      `${JSON.stringify({ type: 'ADDED', object: configMap('late', '12') })}\n`,
  );
  await until('stop() to be called', () => stopping !== undefined);
  await stopping;
  t.ok(performance.now() - started < 200, 'stop() resolved promptly');
  await streams[0]?.closed;
  // Whatever the aborted response still held has been read and dropped by now.
  await new Promise((resolve) => setImmediate(resolve));
  t.same(h.clock.pending, [], 'no retry and no watchdog left armed');

  t.same(
    h.events.map(describe),
    ['added a@1', 'synced initial 1', 'added b@11'],
    'no event after stop, not even one already received',
  );
  t.same(h.lines.slice(linesBefore), [], 'nothing logged: no error, no restart');
  t.equal(await h.restarts('error'), 0);
  t.equal(h.server.watches.length, 1, 'no reconnect');
});

t.test('stop() cuts a backoff pause short', async (t) => {
  const h = await harness(
    t,
    (_request, response) => {
      response.status(500, 'InternalError', 'etcd is unavailable');
    },
    {
      backoff: { initialMs: 60_000, maxMs: 60_000 },
    },
  );
  h.reflector.start();
  const synced = h.reflector.whenSynced();
  await h.pausing(45_000);
  t.ok(
    h.lines.some((line) => line.level === 'warn'),
    'the failure is logged',
  );
  const started = performance.now();
  await h.reflector.stop();
  t.ok(performance.now() - started < 200, 'stop() did not wait out a 30-60 s pause');
  t.equal(h.clock.now(), 0, 'nor for the clock to move');
  t.same(h.clock.pending, [], 'the pause is cancelled');
  await t.rejects(synced, /stopped before its first list completed/, 'a waiter for the first sync hears why');
  t.equal(h.server.lists.length, 1);
});

t.test('a handler that throws is logged and the watch carries on', async (t) => {
  const streams: WatchStream[] = [];
  const server = await FakeApiServer.start(
    listThenWatch(() => listPage([configMap('a', '1')], '10'), streams),
  );
  const lines: string[] = [];
  const seen: string[] = [];
  const clock = new FakeClock();
  const reflector = new Reflector<string>({
    transport: new KubeTransport(server.kubeConfig(), { clock }),
    clock,
    resource: configMapsResource,
    transform: (_raw, identity) => identity.name,
    handler: (event) => {
      if (event.type === 'added' && event.object === 'a') throw new Error('handler bug');
      if (event.type === 'added') seen.push(event.object);
    },
    logger: createLogger({ level: 'info', destination: { write: (line: string) => void lines.push(line) } }),
  });
  t.teardown(async () => {
    await reflector.stop();
    await server.close();
  });
  reflector.start();
  await until('the watch', () => streams.length === 1);
  streams[0]?.event('ADDED', configMap('b', '11'));
  await until('b', () => seen.includes('b'));
  t.ok(lines.some((line) => line.includes('the watch handler threw')));
  t.equal(server.watches.length, 1, 'the watch was not restarted');
  t.equal(server.lists[0]?.path, '/api/v1/configmaps', 'without a namespace the watch is cluster-wide');
});

t.test('a group watches each namespace and reports synced when all are', async (t) => {
  const streams: WatchStream[] = [];
  const server = await FakeApiServer.start((request, response) => {
    if (request.watch) {
      streams.push(response.stream());
      return;
    }
    const namespace = request.path.split('/')[4] ?? '';
    response.json(200, listPage([configMap(`in-${namespace}`, '1', {}, namespace)], '10'));
  });
  const keys: string[] = [];
  const clock = new FakeClock();
  const group = new ReflectorGroup<string>(
    ['a', 'b'],
    (namespace) =>
      new Reflector<string>({
        transport: new KubeTransport(server.kubeConfig(), { clock }),
        clock,
        resource: configMapsResource,
        ...(namespace === undefined ? {} : { namespace }),
        transform: (_raw, identity) => identity.name,
        handler: (event: WatchEvent<string>) => {
          if (event.type === 'added') keys.push(event.key);
        },
        logger: createLogger({ level: 'silent' }),
      }),
  );
  t.teardown(async () => {
    await group.stop();
    await server.close();
  });
  group.start();
  await group.whenSynced();
  t.ok(group.synced);
  t.same(server.lists.map((request) => request.path).sort(), [
    '/api/v1/namespaces/a/configmaps',
    '/api/v1/namespaces/b/configmaps',
  ]);
  t.same(keys.sort(), ['a/in-a', 'b/in-b']);
  t.equal(group.get('b/in-b'), 'in-b');
  t.equal(group.size, 2);
});
