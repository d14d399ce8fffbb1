import https from 'node:https';
import tls from 'node:tls';
import t from 'tap';
import { createLogger } from '../../src/log.ts';
import { Metrics } from '../../src/metrics.ts';
import type { JsonPatchOp } from '../../src/webhook/admission-review.ts';
import type { Admit } from '../../src/webhook/admission-route.ts';
import { buildWebhookServer, mutatePath } from '../../src/webhook/server.ts';
import { localServingPair } from '../support/certs.ts';
import { inPool, nested, picker, random, send } from './support/fuzz.ts';
import type { Answer, ReviewAnswer } from './support/fuzz.ts';

/*
 * Over a thousand generated requests, good, bad and odd, sent over real HTTPS to a listening server whose
 * admit sometimes throws or stalls. Each case states what it expects, independently of the parser under
 * test: 200 + allowed for an AdmissionReview however strange its object, 400 for a body that is not one,
 * 413 over the limit. Nothing may come back 5xx, and the server must still answer afterwards.
 */

const bodyLimit = 64 * 1024;
const admitTimeoutMs = 100;
const seed = 20260301;

type Behaviour = 'patch' | 'empty' | 'throw' | 'reject' | 'stall';

interface Case {
  readonly name: string;
  readonly body: string | Buffer;
  readonly contentType?: string;
  readonly expect: 200 | 400 | 413;
  readonly uid?: string;
}

const rand = random(seed);
const pick = picker(rand);
const int = (max: number) => Math.floor(rand() * max);

const behaviours = new Map<string, Behaviour>();
const patchFor = (uid: string): JsonPatchOp[] => [
  { op: 'add', path: '/spec/template/metadata/annotations/wave.pusher.com~1config-hash', value: `h-${uid}` },
];

const admit: Admit = (request) => {
  switch (behaviours.get(request.uid) ?? 'empty') {
    case 'patch':
      return Promise.resolve({ patch: patchFor(request.uid), decision: 'stamp', reason: 'generated' });
    case 'empty':
      return Promise.resolve({ patch: [], decision: 'keep', reason: 'generated' });
    case 'throw':
      throw new Error('generated synchronous failure');
    case 'reject':
      return Promise.reject(new Error('generated rejection'));
    case 'stall':
      return new Promise(() => undefined);
  }
};

const names = [
  'web',
  'ünïcødé-名前',
  '🚀-rocket',
  'a'.repeat(253),
  '',
  'name with spaces',
  '\u0000nul',
  '"quoted"',
];
const kinds = [
  { group: 'apps', version: 'v1', kind: 'Deployment' },
  { group: 'apps', version: 'v1', kind: 'StatefulSet' },
  { group: 'apps', version: 'v1', kind: 'DaemonSet' },
  { group: '', version: 'v1', kind: 'Pod' },
  { group: 'example.com', version: 'v1alpha1', kind: 'Wïdget' },
];
const operations = ['CREATE', 'UPDATE', 'DELETE', 'CONNECT'];

// Pod-template-shaped objects with the oddities real and broken clients produce.
function oddObject(name: string): unknown {
  const variants: (() => unknown)[] = [
    () => ({ metadata: { name, labels: null, annotations: null }, spec: { template: null } }),
    () => ({
      metadata: { name, annotations: { 'wave.pusher.com/update-on-config-change': 'true' } },
      spec: {},
    }),
    () => ({ metadata: { name }, spec: { template: { spec: { containers: [], volumes: null } } } }),
    () => ({ metadata: [], spec: 'not an object' }),
    () => ({ metadata: { name }, spec: { template: [] } }),
    () => ({ deep: nested(200 + int(2000)) }),
    () => ({ metadata: { name, labels: { 'ключ/имя': 'значение', '': '' } } }),
    () => ({ metadata: { name }, data: { huge: 1e308, tiny: -0, big: 2 ** 64, f: 0.1 } }),
    () => ({}),
  ];
  return pick(variants)();
}

function review(request: Record<string, unknown>): Record<string, unknown> {
  return { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request };
}

