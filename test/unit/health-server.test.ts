import t from 'tap';
import { createLogger } from '../../src/log.ts';
import { Metrics } from '../../src/metrics.ts';
import { buildHealthServer } from '../../src/http/health.ts';
import type { ReadinessCheck } from '../../src/http/health.ts';

function setup(checks: readonly ReadinessCheck[], metrics = new Metrics({ defaultMetrics: false })) {
  const lines: string[] = [];
  const logger = createLogger({
    level: 'info',
    destination: { write: (line: string) => void lines.push(line) },
  });
  return { app: buildHealthServer({ logger, metrics, checks }), lines, metrics };
}

t.test('/healthz answers 200 whatever the readiness', async (t) => {
  const { app } = setup([{ name: 'cache', ok: () => false }]);
  const res = await app.inject({ method: 'GET', url: '/healthz' });
  t.equal(res.statusCode, 200);
  t.same(res.json(), { status: 'ok' });
});

t.test('/readyz answers 200 only when every check passes', async (t) => {
  let synced = false;
  const { app, lines } = setup([
    { name: 'certificate', ok: () => true },
    { name: 'cache', ok: () => Promise.resolve(synced) },
  ]);
  const notReady = await app.inject({ method: 'GET', url: '/readyz' });
  t.equal(notReady.statusCode, 503);
  t.same(notReady.json(), {
    status: 'not ready',
    checks: { certificate: 'ok', cache: 'failing' },
    failing: ['cache'],
  });
  synced = true;
  const ready = await app.inject({ method: 'GET', url: '/readyz' });
  t.equal(ready.statusCode, 200);
  t.same(ready.json(), { status: 'ready', checks: { certificate: 'ok', cache: 'ok' }, failing: [] });
  await app.inject({ method: 'GET', url: '/readyz' });
  t.equal(lines.length, 2, 'a log line when readiness changes, not on every probe');
  t.match(lines[0], /"ready":false,"failing":\["cache"\]/);
});

t.test('a check that throws counts as failing, with its error as the reason', async (t) => {
  const { app } = setup([
    {
      name: 'certificate',
      ok: () => {
        throw new Error('no certificate loaded');
      },
    },
    { name: 'leader', ok: () => Promise.reject(new Error('lease lost')) },
  ]);
  const res = await app.inject({ method: 'GET', url: '/readyz' });
  t.equal(res.statusCode, 503);
  t.match(res.json(), {
    failing: ['certificate', 'leader'],
    checks: { certificate: 'failing: no certificate loaded', leader: 'failing: lease lost' },
  });
});

t.test('/metrics serves the registry in Prometheus text format', async (t) => {
  const metrics = new Metrics();
  metrics.admissionTotal.inc({ kind: 'Deployment', operation: 'CREATE', decision: 'stamp' });
  metrics.certificateExpiry.set(1_900_000_000);
  const { app } = setup([], metrics);
  const res = await app.inject({ method: 'GET', url: '/metrics' });
  t.equal(res.statusCode, 200);
  t.match(res.headers['content-type'], /^text\/plain; version=0\.0\.4/);
  t.match(res.body, 'wave_admission_total{kind="Deployment",operation="CREATE",decision="stamp"} 1');
  t.match(res.body, 'wave_webhook_certificate_expiry_timestamp_seconds 1900000000');
  t.match(res.body, '# TYPE wave_admission_duration_seconds histogram');
  t.match(res.body, '# TYPE wave_admission_errors_total counter');
  t.match(res.body, /^process_cpu_user_seconds_total \d/m, 'process metrics are included');
  t.match(res.body, /^nodejs_heap_size_used_bytes \d/m);
});

t.test('each Metrics owns its registry, and a new metric is one call', async (t) => {
  const a = new Metrics({ defaultMetrics: false });
  const b = new Metrics({ defaultMetrics: false });
  const queueDepth = a.gauge({ name: 'wave_sync_queue_depth', help: 'Workloads waiting to be reconciled.' });
  const rollouts = a.counter({
    name: 'wave_rollouts_total',
    help: 'Rollouts started.',
    labelNames: ['kind'],
  });
  queueDepth.set(3);
  rollouts.inc({ kind: 'StatefulSet' });
  a.admissionTotal.inc({ kind: 'Deployment', operation: 'UPDATE', decision: 'keep' });
  t.match(await a.render(), /^wave_sync_queue_depth 3$/m);
  t.match(await a.render(), 'wave_rollouts_total{kind="StatefulSet"} 1');
  t.notMatch(await b.render(), 'wave_sync_queue_depth');
  t.notMatch(await b.render(), 'decision="keep"');
});

t.test('unknown paths get 404 with the paths that exist', async (t) => {
  const { app } = setup([]);
  const res = await app.inject({ method: 'GET', url: '/livez' });
  t.equal(res.statusCode, 404);
  t.match(res.json(), { error: /no route for GET \/livez; try \/healthz, \/readyz or \/metrics/ });
});
