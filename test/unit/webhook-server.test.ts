import t from 'tap';
import { createLogger } from '../../src/log.ts';
import { Metrics } from '../../src/metrics.ts';
import type { AdmissionRequestV1, JsonPatchOp } from '../../src/webhook/admission-review.ts';
import type { Admit, AdmitResult } from '../../src/webhook/admission-route.ts';
import { buildWebhookServer, mutatePath } from '../../src/webhook/server.ts';
import { FakeClock } from './support/fake-clock.ts';

interface LogLine {
  level: string;
  msg: string;
  [key: string]: unknown;
}

function setup(admit: Admit, extra: { bodyLimit?: number; admitTimeoutMs?: number; clock?: FakeClock } = {}) {
  const lines: LogLine[] = [];
  const logger = createLogger({
    level: 'info',
    destination: { write: (line: string) => void lines.push(JSON.parse(line) as LogLine) },
  });
  const metrics = new Metrics({ defaultMetrics: false });
  const app = buildWebhookServer({ https: null, logger, metrics, admit, ...extra });
  return { app, lines, metrics };
}

const stampPatch: JsonPatchOp[] = [
  { op: 'add', path: '/spec/template/metadata/annotations/wave.pusher.com~1config-hash', value: 'c0ffee' },
];
const stamp: Admit = () =>
  Promise.resolve({ patch: stampPatch, decision: 'stamp', reason: 'template changed' });

function reviewBody(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: 'b1f8a6a2-0000-4000-8000-000000000001',
      kind: { group: 'apps', version: 'v1', kind: 'Deployment' },
      resource: { group: 'apps', version: 'v1', resource: 'deployments' },
      name: 'web',
      namespace: 'shop',
      operation: 'CREATE',
      userInfo: { username: 'alice' },
      object: { metadata: { name: 'web', namespace: 'shop' }, spec: { template: { metadata: {} } } },
      oldObject: null,
      dryRun: false,
      ...overrides,
    },
  };
}

interface ReviewResponse {
  apiVersion: string;
  kind: string;
  response: { uid: string; allowed: boolean; patchType?: string; patch?: string };
}

async function counter(
  metrics: Metrics,
  name: 'admissionTotal' | 'admissionErrors',
  labels: Record<string, string>,
) {
  const { values } = await metrics[name].get();
  const match = values.find((v) => {
    const actual: Record<string, string | number | undefined> = v.labels;
    return Object.entries(labels).every(([k, want]) => actual[k] === want);
  });
  return match?.value ?? 0;
}

t.test('a well-formed review is answered 200, allowed, with the patch admit returned', async (t) => {
  let seen: AdmissionRequestV1 | undefined;
  const { app } = setup((request) => {
    seen = request;
    return stamp(request, new AbortController().signal);
  });
  const res = await app.inject({ method: 'POST', url: `${mutatePath}?timeout=5s`, payload: reviewBody() });
  t.equal(res.statusCode, 200);
  t.match(res.headers['content-type'], /^application\/json/);
  const body = res.json<ReviewResponse>();
  t.equal(body.apiVersion, 'admission.k8s.io/v1');
  t.equal(body.kind, 'AdmissionReview');
  t.equal(body.response.uid, 'b1f8a6a2-0000-4000-8000-000000000001');
  t.equal(body.response.allowed, true);
  t.equal(body.response.patchType, 'JSONPatch');
  t.same(JSON.parse(Buffer.from(body.response.patch ?? '', 'base64').toString('utf8')), stampPatch);
  t.equal(seen?.namespace, 'shop');
  t.equal(seen?.userInfo.username, 'alice');
});

t.test('a decision without changes is a plain allow, with no patch fields', async (t) => {
  const { app } = setup(() => Promise.resolve({ patch: [], decision: 'keep', reason: 'template unchanged' }));
  const res = await app.inject({
    method: 'POST',
    url: mutatePath,
    payload: reviewBody({ operation: 'UPDATE' }),
  });
  t.equal(res.statusCode, 200);
  t.same(res.json<ReviewResponse>().response, { uid: 'b1f8a6a2-0000-4000-8000-000000000001', allowed: true });
});