function validRequest(uid: string): Record<string, unknown> {
  const name = pick(names);
  const operation = pick(operations);
  return {
    uid,
    kind: pick(kinds),
    resource: { group: 'apps', version: 'v1', resource: 'deployments' },
    name,
    namespace: pick(['shop', '', 'ns-ü']),
    operation,
    userInfo: pick([
      { username: 'alice', groups: ['a'] },
      { username: 'system:serviceaccount:wave:wave' },
      undefined,
    ]),
    object: operation === 'DELETE' ? null : oddObject(name),
    oldObject: operation === 'UPDATE' ? oddObject(name) : null,
    dryRun: rand() < 0.2,
    options: { apiVersion: 'meta.k8s.io/v1', kind: 'CreateOptions' },
  };
}

function behaviourFor(index: number): Behaviour {
  if (index % 97 === 0) return 'stall';
  return pick<Behaviour>(['patch', 'patch', 'empty', 'empty', 'throw', 'reject']);
}

let counter = 0;
function nextUid(): string {
  counter += 1;
  return pick([`uid-${counter}`, `ユーアイディー-${counter}`, `${counter}-${'x'.repeat(int(100))}`]);
}

function validCase(name: string, mutate: (request: Record<string, unknown>) => unknown = review): Case {
  const uid = nextUid();
  behaviours.set(uid, behaviourFor(counter));
  return { name, body: JSON.stringify(mutate(validRequest(uid))), expect: 200, uid };
}

function invalidCase(name: string, mutate: (request: Record<string, unknown>) => unknown): Case {
  return { name, body: JSON.stringify(mutate(validRequest(nextUid()))), expect: 400 };
}

// A well-formed review whose JSON is exactly `size` bytes, padded in an annotation.
function sizedCase(size: number, expect: 200 | 413): Case {
  const uid = nextUid();
  behaviours.set(uid, 'patch');
  const build = (padding: number) =>
    JSON.stringify(
      review({
        uid,
        kind: kinds[0],
        operation: 'CREATE',
        object: { metadata: { name: 'big', annotations: { pad: 'é'.repeat(padding) } } },
      }),
    );
  const base = Buffer.byteLength(build(0));
  let body = build(Math.floor((size - base) / 2));
  if (Buffer.byteLength(body) < size) body = body.replace('"pad":"', '"pad": "');
  return { name: `a review of ${Buffer.byteLength(body)} bytes`, body, expect, uid };
}

