// The lean config cache fed by hand-made metadata events and a scripted API: data is read only for
// consumed children, re-read when their resourceVersion moves, dropped when nobody consumes them, and the
// loop hears about exactly the changes that touch what a workload consumes.
import t from 'tap';
import type { Test } from 'tap';
import { childKey, workloadKey } from '../../src/core/objects.ts';
import type { ChildData, ChildRef } from '../../src/core/objects.ts';
import { optInStatus } from '../../src/core/admission.ts';
import { defaultCounting } from '../../src/core/counting.ts';
import { consumedConfig } from '../../src/core/refs.ts';
import type { ConsumedChild } from '../../src/core/refs.ts';
import type { FetchedChild } from '../../src/kube/child-fetcher.ts';
import type { WatchEvent } from '../../src/kube/watch.ts';
import { createLogger } from '../../src/log.ts';
import { Metrics } from '../../src/metrics.ts';
import { compareVersions, newer } from '../../src/kube/resource-version.ts';
import { childMetaTransform, ConfigCache } from '../../src/sync/config-cache.ts';
import type { ChildChange, ChildMeta, ConfigCacheOptions } from '../../src/sync/config-cache.ts';
import { waitFor } from '../support/cluster.ts';
import { consumes, deployment, deploymentRef, podSpec } from './support/workloads.ts';
import { FakeClock } from './support/fake-clock.ts';

const cm = (name: string, namespace = 'shop'): ChildRef => ({ kind: 'ConfigMap', namespace, name });
const secret = (name: string, namespace = 'shop'): ChildRef => ({ kind: 'Secret', namespace, name });
const meta = (ref: ChildRef, resourceVersion: string): ChildMeta => ({
  namespace: ref.namespace,
  name: ref.name,
  uid: `uid-${ref.name}`,
  resourceVersion,
});

/** The API as the cache's GETs see it; a GET can be held open to let events overtake it. */
class FakeApi {
  readonly objects = new Map<string, FetchedChild>();
  readonly calls: string[] = [];
  failures = 0;
  #held: (() => void)[] | undefined;

  put(ref: ChildRef, resourceVersion: string, data: Record<string, string>): void {
    const child: ChildData =
      ref.kind === 'ConfigMap'
        ? { kind: 'ConfigMap', namespace: ref.namespace, name: ref.name, data }
        : { kind: 'Secret', namespace: ref.namespace, name: ref.name, data };
    this.objects.set(childKey(ref), { data: child, resourceVersion });
  }

  hold(): void {
    this.#held = [];
  }

  release(): void {
    const held = this.#held ?? [];
    this.#held = undefined;
    for (const resume of held) resume();
  }