t.test('each admission logs one line with uid, object, decision, reason and duration', async (t) => {
  const { app, lines, metrics } = setup(stamp);
  await app.inject({ method: 'POST', url: mutatePath, payload: reviewBody() });
  t.equal(lines.length, 1);
  t.match(lines[0], {
    level: 'info',
    msg: 'admission',
    uid: 'b1f8a6a2-0000-4000-8000-000000000001',
    kind: 'Deployment',
    namespace: 'shop',
    workload: 'Deployment/shop/web',
    operation: 'CREATE',
    decision: 'stamp',
    reason: 'template changed',
    patchOps: 1,
    durationMs: Number,
  });
  t.notOk('object' in (lines[0] ?? {}), 'the object itself is never logged');
  t.equal(
    await counter(metrics, 'admissionTotal', { kind: 'Deployment', operation: 'CREATE', decision: 'stamp' }),
    1,
  );
  const histogram = await metrics.admissionDuration.get();
  t.ok(
    histogram.values.some((v) => v.metricName === 'wave_admission_duration_seconds_count' && v.value === 1),
  );
});

t.test('when admit throws, the review is allowed unchanged and the failure logged and counted', async (t) => {
  for (const admit of [
    () => Promise.reject(new Error('cache exploded')),
    () => {
      throw new Error('cache exploded');
    },
  ] satisfies Admit[]) {
    const { app, lines, metrics } = setup(admit);
    const res = await app.inject({ method: 'POST', url: mutatePath, payload: reviewBody() });
    t.equal(res.statusCode, 200);
    t.same(res.json<ReviewResponse>().response, {
      uid: 'b1f8a6a2-0000-4000-8000-000000000001',
      allowed: true,
    });
    t.equal(lines.length, 1);
    t.match(lines[0], {
      level: 'error',
      uid: 'b1f8a6a2-0000-4000-8000-000000000001',
      decision: 'error',
      reason: /fail open.*cache exploded/,
      err: { message: 'cache exploded' },
    });
    t.equal(await counter(metrics, 'admissionErrors', { cause: 'exception' }), 1);
    t.equal(await counter(metrics, 'admissionTotal', { decision: 'error' }), 1);
  }
});

t.test('when admit returns something unusable, the review still fails open', async (t) => {
  const broken = () => Promise.resolve({ decision: 'stamp', reason: 'x' } as unknown as AdmitResult);
  const { app, metrics } = setup(broken);
  const res = await app.inject({ method: 'POST', url: mutatePath, payload: reviewBody() });
  t.equal(res.statusCode, 200);
  t.equal(res.json<ReviewResponse>().response.allowed, true);
  t.equal(res.json<ReviewResponse>().response.patch, undefined);
  t.equal(await counter(metrics, 'admissionErrors', { cause: 'exception' }), 1);
});

t.test(
  'when admit misses the deadline, the review is allowed unchanged and admit is told to stop',
  async (t) => {
    let signal: AbortSignal | undefined;
    const clock = new FakeClock();
    const { app, lines, metrics } = setup(
      (_request, s) => {
        signal = s;
        return new Promise(() => undefined);
      },
      { admitTimeoutMs: 50, clock },
    );
    let answered = false;
    const answer = app
      .inject({ method: 'POST', url: mutatePath, payload: reviewBody() })
      .finally(() => (answered = true));
    // The request reaches admit within a few turns of the event loop, not after any time.
    for (let turn = 0; signal === undefined && turn < 100; turn++) {
      await new Promise((resolve) => setImmediate(resolve));
    }
    await clock.advanceBy(49);
    t.notOk(answered, 'not answered 1 ms before the deadline');
    t.equal(signal?.aborted, false, 'admit was called and still has 1 ms');
    await clock.advanceBy(1);
    const res = await answer;
    t.equal(res.statusCode, 200);
    t.same(res.json<ReviewResponse>().response, {
      uid: 'b1f8a6a2-0000-4000-8000-000000000001',
      allowed: true,
    });
    t.equal(signal?.aborted, true);
    t.match(lines[0], { level: 'error', decision: 'error', reason: /did not answer within 50 ms/ });
    t.equal(await counter(metrics, 'admissionErrors', { cause: 'timeout' }), 1);
  },
);