function generateCases(): Case[] {
  const cases: Case[] = [];
  for (let i = 0; i < 480; i += 1) cases.push(validCase('a well-formed review with an odd object'));
  for (let i = 0; i < 30; i += 1) {
    cases.push(
      validCase('extra unknown fields everywhere', (r) => ({ ...review({ ...r, extra: [1] }), status: {} })),
    );
    cases.push(validCase('a duplicate key whose last value is valid', (r) => review(r)));
    const last = cases.at(-1);
    if (last !== undefined) {
      cases[cases.length - 1] = { ...last, body: `{"request":null,${String(last.body).slice(1)}` };
    }
  }

  const valid = () => JSON.stringify(review(validRequest(nextUid())));
  for (let i = 0; i < 180; i += 1) {
    const text = valid();
    cases.push({ name: 'a truncated body', body: text.slice(0, int(text.length)), expect: 400 });
  }
  for (let i = 0; i < 40; i += 1) {
    const bytes = Buffer.alloc(1 + int(400));
    for (let j = 0; j < bytes.length; j += 1) bytes[j] = int(256);
    cases.push({ name: 'random bytes', body: bytes, expect: 400 });
  }
  const notJson = [
    '{',
    '}',
    '{"a":}',
    "{'a':1}",
    'undefined',
    'NaN',
    '{"a":1,}',
    '\ufeff{}',
    '{"a":"\\x"}',
    ' ',
  ];
  for (const body of notJson) cases.push({ name: `not JSON: ${JSON.stringify(body)}`, body, expect: 400 });
  for (const body of [
    'null',
    'true',
    '42',
    '"AdmissionReview"',
    '[]',
    '[{"apiVersion":"admission.k8s.io/v1"}]',
  ]) {
    cases.push({ name: `JSON that is not an object: ${body}`, body, expect: 400 });
  }

  const wrong: [string, (r: Record<string, unknown>) => unknown][] = [
    ['apiVersion v1beta1', (r) => ({ ...review(r), apiVersion: 'admission.k8s.io/v1beta1' })],
    ['apiVersion missing', (r) => ({ kind: 'AdmissionReview', request: r })],
    ['apiVersion a number', (r) => ({ ...review(r), apiVersion: 1 })],
    ['kind ConversionReview', (r) => ({ ...review(r), kind: 'ConversionReview' })],
    ['kind lower case', (r) => ({ ...review(r), kind: 'admissionreview' })],
    ['request missing', () => ({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview' })],
    ['request null', () => review(null as unknown as Record<string, unknown>)],
    ['request an array', (r) => ({ ...review({}), request: [r] })],
    ['request a string', () => ({ ...review({}), request: 'CREATE' })],
    ['uid missing', ({ uid: _uid, ...r }) => review(r)],
    ['uid empty', (r) => review({ ...r, uid: '' })],
    ['uid a number', (r) => review({ ...r, uid: 12345 })],
    ['uid an object', (r) => review({ ...r, uid: { id: 'x' } })],
    ['operation lower case', (r) => review({ ...r, operation: 'create' })],
    ['operation PATCH', (r) => review({ ...r, operation: 'PATCH' })],
    ['operation missing', ({ operation: _op, ...r }) => review(r)],
    ['kind a string', (r) => review({ ...r, kind: 'Deployment' })],
    ['kind without kind', (r) => review({ ...r, kind: { group: 'apps', version: 'v1' } })],
    ['kind.kind a number', (r) => review({ ...r, kind: { group: 'apps', version: 'v1', kind: 3 } })],
    ['object an array', (r) => review({ ...r, object: [r.object] })],
    ['object a string', (r) => review({ ...r, object: '{}' })],
    ['oldObject a number', (r) => review({ ...r, oldObject: 7 })],
    ['namespace an array', (r) => review({ ...r, namespace: ['shop'] })],
    ['name a number', (r) => review({ ...r, name: 1 })],
    ['dryRun a string', (r) => review({ ...r, dryRun: 'true' })],
    ['userInfo a string', (r) => review({ ...r, userInfo: 'alice' })],
    ['username an object', (r) => review({ ...r, userInfo: { username: { name: 'alice' } } })],
    ['groups not strings', (r) => review({ ...r, userInfo: { username: 'a', groups: [null] } })],
  ];
  for (let i = 0; i < 8; i += 1) {
    for (const [name, mutate] of wrong) cases.push(invalidCase(name, mutate));
  }

  for (const contentType of ['text/plain', 'application/x-www-form-urlencoded', 'application/yaml', '']) {
    for (let i = 0; i < 5; i += 1) {
      cases.push({ name: `a review sent as "${contentType}"`, body: valid(), contentType, expect: 400 });
    }
  }

  for (const delta of [-2000, -64, -1, 0]) cases.push(sizedCase(bodyLimit + delta, 200));
  for (const delta of [1, 2, 1000, 100_000]) cases.push(sizedCase(bodyLimit + delta, 413));
  return cases;
}

const sendCase = (agent: https.Agent, port: number, c: Case) => send(agent, port, c.body, c.contentType);

// What is wrong with an answer, or undefined when it is what the case expects.
function mismatch(c: Case, answer: Answer): string | undefined {
  if (answer.status !== c.expect)
    return `expected ${c.expect}, got ${answer.status}: ${answer.body.slice(0, 200)}`;
  let json: unknown;
  try {
    json = JSON.parse(answer.body);
  } catch {
    return `the answer is not JSON: ${answer.body.slice(0, 200)}`;
  }
  if (c.expect !== 200) {
    const error = (json as { error?: unknown }).error;
    return typeof error === 'string' && error.length > 0 ? undefined : 'a 4xx without an error message';
  }
  const { apiVersion, kind, response } = json as ReviewAnswer;
  if (apiVersion !== 'admission.k8s.io/v1' || kind !== 'AdmissionReview') return 'apiVersion/kind not echoed';
  if (response === undefined) return 'no response field';
  if (response.uid !== c.uid) return `uid ${String(response.uid)} instead of ${String(c.uid)}`;
  if (response.allowed !== true) return 'not allowed';
  const wantsPatch = behaviours.get(c.uid ?? '') === 'patch';
  if (!wantsPatch)
    return response.patch === undefined ? undefined : 'a patch where admit gave none or failed';
  if (response.patchType !== 'JSONPatch' || typeof response.patch !== 'string') return 'the patch is missing';
  const decoded: unknown = JSON.parse(Buffer.from(response.patch, 'base64').toString('utf8'));
  return JSON.stringify(decoded) === JSON.stringify(patchFor(c.uid ?? '')) ? undefined : 'the patch differs';
}

// Raw TLS: bytes that are not HTTP, or a request that never finishes. Resolves with what came back.
function raw(port: number, payload: string, halfClose: boolean): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => {
      socket.write(payload);
      if (halfClose) socket.end();
    });
    let received = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => (received += chunk));
    socket.on('close', () => {
      resolve(received);
    });
    socket.on('error', reject);
    socket.setTimeout(5000, () => {
      socket.destroy(new Error('no answer within 5 s'));
    });
  });
}

