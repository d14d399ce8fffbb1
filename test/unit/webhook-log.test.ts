import t from 'tap';
import { createLogger } from '../../src/log.ts';
import { Metrics } from '../../src/metrics.ts';
import { buildWebhookServer, mutatePath } from '../../src/webhook/server.ts';

const secretValue = 'hunter2-5up3r-s3cr3t';
const secretBase64 = Buffer.from(secretValue).toString('base64');

function capture() {
  const output: string[] = [];
  const logger = createLogger({
    level: 'debug',
    destination: { write: (line: string) => void output.push(line) },
  });
  return { logger, output };
}

const secret = {
  apiVersion: 'v1',
  kind: 'Secret',
  metadata: { name: 'db', namespace: 'shop' },
  data: { password: secretBase64 },
  stringData: { password: secretValue },
};

const review = {
  apiVersion: 'admission.k8s.io/v1',
  kind: 'AdmissionReview',
  request: {
    uid: 'u-1',
    kind: { group: 'apps', version: 'v1', kind: 'Deployment' },
    operation: 'UPDATE',
    namespace: 'shop',
    name: 'web',
    userInfo: { username: 'alice' },
    object: {
      metadata: { name: 'web' },
      spec: { template: { spec: { containers: [{ env: [{ value: secretValue }] }] } } },
    },
    oldObject: secret,
  },
};

t.test('lines carry stable field names: level label, ISO time, name, msg', (t) => {
  const { logger, output } = capture();
  logger.info({ uid: 'u' }, 'hello');
  const line = JSON.parse(output[0] ?? '{}') as Record<string, unknown>;
  t.match(line, { level: 'info', name: 'wave', msg: 'hello', uid: 'u' });
  t.match(line.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  t.end();
});

t.test('a Secret logged by mistake shows neither its data nor its stringData', (t) => {
  const { logger, output } = capture();
  logger.info({ secret }, 'oops');
  logger.info(secret, 'oops at the top level');
  logger.warn({ event: { involved: secret } }, 'nested two deep');
  const text = output.join('');
  t.notMatch(text, secretValue);
  t.notMatch(text, secretBase64);
  t.match(text, '"data":"[redacted]"');
  t.match(text, '"name":"db"', 'the harmless metadata stays readable');
  t.end();
});

t.test('an AdmissionReview logged by mistake shows neither object nor oldObject', (t) => {
  const { logger, output } = capture();
  logger.info(review, 'top level');
  logger.info({ review }, 'nested');
  const text = output.join('');
  t.notMatch(text, secretValue);
  t.notMatch(text, secretBase64);
  t.match(text, '"uid":"u-1"');
  t.end();
});

t.test('the webhook never writes request content to its log, whatever the outcome', async (t) => {
  const { logger, output } = capture();
  const outcomes = [
    () => Promise.resolve({ patch: [], decision: 'keep', reason: 'template unchanged' }),
    () => Promise.reject(new Error('boom')),
  ];
  for (const admit of outcomes) {
    const app = buildWebhookServer({
      https: null,
      logger,
      metrics: new Metrics({ defaultMetrics: false }),
      admit,
    });
    const ok = await app.inject({ method: 'POST', url: mutatePath, payload: review });
    t.equal(ok.statusCode, 200);
    const invalid = await app.inject({
      method: 'POST',
      url: mutatePath,
      payload: { ...review, request: { ...review.request, operation: secretValue } },
    });
    t.equal(invalid.statusCode, 400);
    const broken = await app.inject({
      method: 'POST',
      url: mutatePath,
      headers: { 'content-type': 'application/json' },
      payload: JSON.stringify(review).slice(0, -20) + `"${secretValue}`,
    });
    t.equal(broken.statusCode, 400);
  }
  t.ok(output.length >= 6, 'every request was logged');
  const text = output.join('');
  t.notMatch(text, secretValue);
  t.notMatch(text, secretBase64);
});