  /** Reads the object when called; a held GET delivers that answer only when released. */
  readonly fetch = async (ref: ChildRef): Promise<FetchedChild | undefined> => {
    this.calls.push(childKey(ref));
    const answer = this.objects.get(childKey(ref));
    const fail = this.failures > 0;
    if (fail) this.failures -= 1;
    if (this.#held !== undefined) await new Promise<void>((resolve) => this.#held?.push(resolve));
    if (fail) throw new Error('HTTP 503: etcd is unavailable');
    return answer;
  };
}

/** Lets reads in flight (the fake API answers on the next turn) finish. */
const flush = () => new Promise((resolve) => setImmediate(resolve));

function setup(t: Test, options: Partial<ConfigCacheOptions> = {}) {
  const api = new FakeApi();
  const clock = new FakeClock();
  /** Steps the fake clock by `ms`, `step` at a time, letting reads finish between steps. */
  const elapse = async (ms: number, step = 5) => {
    for (let at = 0; at < ms; at += step) {
      clock.advance(step);
      await flush();
    }
  };
  const changes: ChildChange[] = [];
  const metrics = new Metrics({ defaultMetrics: false });
  const lines: string[] = [];
  const cache = new ConfigCache({
    fetch: api.fetch,
    onChange: (change) => changes.push(change),
    logger: createLogger({ level: 'info', destination: { write: (line: string) => void lines.push(line) } }),
    metrics,
    fetchBackoff: { initialMs: 10, maxMs: 20 },
    clock,
    ...options,
  });
  t.teardown(() => {
    cache.stop();
  });
  const handlers = {
    ConfigMap: cache.metadataHandler('ConfigMap', options.namespaces?.[0]),
    Secret: cache.metadataHandler('Secret', options.namespaces?.[0]),
  };
  const send = (ref: ChildRef, event: WatchEvent<ChildMeta>) => {
    handlers[ref.kind](event);
  };
  const sync = () => {
    send(cm('-'), { type: 'synced', initial: true, count: 0 });
    send(secret('-'), { type: 'synced', initial: true, count: 0 });
  };
  /** Puts an object in the API and tells the cache, as the metadata watch would. */
  const write = (ref: ChildRef, resourceVersion: string, data: Record<string, string>) => {
    const previous = cache.metadata(ref);
    api.put(ref, resourceVersion, data);
    const object = meta(ref, resourceVersion);
    send(
      ref,
      previous === undefined
        ? { type: 'added', key: `${ref.namespace}/${ref.name}`, object }
        : { type: 'updated', key: `${ref.namespace}/${ref.name}`, old: previous, object },
    );
  };
  const remove = (ref: ChildRef) => {
    const previous = cache.metadata(ref);
    api.objects.delete(childKey(ref));
    if (previous !== undefined)
      send(ref, { type: 'deleted', key: `${ref.namespace}/${ref.name}`, old: previous });
  };
  const gauge = async (name: 'cacheObjects' | 'cacheBytes', kind: string, form: string) => {
    const metric = await metrics[name].get();
    return metric.values.find((value) => value.labels['kind'] === kind && value.labels['form'] === form)
      ?.value;
  };
  return { api, cache, changes, lines, send, sync, write, remove, gauge, elapse };
}

const summary = (change: ChildChange) =>
  `${change.ref.kind}/${change.ref.name}: ${JSON.stringify(change.old?.data ?? null)} -> ${JSON.stringify(change.new?.data ?? null)} for ${change.affected.map(workloadKey).sort().join(',')}`;

t.test('objects nobody consumes are kept as metadata only and never read', async (t) => {
  const s = setup(t);
  s.write(secret('helm-release'), '5', { release: 'x'.repeat(200 * 1024) });
  s.write(cm('unused'), '6', { a: '1' });
  s.sync();
  await s.cache.whenSettled();

  t.same(s.api.calls, [], 'no GET');
  t.equal(s.cache.lookup('Secret', 'shop', 'helm-release'), undefined, 'no data held');
  t.equal(s.cache.metadata(secret('helm-release'))?.resourceVersion, '5', 'but it is known to exist');
  t.same(s.cache.stats('Secret'), {
    metadataObjects: 1,
    dataObjects: 0,
    metadataBytes: 'shop'.length + 'helm-release'.length + 'uid-helm-release'.length + 1,
    dataBytes: 0,
  });
  t.equal(await s.gauge('cacheObjects', 'Secret', 'metadata'), 1);
  t.equal(await s.gauge('cacheBytes', 'Secret', 'data'), 0);
});

t.test('a child gains data when a workload starts consuming it, and loses it when none does', async (t) => {
  const s = setup(t);
  s.write(cm('app'), '5', { a: '1', b: '2' });
  s.sync();
  s.cache.setWorkload(deploymentRef('web'), consumes({ configMaps: ['app'] }));
  t.equal(s.cache.state(cm('app')), 'pending', 'pending while the GET runs');
  await s.cache.whenSettled();

  t.same(s.api.calls, ['ConfigMap/shop/app']);
  t.equal(s.cache.state(cm('app')), 'present');
  t.same(s.cache.lookup('ConfigMap', 'shop', 'app')?.data, { a: '1', b: '2' });
  t.same(s.changes.map(summary), ['ConfigMap/app: null -> {"a":"1","b":"2"} for Deployment/shop/web']);
  t.equal(s.cache.stats('ConfigMap').dataBytes, 4, 'keys and values: a1 b2');
  t.equal(await s.gauge('cacheObjects', 'ConfigMap', 'data'), 1);
  t.equal(await s.gauge('cacheObjects', 'ConfigMap', 'metadata'), 0);

  s.cache.setWorkload(deploymentRef('web'), undefined);
  t.equal(s.cache.lookup('ConfigMap', 'shop', 'app'), undefined, 'data dropped with the last consumer');
  t.equal(s.cache.stats('ConfigMap').dataBytes, 0);
  t.equal(s.cache.metadata(cm('app'))?.resourceVersion, '5', 'metadata stays');
  t.equal(await s.gauge('cacheObjects', 'ConfigMap', 'metadata'), 1);
});

t.test(
  'a consumed child is re-read when its resourceVersion moves; only consumed keys reach the loop',
  async (t) => {
    const s = setup(t);
    s.write(cm('app'), '5', { used: '1', unused: '1' });
    s.sync();
    s.cache.setWorkload(deploymentRef('web'), consumes({ configMapKeys: [['app', 'used']] }));
    await s.cache.whenSettled();
    s.changes.length = 0;

    s.write(cm('app'), '6', { used: '1', unused: '2' });
    await s.cache.whenSettled();
    t.equal(s.api.calls.length, 2, 'the new version was read');
    t.same(s.cache.lookup('ConfigMap', 'shop', 'app')?.data, { used: '1', unused: '2' }, 'and is held');
    t.same(s.changes, [], 'a change to a key nobody consumes reaches nobody');

    s.write(cm('app'), '7', { used: '2', unused: '2' });
    await s.cache.whenSettled();
    t.same(s.changes.map(summary), [
      'ConfigMap/app: {"used":"1","unused":"2"} -> {"used":"2","unused":"2"} for Deployment/shop/web',
    ]);

    s.send(cm('app'), {
      type: 'updated',
      key: 'shop/app',
      old: meta(cm('app'), '7'),
      object: meta(cm('app'), '7'),
    });
    await s.cache.whenSettled();
    t.equal(s.api.calls.length, 3, 'an event for the version already held reads nothing');
  },
);

t.test('a GET newer than the watch is kept, and the watch catching up reads nothing more', async (t) => {
  const s = setup(t);
  s.write(cm('app'), '5', { a: '1' });
  s.sync();
  s.api.put(cm('app'), '9', { a: '9' }); // written again; the watch has not said so yet
  s.cache.setWorkload(deploymentRef('w'), consumes({ configMaps: ['app'] }));
  await s.cache.whenSettled();
  t.same(s.cache.lookup('ConfigMap', 'shop', 'app')?.data, { a: '9' });
  s.send(cm('app'), {
    type: 'updated',
    key: 'shop/app',
    old: meta(cm('app'), '5'),
    object: meta(cm('app'), '9'),
  });
  await s.cache.whenSettled();
  t.equal(s.api.calls.length, 1, 'one GET in all');
});

t.test('a change that arrives while its GET is in flight is read once the GET ends', async (t) => {
  const s = setup(t);
  s.write(cm('app'), '5', { a: '1' });
  s.sync();
  s.api.hold();
  s.cache.setWorkload(deploymentRef('w'), consumes({ configMaps: ['app'] }));
  await waitFor('the first GET', () => s.api.calls.length === 1 || undefined);
  s.write(cm('app'), '6', { a: '2' }); // after the GET read version 5
  s.api.release();
  await s.cache.whenSettled();
  t.equal(s.api.calls.length, 2, 'read again at once');
  t.same(s.cache.lookup('ConfigMap', 'shop', 'app')?.data, { a: '2' }, 'the newest version is held');
  t.same(s.changes.map(summary), [
    'ConfigMap/app: null -> {"a":"1"} for Deployment/shop/w',
    'ConfigMap/app: {"a":"1"} -> {"a":"2"} for Deployment/shop/w',
  ]);
});

t.test('a read older than what the watch reported is retried after a pause, not in a loop', async (t) => {
  const s = setup(t);
  s.write(cm('app'), '5', { a: '1' });
  s.sync();
  s.send(cm('app'), {
    type: 'updated',
    key: 'shop/app',
    old: meta(cm('app'), '5'),
    object: meta(cm('app'), '6'),
  });
  s.cache.setWorkload(deploymentRef('w'), consumes({ configMaps: ['app'] })); // the API still answers version 5
  await s.elapse(300);
  // Pauses of 10 ms doubling to at most 20 ms (each between half and all of that): 15 to 31 reads.
  t.ok(
    s.api.calls.length >= 15 && s.api.calls.length <= 31,
    `${s.api.calls.length} GETs in 300 ms at 10-20 ms pauses`,
  );
  t.same(s.cache.lookup('ConfigMap', 'shop', 'app')?.data, { a: '1' }, 'the stale answer is held meanwhile');
  s.api.put(cm('app'), '6', { a: '2' });
  await s.elapse(25);
  await s.cache.whenSettled();
  t.same(s.cache.lookup('ConfigMap', 'shop', 'app')?.data, { a: '2' });
});

t.test('deleting a consumed child tells its consumers, and it is absent', async (t) => {
  const s = setup(t);
  s.write(secret('db'), '5', { password: 'cA==' });
  s.sync();
  s.cache.setWorkload(deploymentRef('w'), consumes({ secrets: ['db'] }));
  await s.cache.whenSettled();
  s.changes.length = 0;
  s.remove(secret('db'));
  t.same(s.changes.map(summary), ['Secret/db: {"password":"cA=="} -> null for Deployment/shop/w']);
  t.equal(s.cache.state(secret('db')), 'absent');
  t.equal(s.cache.stats('Secret').dataBytes, 0);
  t.equal(s.cache.stats('Secret').metadataObjects, 0);
});

t.test('a deletion during the GET is not undone by what the GET read', async (t) => {
  const s = setup(t);
  s.write(cm('app'), '5', { a: '1' });
  s.sync();
  s.api.hold();
  s.cache.setWorkload(deploymentRef('w'), consumes({ configMaps: ['app'] }));
  await waitFor('the GET', () => s.api.calls.length === 1 || undefined);
  s.remove(cm('app')); // after the GET read it
  s.api.release();
  await s.cache.whenSettled();
  t.equal(s.cache.state(cm('app')), 'absent');
  t.equal(s.cache.lookup('ConfigMap', 'shop', 'app'), undefined);
});

t.test('before the first list a consumed child is pending; a list without it makes it absent', async (t) => {
  const s = setup(t);
  s.cache.setWorkload(deploymentRef('w'), consumes({ configMaps: ['later'] }));
  t.equal(s.cache.state(cm('later')), 'pending');
  t.notOk(s.cache.synced);
  s.sync();
  t.ok(s.cache.synced);
  t.equal(s.cache.state(cm('later')), 'absent');
  t.same(
    s.changes.map(summary),
    ['ConfigMap/later: null -> null for Deployment/shop/w'],
    'its consumers may now decide',
  );

  s.write(cm('later'), '8', { k: 'v' });
  await s.cache.whenSettled();
  t.equal(s.cache.state(cm('later')), 'present', 'created later: read when the watch reports it');
  t.same(s.changes.map(summary).at(-1), 'ConfigMap/later: null -> {"k":"v"} for Deployment/shop/w');
});

t.test('a failing GET is retried; the child stays pending meanwhile and nothing is lost', async (t) => {
  const s = setup(t, { fetchBackoff: { initialMs: 100, maxMs: 200 } });
  s.write(cm('app'), '5', { a: '1' });
  s.sync();
  s.api.failures = 2;
  s.cache.setWorkload(deploymentRef('w'), consumes({ configMaps: ['app'] }));
  await flush();
  t.equal(s.api.calls.length, 1, 'read at once');
  await s.elapse(45);
  t.equal(s.api.calls.length, 1, 'and not again before the first pause (at least 50 ms) is over');
  t.equal(s.cache.state(cm('app')), 'pending');
  await s.elapse(400);
  await s.cache.whenSettled();
  t.equal(s.api.calls.length, 3, 'two failures, then the read that succeeds');
  t.equal(s.cache.state(cm('app')), 'present');
  t.ok(
    s.lines.some((line) => line.includes('reading a consumed ConfigMap failed')),
    'failures are logged',
  );
  t.notOk(
    s.lines.some((line) => line.includes('"a":"1"')),
    'without the data',
  );
});

t.test('children outside the watched namespaces are absent and never read', (t) => {
  const s = setup(t, { namespaces: ['shop'] });
  s.sync();
  s.cache.setWorkload(
    deploymentRef('w'),
    consumes({ configMaps: ['app'] }).map((child): ConsumedChild => ({ ...child, namespace: 'elsewhere' })),
  );
  t.equal(s.cache.state(cm('app', 'elsewhere')), 'absent');
  t.same(s.api.calls, []);
  t.ok(s.lines.some((line) => line.includes('a namespace wave does not watch')));
  t.end();
});

t.test('many consumed children are read a few at a time', async (t) => {
  const s = setup(t, { concurrency: 3 });
  for (let i = 0; i < 20; i++) s.write(cm(`c${i}`), String(10 + i), { i: String(i) });
  s.sync();
  let inFlight = 0;
  let most = 0;
  const fetch = s.api.fetch;
  const counting = new ConfigCache({
    fetch: async (ref) => {
      inFlight += 1;
      most = Math.max(most, inFlight);
      await new Promise((resolve) => setTimeout(resolve, 2));
      inFlight -= 1;
      return fetch(ref);
    },
    onChange: () => undefined,
    logger: createLogger({ level: 'silent' }),
    concurrency: 3,
  });
  t.teardown(() => {
    counting.stop();
  });
  const handler = counting.metadataHandler('ConfigMap', undefined);
  for (let i = 0; i < 20; i++)
    handler({ type: 'added', key: `shop/c${i}`, object: meta(cm(`c${i}`), String(10 + i)) });
  handler({ type: 'synced', initial: true, count: 20 });
  counting.metadataHandler('Secret', undefined)({ type: 'synced', initial: true, count: 0 });
  counting.setWorkload(
    deploymentRef('w'),
    consumes({ configMaps: Array.from({ length: 20 }, (_, i) => `c${i}`) }),
  );
  await counting.whenSettled();
  t.equal(most, 3, 'never more than three GETs at once');
  t.equal(counting.stats('ConfigMap').dataObjects, 20);
});

t.test('resourceVersions compare as numbers when they are numbers', (t) => {
  t.ok(newer('10', '9'));
  t.notOk(newer('9', '10'));
  t.notOk(newer('7', '7'));
  t.ok(newer('opaque-b', 'opaque-a'), 'anything else: newer when different');
  t.equal(compareVersions('100', '99'), 1);
  t.equal(compareVersions('99', '100'), -1);
  t.equal(compareVersions('x', '1'), undefined);
  t.end();
});

t.test("the metadata watch keeps Wave's ownerReferences and says when they change", (t) => {
  const waveRef = {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    name: 'web',
    uid: 'uid-web',
    blockOwnerDeletion: true,
    controller: false,
  };
  const identity = { namespace: 'shop', name: 'settings', uid: 'uid-settings', resourceVersion: '7' };
  const raw = (ownerReferences: unknown[]) => ({ metadata: { ...identity, ownerReferences } });
  const owned = childMetaTransform(raw([waveRef, { ...waveRef, uid: 'uid-rs', controller: true }]), identity);
  t.same(owned.waveOwners, [{ apiVersion: 'apps/v1', kind: 'Deployment', name: 'web', uid: 'uid-web' }]);
  t.equal(childMetaTransform(raw([]), identity).waveOwners, undefined, 'nothing kept without them');

  const told: string[][] = [];
  const s = setup(t, { onWaveOwnersChanged: (refs) => told.push(refs.map(workloadKey)) });
  const ref = cm('settings');
  s.send(ref, { type: 'added', key: 'shop/settings', object: owned });
  t.same(s.cache.waveOwnedBy('uid-web'), ['ConfigMap shop/settings']);
  t.same(told, [['Deployment/shop/web']]);
  const freed = childMetaTransform(raw([]), { ...identity, resourceVersion: '8' });
  s.send(ref, { type: 'updated', key: 'shop/settings', old: owned, object: freed });
  t.same(s.cache.waveOwnedBy('uid-web'), [], 'the reference removed');
  t.same(told, [['Deployment/shop/web'], ['Deployment/shop/web']], 'told again');
  s.send(ref, { type: 'updated', key: 'shop/settings', old: freed, object: freed });
  t.equal(told.length, 2, 'nothing to tell when nothing changed');
  t.end();
});

t.test('a reload list pattern reaches objects nobody references, as they appear and go', async (t) => {
  const s = setup(t);
  const web = deployment({
    annotations: { 'configmap.reloader.stakater.com/reload': 'name-.*' },
    podSpec: podSpec({ envFrom: [{ configMapRef: { name: 'app' } }] }),
  });
  const optIn = optInStatus(web, { ...defaultCounting, reloaderAnnotations: true });
  if (!optIn.optedIn) throw new Error('not opted in');
  const consumed = consumedConfig(web, optIn.policy);
  s.write(cm('app'), '1', { a: '1' });
  s.write(cm('name-a'), '2', { x: '1' });
  s.write(cm('other'), '3', { y: '1' });
  s.write(secret('name-s'), '4', { z: '1' });
  s.sync();
  s.cache.setWorkload(deploymentRef('web'), consumed);
  await s.cache.whenSettled();

  const names = () =>
    s.cache
      .resolve(consumed)
      .children.map((child) => childKey(child))
      .sort();
  t.same(names(), ['ConfigMap/shop/app', 'ConfigMap/shop/name-a'], 'the matching name, of its kind only');
  t.same(
    s.api.calls.sort(),
    ['ConfigMap/shop/app', 'ConfigMap/shop/name-a'],
    'the non-matching ones are never read',
  );
  t.same(
    s.cache.index.consumersOf(cm('name-a')).map((c) => workloadKey(c.workload)),
    ['Deployment/shop/web'],
  );

  s.changes.length = 0;
  s.write(cm('name-b'), '5', { x: '2' });
  s.write(cm('unrelated'), '6', { y: '2' });
  await s.cache.whenSettled();
  t.same(
    s.changes.map(summary),
    ['ConfigMap/name-b: null -> {"x":"2"} for Deployment/shop/web'],
    'a new match re-evaluates its consumer',
  );
  t.same(names(), ['ConfigMap/shop/app', 'ConfigMap/shop/name-a', 'ConfigMap/shop/name-b']);

  s.changes.length = 0;
  s.write(cm('name-a'), '7', { x: '3' });
  s.write(cm('other'), '8', { y: '3' });
  await s.cache.whenSettled();
  t.same(
    s.changes.map(summary),
    ['ConfigMap/name-a: {"x":"1"} -> {"x":"3"} for Deployment/shop/web'],
    'a matched one changing reaches it; others do not',
  );

  s.changes.length = 0;
  s.remove(cm('name-b'));
  await s.cache.whenSettled();
  t.same(
    s.changes.map(summary),
    ['ConfigMap/name-b: {"x":"2"} -> null for Deployment/shop/web'],
    'a deleted match reaches it',
  );
  t.same(names(), ['ConfigMap/shop/app', 'ConfigMap/shop/name-a'], 'and is consumed no more');
  t.equal(s.cache.lookup('ConfigMap', 'shop', 'name-b'), undefined);

  s.cache.setWorkload(deploymentRef('web'), undefined);
  s.write(cm('name-c'), '9', { x: '4' });
  await s.cache.whenSettled();
  t.notOk(s.api.calls.includes('ConfigMap/shop/name-c'), 'a forgotten workload matches nothing');
});