t.test(
  'a thousand odd requests over HTTPS: no 5xx, 400 exactly for non-reviews, allowed otherwise',
  async (t) => {
    const { ca, serving } = localServingPair();
    const metrics = new Metrics({ defaultMetrics: false });
    const app = buildWebhookServer({
      https: { cert: serving.certPem, key: serving.keyPem },
      logger: createLogger({ level: 'silent' }),
      metrics,
      admit,
      bodyLimit,
      admitTimeoutMs,
      requestTimeoutMs: 500,
    });
    const agent = new https.Agent({ keepAlive: true, maxSockets: 16, ca: ca.certPem });
    t.teardown(async () => {
      agent.destroy();
      await app.close();
    });
    const port = Number(new URL(await app.listen({ host: '127.0.0.1', port: 0 })).port);

    const cases = generateCases();
    t.ok(cases.length >= 1000, `${cases.length} generated cases (seed ${seed})`);
    const failures: string[] = [];
    const statuses = new Map<number, number>();
    await inPool(cases, 16, async (c) => {
      let answer: Answer;
      try {
        answer = await sendCase(agent, port, c);
      } catch (err) {
        failures.push(`${c.name}: ${err instanceof Error ? err.message : String(err)}`);
        return;
      }
      statuses.set(answer.status, (statuses.get(answer.status) ?? 0) + 1);
      const problem = mismatch(c, answer);
      if (problem !== undefined) failures.push(`${c.name}: ${problem}`);
    });

    t.same(failures.slice(0, 20), [], `every answer is as expected (${failures.length} not)`);
    t.notOk(
      [...statuses.keys()].some((status) => status >= 500),
      `no 5xx (statuses: ${JSON.stringify([...statuses])})`,
    );
    t.equal(statuses.get(200), cases.filter((c) => c.expect === 200).length, 'every review was answered 200');
    const failedOpen = (await metrics.admissionErrors.get()).values.reduce((sum, v) => sum + v.value, 0);
    const failing = [...behaviours.values()].filter((b) => b === 'throw' || b === 'reject' || b === 'stall');
    t.ok(failedOpen > 0, `${failedOpen} admissions failed open`);
    t.ok(failedOpen <= failing.length, 'only failing admits are counted as failures');

    t.match(
      await raw(port, 'this is not HTTP\r\n\r\n', false),
      /^HTTP\/1\.1 400 /,
      'bytes that are not HTTP get 400',
    );
    t.match(
      await raw(
        port,
        `POST ${mutatePath} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 5000\r\n\r\n{"api`,
        false,
      ),
      /^HTTP\/1\.1 408 /,
      'a body that stops arriving gets 408 after the request timeout',
    );
    t.match(
      await raw(
        port,
        `POST ${mutatePath} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 5000\r\n\r\n{"api`,
        true,
      ),
      /^HTTP\/1\.1 400 /,
      'a client that hangs up mid-body gets 400 and the connection closes',
    );

    const after = validCase('after the storm');
    const answer = await sendCase(agent, port, after);
    t.equal(mismatch(after, answer), undefined, 'the server still answers afterwards');
  },
);
