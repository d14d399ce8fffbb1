import t from 'tap';
import type { Test } from 'tap';
import { KubeConfig } from '@kubernetes/client-node';
import { Backoff } from '../../src/kube/backoff.ts';
import { poolDispatchers, reachApiserver } from '../../src/kube/client.ts';
import { KubeTransport } from '../../src/kube/transport.ts';
import { createLogger } from '../../src/log.ts';
import { waitFor } from '../support/cluster.ts';
import { FakeApiServer } from '../support/fake-apiserver.ts';
import { FakeClock } from './support/fake-clock.ts';

type CreateDispatcher = (cluster: unknown, agentOptions: object) => unknown;

function config(server: string): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'c', server, skipTLSVerify: false }],
    users: [{ name: 'u', token: 't' }],
    contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
    currentContext: 'x',
  });
  return kc;
}

t.test('API calls share one connection pool per TLS configuration instead of one per request', (t) => {
  const kc = config('https://127.0.0.1:6443');
  const unpooled = kc as unknown as { createDispatcher: CreateDispatcher };
  const cluster = kc.getCurrentCluster();
  const options = { ca: Buffer.from('ca-1') };
  t.not(
    unpooled.createDispatcher(cluster, options),
    unpooled.createDispatcher(cluster, options),
    'client-node alone builds a new dispatcher (and TLS connection) per request',
  );
  poolDispatchers(kc);
  const pooled = kc as unknown as { createDispatcher: CreateDispatcher };
  const first = pooled.createDispatcher(cluster, options);
  t.ok(first, 'a dispatcher is made');
  t.equal(pooled.createDispatcher(cluster, { ca: Buffer.from('ca-1') }), first, 'and reused');
  t.not(pooled.createDispatcher(cluster, { ca: Buffer.from('ca-2') }), first, 'a new CA gets its own');
  t.end();
});

/**
 * reachApiserver on a fake clock against a server that answers /version with 503 `failures` times
 * (every time when undefined), then 200. Returns its outcome and when each attempt arrived.
 */
async function reach(t: Test, timeoutMs: number, failures?: number) {
  const clock = new FakeClock();
  const arrivals: number[] = [];
  const server = await FakeApiServer.start((_request, response) => {
    arrivals.push(clock.now());
    if (failures === undefined || arrivals.length <= failures) {
      response.status(503, 'ServiceUnavailable', 'starting');
    } else {
      response.json(200, { major: '1', minor: '34' });
    }
  });
  t.teardown(() => server.close());
  const warnings: unknown[] = [];
  const outcome = reachApiserver(new KubeTransport(server.kubeConfig(), { clock }), {
    logger: createLogger({
      level: 'warn',
      destination: { write: (line: string) => void warnings.push(JSON.parse(line)) },
    }),
    timeoutMs,
    signal: new AbortController().signal,
    // Pauses of three quarters of a ceiling doubling from 500 ms: 375, 750, 1500...
    backoff: new Backoff({ initialMs: 500, maxMs: 5000, random: () => 0.5 }),
    clock,
  }).then(
    () => 'reached',
    (err: unknown) => (err instanceof Error ? err.message : String(err)),
  );
  /** Waits for I/O until the answer to attempt `n` has come and the wait for the next is armed. */
  const pausing = (n: number, ms: number) =>
    waitFor(`the pause after attempt ${n}`, () => arrivals.length === n && clock.pending[0] === ms, {
      timeoutMs: 5000,
      intervalMs: 5,
    });
  return { clock, arrivals, warnings, outcome, pausing };
}

t.test('the start-up wait retries on its clock with backoff until the apiserver answers', async (t) => {
  const r = await reach(t, 60_000, 2);
  await r.pausing(1, 375);
  await r.clock.advanceBy(374);
  t.equal(r.arrivals.length, 1, 'no second attempt before its pause ends');
  await r.clock.advanceBy(1);
  await r.pausing(2, 750);
  await r.clock.advanceBy(750);
  t.equal(await r.outcome, 'reached');
  t.same(r.arrivals, [0, 375, 1125], 'attempts after pauses of 375 and 750 ms');
  t.match(r.warnings, [
    { attempt: 1, retryInMs: 375, error: /HTTP 503/ },
    { attempt: 2, retryInMs: 750 },
  ]);
});

t.test('the start-up wait gives up at its deadline on its clock, its last pause cut short', async (t) => {
  const r = await reach(t, 1000);
  await r.pausing(1, 375);
  await r.clock.advanceBy(375);
  await r.pausing(2, 625);
  await r.clock.advanceBy(625);
  t.match(
    await r.outcome,
    /^cannot reach the apiserver at http:\/\/127\.0\.0\.1:\d+ \(HTTP 503.*\) after 3 attempts in 1s/,
  );
  t.same(r.arrivals, [0, 375, 1000], 'the second pause ends at the deadline: 625 ms, not 750');
});