t.test('a body that is not an AdmissionReview gets 400 with a message saying why', async (t) => {
  const { app, metrics, lines } = setup(stamp);
  const cases: { payload: string; contentType?: string; error: RegExp }[] = [
    {
      payload: '{"apiVersion": ',
      error: /^the body is not valid JSON \(it ends before the value is complete\)$/,
    },
    { payload: '{not json}', error: /^the body is not valid JSON \(syntax error at character 1\)$/ },
    { payload: '', error: /^the body is empty/ },
    { payload: '[1,2]', error: /^not an AdmissionReview v1: the body is an array/ },
    { payload: JSON.stringify({ ...reviewBody(), apiVersion: 'v1' }), error: /apiVersion must be/ },
    { payload: JSON.stringify(reviewBody({ uid: null })), error: /request.uid must be a non-empty string/ },
    {
      payload: 'apiVersion=x',
      contentType: 'application/x-www-form-urlencoded',
      error: /Content-Type application\/json/,
    },
    { payload: '{}', contentType: 'text/plain', error: /got "text\/plain"/ },
  ];
  for (const c of cases) {
    const res = await app.inject({
      method: 'POST',
      url: mutatePath,
      headers: { 'content-type': c.contentType ?? 'application/json' },
      payload: c.payload,
    });
    t.equal(res.statusCode, 400, c.error.source);
    t.match(res.json<{ error: string }>().error, c.error);
  }
  t.equal(
    await counter(metrics, 'admissionTotal', { decision: 'invalid' }),
    3,
    'parsed JSON that is not a review',
  );
  t.ok(
    lines.every((line) => line.level === 'warn'),
    'rejections are warnings, not errors',
  );
  t.notOk(JSON.stringify(lines).includes('not json'), 'the body is not quoted in the log');
});

t.test('a body over the limit gets 413', async (t) => {
  const { app } = setup(stamp, { bodyLimit: 1024 });
  const big = reviewBody({ object: { metadata: { name: 'web', annotations: { a: 'x'.repeat(2000) } } } });
  const res = await app.inject({ method: 'POST', url: mutatePath, payload: big });
  t.equal(res.statusCode, 413);
  t.equal(res.json<{ error: string }>().error, 'the body is larger than the limit of 1024 bytes');
  const small = await app.inject({ method: 'POST', url: mutatePath, payload: reviewBody() });
  t.equal(small.statusCode, 200, 'a body under the limit is still served');
});

t.test('unknown routes and methods get 404 naming the webhook path', async (t) => {
  const { app } = setup(stamp);
  for (const [method, url] of [
    ['POST', '/validate'],
    ['GET', mutatePath],
    ['POST', `${mutatePath}/extra`],
  ] as const) {
    const res = await app.inject({ method, url, payload: method === 'POST' ? reviewBody() : undefined });
    t.equal(res.statusCode, 404, `${method} ${url}`);
    t.match(
      res.json<{ error: string }>().error,
      `no route for ${method} ${url}; the webhook serves POST /mutate`,
    );
  }
});

t.test('keys such as __proto__ inside the object are plain data', async (t) => {
  const { app } = setup(stamp);
  const payload = JSON.stringify(reviewBody()).replace(
    '"metadata":{',
    '"metadata":{"__proto__":{"polluted":true},',
  );
  const res = await app.inject({
    method: 'POST',
    url: mutatePath,
    headers: { 'content-type': 'application/json' },
    payload,
  });
  t.equal(res.statusCode, 200);
  t.equal(({} as Record<string, unknown>).polluted, undefined);
});

t.test('limits and timeouts must be positive integers', (t) => {
  const logger = createLogger({ level: 'silent' });
  const metrics = new Metrics({ defaultMetrics: false });
  for (const bad of [
    { bodyLimit: 0 },
    { admitTimeoutMs: -1 },
    { requestTimeoutMs: 1.5 },
    { keepAliveTimeoutMs: Number.NaN },
  ]) {
    t.throws(() => buildWebhookServer({ https: null, logger, metrics, admit: stamp, ...bad }), {
      name: 'RangeError',
      message: `${Object.keys(bad)[0] ?? ''} must be a positive integer`,
    });
  }
  t.end();
});
