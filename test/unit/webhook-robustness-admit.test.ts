import { createHash } from 'node:crypto';
import https from 'node:https';
import { isDeepStrictEqual } from 'node:util';
import jsonPatch from 'fast-json-patch';
import type { Operation } from 'fast-json-patch';
import t from 'tap';
import type { ChildData } from '../../src/core/objects.ts';
import type { ChildReader } from '../../src/kube/children.ts';
import type { EventRecorder, EventTarget, WaveEvent } from '../../src/kube/events.ts';
import { createLogger } from '../../src/log.ts';
import { Metrics } from '../../src/metrics.ts';
import { sha256Hex } from '../../src/sha256.ts';
import { createAdmit } from '../../src/webhook/admit.ts';
import { buildHealthServer } from '../../src/http/health.ts';
import { buildWebhookServer } from '../../src/webhook/server.ts';
import { localServingPair } from '../support/certs.ts';
import { inPool, nested, picker, random, send } from './support/fuzz.ts';
import type { Answer, ReviewAnswer } from './support/fuzz.ts';

/*
 * The real admission path (createAdmit, the core, the SHA-256 hasher) behind a listening HTTPS server,
 * with ConfigMaps and Secrets and Events in memory, fed a thousand generated AdmissionReviews that are
 * well-formed but odd everywhere else: null maps, wrong-typed fields, unicode names, huge lists, garbage
 * volumes, annotation values of every type, DELETE and CONNECT, garbage oldObjects, kinds that are not
 * workloads. Every one must come back 200 and allowed, with no patch or a patch that applies cleanly and
 * changes nothing but the config-hash annotation and the config-missing gate. The expectations are
 * written from the contract, not by asking the core.
 */

const seed = 20260321;
const ownUsername = 'system:serviceaccount:wave-system:wave';
const ownFieldManager = 'wave';
const optIn = 'wave.pusher.com/update-on-config-change';
const hashAnnotation = 'wave.pusher.com/config-hash';
const gate = 'wave.pusher.com/config-missing';
const workloadKinds = new Set(['Deployment', 'StatefulSet', 'DaemonSet']);

const rand = random(seed);
const pick = picker(rand);
const some = <T>(items: readonly T[]): T[] => items.filter(() => rand() < 0.3);
/** Mostly the sane value, so the generator gets deep into the core; otherwise one of the odd ones. */
const usually = (sane: () => unknown, odd: readonly unknown[]): unknown =>
  rand() < 0.85 ? sane() : pick(odd);

// ---------------------------------------------------------------------------------------------------
// The cluster in memory: ConfigMaps and Secrets wave reads, and the Events it records.

const b64 = (text: string) => Buffer.from(text, 'utf8').toString('base64');
const secretValues = ['hunter2-SECRET-VALUE', 'CERT-SECRET-VALUE'];

function childrenIn(namespace: string): ChildData[] {
  return [
    { kind: 'ConfigMap', namespace, name: 'settings', data: { LOG: 'json', MODE: 'fast' } },
    {
      kind: 'ConfigMap',
      namespace,
      name: 'files',
      data: { 'a.txt': 'A', 'b.txt': 'B' },
      binaryData: { bin: b64('\u0001\u0002') },
    },
    { kind: 'Secret', namespace, name: 'creds', data: { password: b64(secretValues[0] ?? '') } },
    { kind: 'Secret', namespace, name: 'tls', data: { 'tls.crt': b64(secretValues[1] ?? '') } },
  ];
}
const store = new Map(
  ['shop', 'ns-ü']
    .flatMap(childrenIn)
    .map((child) => [`${child.kind}/${child.namespace}/${child.name}`, child]),
);

let rejectedReads = 0;
// The namespace "flaky" stands for an API that fails: admission must fail open there.
const readChildren: ChildReader = (refs) => {
  if (refs.some((ref) => ref.namespace === 'flaky')) {
    rejectedReads += 1;
    return Promise.reject(new Error('generated: the API is unavailable'));
  }
  return Promise.resolve(refs.flatMap((ref) => store.get(`${ref.kind}/${ref.namespace}/${ref.name}`) ?? []));
};

const recorded: { target: EventTarget; event: WaveEvent }[] = [];
const events: EventRecorder = {
  record(target, event) {
    recorded.push({ target, event });
  },
  flush: () => Promise.resolve(),
};

// ---------------------------------------------------------------------------------------------------
// Generated requests.

const names = [
  'web',
  'ünïcødé-名前',
  '🚀-rocket',
  'a'.repeat(253),
  'name with spaces',
  'nul\u0000byte',
  '"quoted"',
  'rtl-\u202eevil',
  'zero\u200bwidth',
  '__proto__',
  'constructor',
];
const namespaces = ['shop', 'shop', 'ns-ü', 'flaky', 'empty', ''];
const anyValues: unknown[] = [
  null,
  true,
  0,
  -1.5e308,
  '',
  'x',
  [],
  ['true'],
  {},
  { nested: { deep: [null] } },
];

const envFromItems: unknown[] = [
  null,
  1,
  'x',
  {},
  { configMapRef: null },
  { configMapRef: { name: 42 } },
  { configMapRef: { name: 'settings' } },
  { configMapRef: { name: 'settings', items: 'ignored' } },
  { configMapRef: { name: 'missing-cm', optional: true } },
  { configMapRef: { name: 'missing-cm', optional: 'true' } },
  { secretRef: { name: 'creds' } },
  { secretRef: { name: 'missing-secret' } },
  { prefix: 'X_', configMapRef: { name: 'files' }, secretRef: { name: 'tls' } },
];
const envItems: unknown[] = [
  null,
  'FOO',
  { name: 'A', value: 1 },
  { name: 'B', valueFrom: null },
  { name: 'C', valueFrom: { configMapKeyRef: { name: 'settings', key: 'LOG' } } },
  { name: 'D', valueFrom: { configMapKeyRef: { name: 'settings', key: 'NOPE' } } },
  { name: 'E', valueFrom: { configMapKeyRef: { name: 'settings' } } },
  { name: 'F', valueFrom: { secretKeyRef: { name: 'creds', key: 'password' } } },
  { name: 'G', valueFrom: { secretKeyRef: { name: 'creds', key: 'password', optional: 'yes' } } },
  { name: 'H', valueFrom: { secretKeyRef: { name: 'missing-secret', key: 'k', optional: true } } },
  { name: 'I', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
  { name: '名前', valueFrom: { configMapKeyRef: { name: 'ünï', key: 'ключ', optional: true } } },
  { name: 'J', valueFrom: { configMapKeyRef: { name: ['settings'], key: { k: 1 } } } },
];
const volumeItems: unknown[] = [
  null,
  1,
  {},
  { name: 'v', configMap: null },
  { name: 'v', configMap: { name: 'files', items: null } },
  { name: 'v', configMap: { name: 'files', items: [{ key: null }, { key: 'a.txt', path: 'a' }, 'x'] } },
  { name: 'v', configMap: { name: 'files', items: [{ key: 'missing-key', path: 'm' }] } },
  { name: 'v', configMap: { name: 'files', items: [{ key: 'bin', path: 'b' }] } },
  { name: 's', secret: { secretName: 'tls', items: 'x' } },
  { name: 's', secret: { name: 'tls' } },
  { name: 's', secret: { secretName: 'missing-secret', optional: true } },
  { name: 'p', projected: { sources: null } },
  {
    name: 'p',
    projected: {
      sources: [
        null,
        { configMap: { name: 'settings' } },
        { secret: { name: 'creds', items: [{ key: 'password', path: 'p' }] } },
        { downwardAPI: {} },
        { serviceAccountToken: { path: 't' } },
      ],
    },
  },
  { name: 'c', csi: { driver: 'x', nodePublishSecretRef: { name: 'missing-secret' } } },
  { name: 'e', emptyDir: {} },
];

function hugeEnv(): unknown[] {
  const env: unknown[] = Array.from({ length: 5000 }, (_, i) => ({ name: `V${i}`, value: String(i) }));
  env.push({ name: 'F', valueFrom: { secretKeyRef: { name: 'creds', key: 'password' } } });
  return env;
}

function container(): Record<string, unknown> {
  return {
    name: pick(names),
    image: 'web:1',
    envFrom: usually(() => some(envFromItems), [undefined, null, 'x', {}]),
    env: rand() < 0.02 ? hugeEnv() : usually(() => some(envItems), [undefined, null, {}, 'x']),
  };
}

function podSpec(): unknown {
  return {
    containers: usually(
      () => [container()],
      [null, 'x', [], [container(), null, 7, container()], [container(), container()]],
    ),
    initContainers: pick([
      undefined,
      undefined,
      null,
      [container()],
      [{ ...container(), restartPolicy: 'Always' }],
    ]),
    volumes: usually(() => some(volumeItems), [undefined, null, {}, 'x']),
    schedulingGates: pick([
      undefined,
      undefined,
      undefined,
      null,
      'x',
      [],
      [{ name: gate }],
      [{ name: 'other' }, null, { name: gate }],
      [{ name: gate }, { name: gate }],
    ]),
    imagePullSecrets: [{ name: 'creds' }],
  };
}

function template(): unknown {
  return usually(
    () => ({
      metadata: usually(
        () => ({ labels: { app: 'web' } }),
        [
          undefined,
          null,
          'x',
          {},
          { labels: null, annotations: null },
          { annotations: [] },
          { labels: { app: 'web', ключ: 'значение' }, annotations: { [hashAnnotation]: pick(anyValues) } },
          { annotations: { [hashAnnotation]: 'f'.repeat(64) } },
          { annotations: { [optIn]: 'true' } },
        ],
      ),
      spec: usually(podSpec, [null, 'x', [], {}]),
    }),
    [null, 'x', [], {}],
  );
}

function annotations(): unknown {
  return usually(
    () => ({
      [optIn]: usually(() => 'true', ['True', 'yes', ' true', ...anyValues]),
      'wave.pusher.com/extra-configmaps': pick([
        undefined,
        undefined,
        'settings',
        ' settings , files ,, ',
        'shop/settings,ns-ü/files',
        'missing-cm',
        'ünï/çødé, /, a/b/c',
        ...anyValues,
      ]),
      'wave.pusher.com/extra-secrets': pick([
        undefined,
        undefined,
        'creds',
        'flaky/creds',
        'missing-secret',
        ...anyValues,
      ]),
      ['__proto__']: pick(anyValues),
      other: pick(anyValues),
    }),
    [null, 'x', [], {}],
  );
}

function workloadObject(name: string): Record<string, unknown> {
  return {
    apiVersion: usually(() => 'apps/v1', ['extensions/v1beta1', undefined, 7]),
    kind: usually(
      () => pick(['Deployment', 'StatefulSet', 'DaemonSet']),
      ['Pod', 'ConfigMap', 'Wïdget', undefined, 5],
    ),
    metadata: usually(
      () => ({
        name,
        namespace: pick([undefined, undefined, 'shop', 'ns-ü', 'flaky', 7]),
        labels: pick([undefined, null, { ü: 'ß' }, 'x']),
        annotations: annotations(),
      }),
      [null, 'x', [], { name }],
    ),
    spec: usually(() => ({ replicas: pick([2, 'three', null]), template: template() }), [null, 'x', {}]),
  };
}

function oldObjectFor(object: Record<string, unknown>): unknown {
  const scaled = structuredClone(object);
  if (typeof scaled.spec === 'object' && scaled.spec !== null)
    (scaled.spec as Record<string, unknown>).replicas = 9;
  const changed = structuredClone(object);
  if (typeof changed.spec === 'object' && changed.spec !== null) {
    (changed.spec as Record<string, unknown>).template = template();
  }
  return pick([
    null,
    {},
    { spec: 'x' },
    { spec: { template: 7 } },
    structuredClone(object),
    scaled,
    changed,
    changed,
  ]);
}

let counter = 0;

interface Case {
  readonly name: string;
  readonly body: string;
  /**
   * review: answered 200. not-a-review: valid JSON answered 400 by the route (counted as "invalid").
   * not-json: answered 400 by the body parser, before the route (not counted).
   */
  readonly kind: 'review' | 'not-a-review' | 'not-json';
  readonly uid?: string;
  /** The request as the server parses it; absent when too deep for this process to handle as objects. */
  readonly request?: Record<string, unknown>;
}

function reviewCase(name: string, request: Record<string, unknown>): Case {
  const body = JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request });
  // What the server sees: JSON drops undefined fields.
  const sent = (JSON.parse(body) as { request: Record<string, unknown> }).request;
  return { name, body, kind: 'review', uid: String(request.uid), request: sent };
}

function generatedRequest(): Record<string, unknown> {
  counter += 1;
  const uid = `uid-${counter}-${pick(['', 'ü', '名'])}`;
  const operation = pick(['CREATE', 'CREATE', 'CREATE', 'UPDATE', 'UPDATE', 'UPDATE', 'DELETE', 'CONNECT']);
  const name = pick(names);
  const dryRun = rand() < 0.2;
  let object: unknown = workloadObject(name);
  let oldObject: unknown = null;
  if (operation === 'UPDATE') oldObject = oldObjectFor(object as Record<string, unknown>);
  if (operation === 'DELETE') {
    oldObject = object;
    object = null;
  }
  if (operation === 'CONNECT') object = { apiVersion: 'v1', kind: 'PodExecOptions', command: ['sh'] };
  const kind = (object as { kind?: unknown } | null)?.kind;
  return {
    uid,
    kind: {
      group: 'apps',
      version: 'v1',
      kind: typeof kind === 'string' && kind !== '' ? kind : 'Deployment',
    },
    resource: { group: 'apps', version: 'v1', resource: 'deployments' },
    subResource: pick([undefined, undefined, undefined, 'scale']),
    // Events of dryRun requests would name this; none may be recorded.
    name: dryRun ? `dryrun-${counter}` : pick([name, '', 'other']),
    namespace: pick(namespaces),
    operation,
    userInfo: pick([
      { username: 'alice', groups: ['dev'] },
      { username: ownUsername },
      undefined,
      { username: 'bob' },
      { username: 'system:serviceaccount:wave-system:wave-other', groups: null },
      { username: 'kubernetes-admin', groups: ['system:masters'], extra: { any: ['thing'] } },
    ]),
    object,
    oldObject,
    dryRun,
    options: pick([
      null,
      null,
      'x',
      { fieldManager: 'kubectl-client-side-apply' },
      { fieldManager: 'kubectl-client-side-apply' },
      { fieldManager: ownFieldManager },
      { fieldManager: 7 },
    ]),
  };
}

/** An opted-in Deployment whose configuration is all in namespace shop: what wave must stamp. */
function normalDeployment(name: string, podSpecValue: unknown): Record<string, unknown> {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, namespace: 'shop', annotations: { [optIn]: 'true' } },
    spec: {
      replicas: 1,
      selector: { matchLabels: { app: 'web' } },
      template: { metadata: { labels: { app: 'web' } }, spec: podSpecValue },
    },
  };
}

const normalPodSpec = {
  containers: [
    {
      name: 'web',
      image: 'web:1',
      envFrom: [{ configMapRef: { name: 'settings' } }],
      env: [{ name: 'PW', valueFrom: { secretKeyRef: { name: 'creds', key: 'password' } } }],
    },
  ],
  volumes: [{ name: 'files', configMap: { name: 'files', items: [{ key: 'a.txt', path: 'a.txt' }] } }],
};

/** The hash of normalPodSpec's configuration, written out from the contract's canonical form. */
const normalHash = createHash('sha256')
  .update(
    JSON.stringify({
      configMaps: { files: { 'a.txt': b64('A') }, settings: { LOG: b64('json'), MODE: b64('fast') } },
      secrets: { creds: { password: b64(secretValues[0] ?? '') } },
    }),
  )
  .digest('hex');

function createRequest(uid: string, object: Record<string, unknown>): Record<string, unknown> {
  return {
    uid,
    kind: { group: 'apps', version: 'v1', kind: 'Deployment' },
    name: '',
    namespace: 'shop',
    operation: 'CREATE',
    userInfo: { username: 'alice' },
    object,
    oldObject: null,
    dryRun: false,
  };
}

/**
 * An opted-in CREATE whose container args nest `depth` deep, written as text: deeper than JSON.stringify
 * and structuredClone go. Only status, uid and allowed are checked.
 */
function deepCase(uid: string, depth: number): Case {
  let open = '';
  let close = '';
  for (let i = 0; i < depth; i += 1) {
    open = (i % 2 === 0 ? '{"n":' : '[') + open;
    close += i % 2 === 0 ? '}' : ']';
  }
  const marker = 'DEEP-MARKER';
  const object = normalDeployment(uid, { containers: [{ name: 'web', args: marker }] });
  const text = JSON.stringify({
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: createRequest(uid, object),
  });
  return {
    name: `a CREATE of a template nested ${depth} deep`,
    body: text.replace(JSON.stringify(marker), `${open}"leaf"${close}`),
    kind: 'review',
    uid,
  };
}

function directedCases(): Case[] {
  const huge = normalDeployment('huge-env', {
    containers: [{ name: 'web', env: hugeEnv().concat(hugeEnv()) }],
  });
  const bigAnnotation = normalDeployment('big-annotation', normalPodSpec);
  (bigAnnotation.metadata as Record<string, Record<string, string>>).annotations = {
    [optIn]: 'true',
    big: 'ü'.repeat(1_500_000),
  };
  const deep = (name: string, depth: number) =>
    normalDeployment(name, { containers: [{ name: 'web', args: nested(depth) }] });
  return [
    reviewCase('a CREATE with 10,000 env entries', createRequest('huge-env', huge)),
    reviewCase('a CREATE of 3 MB', createRequest('big-annotation', bigAnnotation)),
    reviewCase('an UPDATE of a template nested 1,000 deep', {
      ...createRequest('deep', deep('deep', 1000)),
      operation: 'UPDATE',
      oldObject: deep('deep', 999),
    }),
    // Deeper than structuredClone goes (about 2,500 on Node 24): stamped, or failed open; never a 5xx.
    deepCase('deeper', 20_000),
  ];
}

function badCases(): Case[] {
  const cases: Case[] = [];
  for (let i = 0; i < 40; i += 1) {
    const text = JSON.stringify({
      apiVersion: 'admission.k8s.io/v1',
      kind: 'AdmissionReview',
      request: generatedRequest(),
    });
    cases.push({
      name: 'a truncated review',
      body: text.slice(0, Math.floor(rand() * text.length)),
      kind: 'not-json',
    });
  }
  const notReviews: unknown[] = [
    null,
    [],
    'AdmissionReview',
    {},
    { apiVersion: 'admission.k8s.io/v1beta1', kind: 'AdmissionReview', request: { uid: 'x' } },
    { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: null },
    { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { uid: '', operation: 'CREATE' } },
    {
      apiVersion: 'admission.k8s.io/v1',
      kind: 'AdmissionReview',
      request: { ...generatedRequest(), object: [] },
    },
    {
      apiVersion: 'admission.k8s.io/v1',
      kind: 'AdmissionReview',
      request: { ...generatedRequest(), kind: 'Deployment' },
    },
    {
      apiVersion: 'admission.k8s.io/v1',
      kind: 'AdmissionReview',
      request: { ...generatedRequest(), operation: 'PATCH' },
    },
  ];
  for (let i = 0; i < 4; i += 1) {
    for (const body of notReviews)
      cases.push({ name: 'JSON that is not a review', body: JSON.stringify(body), kind: 'not-a-review' });
  }
  return cases;
}

// ---------------------------------------------------------------------------------------------------
// Checking one answer against the contract.

const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** Whether the contract lets wave patch this request at all. */
function mayPatch(request: Record<string, unknown>): boolean {
  const object = request.object;
  if (request.operation !== 'CREATE' && request.operation !== 'UPDATE') return false;
  if (isRecord(request.userInfo) && request.userInfo.username === ownUsername) return false;
  if (isRecord(request.options) && request.options.fieldManager === ownFieldManager) return false;
  if (!isRecord(object) || typeof object.kind !== 'string' || !workloadKinds.has(object.kind)) return false;
  if (typeof object.apiVersion === 'string' && object.apiVersion !== 'apps/v1') return false;
  if (!isRecord(object.metadata) || !isRecord(object.metadata.annotations)) return false;
  if (object.metadata.annotations[optIn] !== 'true') return false;
  return isRecord(object.spec) && isRecord(object.spec.template);
}

/** The object without what wave may write: the hash annotation and the config-missing gate (and empties). */
function withoutWaveFields(object: unknown): unknown {
  if (!isRecord(object) || !isRecord(object.spec) || !isRecord(object.spec.template)) return object;
  const copy = structuredClone(object) as { spec: { template: Record<string, unknown> } };
  const tpl = copy.spec.template;
  const metadata = tpl.metadata;
  if (!isRecord(metadata)) delete tpl.metadata;
  else {
    if (!isRecord(metadata.annotations)) delete metadata.annotations;
    else {
      // eslint-disable-next-line @typescript-eslint/no-dynamic-delete -- a constant key
      delete metadata.annotations[hashAnnotation];
      if (Object.keys(metadata.annotations).length === 0) delete metadata.annotations;
    }
    if (Object.keys(metadata).length === 0) delete tpl.metadata;
  }
  // A gate list that is not a list may be replaced by one holding the gate.
  if (isRecord(tpl.spec) && !Array.isArray(tpl.spec.schedulingGates)) delete tpl.spec.schedulingGates;
  if (isRecord(tpl.spec) && Array.isArray(tpl.spec.schedulingGates)) {
    const others = (tpl.spec.schedulingGates as unknown[]).filter((g) => !(isRecord(g) && g.name === gate));
    if (others.length === 0) delete tpl.spec.schedulingGates;
    else tpl.spec.schedulingGates = others;
  }
  return copy;
}

interface Checked {
  readonly problem?: string;
  readonly patched?: unknown;
}

function check(c: Case, answer: Answer): Checked {
  const expected = c.kind === 'review' ? 200 : 400;
  if (answer.status !== expected)
    return { problem: `expected ${expected}, got ${answer.status}: ${answer.body.slice(0, 200)}` };
  let json: unknown;
  try {
    json = JSON.parse(answer.body);
  } catch {
    return { problem: `the answer is not JSON: ${answer.body.slice(0, 200)}` };
  }
  if (c.kind !== 'review') {
    const error = (json as { error?: unknown }).error;
    return typeof error === 'string' && error !== '' ? {} : { problem: 'a 400 without an error message' };
  }
  const { apiVersion, kind, response } = json as ReviewAnswer;
  if (apiVersion !== 'admission.k8s.io/v1' || kind !== 'AdmissionReview')
    return { problem: 'apiVersion/kind not echoed' };
  if (response === undefined) return { problem: 'no response field' };
  if (response.uid !== c.uid) return { problem: `uid ${String(response.uid)} instead of ${String(c.uid)}` };
  if (response.allowed !== true) return { problem: 'not allowed' };
  if (response.patch === undefined) return {};
  if (c.request === undefined) return { patched: 'not examined' };
  const request = c.request;
  if (!mayPatch(request)) return { problem: 'a patch for a request that is not an opted-in workload' };
  if (response.patchType !== 'JSONPatch' || typeof response.patch !== 'string')
    return { problem: 'a patch without patchType JSONPatch' };
  const ops = JSON.parse(Buffer.from(response.patch, 'base64').toString('utf8')) as Operation[];
  if (!Array.isArray(ops) || ops.length === 0) return { problem: 'an empty or non-array patch' };
  const outside = ops.find((op) => !op.path.startsWith('/spec/template/'));
  if (outside !== undefined)
    return { problem: `the patch touches ${outside.path}, outside the pod template` };
  const original = request.object;
  // Typed as always returning an error; it returns undefined for a valid patch.
  const invalid = jsonPatch.validate(ops, structuredClone(original)) as Error | undefined;
  if (invalid !== undefined) return { problem: `the patch does not validate: ${invalid.message}` };
  let patched: unknown;
  try {
    patched = jsonPatch.applyPatch(structuredClone(original), ops, true, true).newDocument;
  } catch (err) {
    return { problem: `the patch does not apply: ${err instanceof Error ? err.message : String(err)}` };
  }
  if (!isDeepStrictEqual(withoutWaveFields(patched), withoutWaveFields(original))) {
    const where = firstDifference(withoutWaveFields(original), withoutWaveFields(patched), '');
    return {
      problem: `the patch changes more than the hash annotation and the config-missing gate, at ${where} (patch ${JSON.stringify(ops).slice(0, 300)})`,
    };
  }
  // A garbage value the request carried may stay; one wave writes is a SHA-256.
  const hash = templateAnnotations(patched)?.[hashAnnotation];
  const changed = !isDeepStrictEqual(hash, templateAnnotations(original)?.[hashAnnotation]);
  if (changed && hash !== undefined && (typeof hash !== 'string' || !/^[0-9a-f]{64}$/.test(hash))) {
    return { problem: `the stamped hash ${JSON.stringify(hash)} is not lowercase hex SHA-256` };
  }
  return { patched };
}

/** The JSON Pointer of the first place two JSON values differ, for a readable failure. */
function firstDifference(a: unknown, b: unknown, path: string): string {
  if (isDeepStrictEqual(a, b)) return '(nowhere)';
  if (isRecord(a) && isRecord(b)) {
    for (const key of new Set([...Object.keys(a), ...Object.keys(b)])) {
      if (!isDeepStrictEqual(a[key], b[key])) return firstDifference(a[key], b[key], `${path}/${key}`);
    }
  }
  if (Array.isArray(a) && Array.isArray(b) && a.length === b.length) {
    const i = a.findIndex((item, index) => !isDeepStrictEqual(item, b[index]));
    return firstDifference(a[i], b[i], `${path}/${i}`);
  }
  const show = (v: unknown) => (JSON.stringify(v) as string | undefined)?.slice(0, 80) ?? 'nothing';
  return `${path}: ${show(a)} became ${show(b)}`;
}

function templateAnnotations(object: unknown): Record<string, unknown> | undefined {
  if (!isRecord(object) || !isRecord(object.spec) || !isRecord(object.spec.template)) return undefined;
  const metadata = object.spec.template.metadata;
  return isRecord(metadata) && isRecord(metadata.annotations) ? metadata.annotations : undefined;
}

function templateGates(object: unknown): unknown[] {
  if (!isRecord(object) || !isRecord(object.spec) || !isRecord(object.spec.template)) return [];
  const spec = object.spec.template.spec;
  return isRecord(spec) && Array.isArray(spec.schedulingGates) ? (spec.schedulingGates as unknown[]) : [];
}

/** wave_admission_total by decision, and wave_admission_errors_total, as /metrics shows them. */
function admissionCounts(text: string): { byDecision: Map<string, number>; total: number; errors: number } {
  const byDecision = new Map<string, number>();
  let total = 0;
  let errors = 0;
  for (const line of text.split('\n')) {
    const value = Number(line.slice(line.lastIndexOf(' ') + 1));
    if (line.startsWith('wave_admission_total{')) {
      const decision = /[{,]decision="([a-z]+)"/.exec(line)?.[1] ?? '?';
      byDecision.set(decision, (byDecision.get(decision) ?? 0) + value);
      total += value;
    } else if (line.startsWith('wave_admission_errors_total{')) {
      errors += value;
    }
  }
  return { byDecision, total, errors };
}

// ---------------------------------------------------------------------------------------------------

t.test(
  'odd but well-formed reviews through the real admission path: allowed, clean patches, no 5xx',
  async (t) => {
    const { ca, serving } = localServingPair();
    const logLines: string[] = [];
    const logger = createLogger({
      level: 'info',
      destination: { write: (line: string) => void logLines.push(line) },
    });
    const metrics = new Metrics({ defaultMetrics: false });
    const admit = createAdmit({ readChildren, events, hasher: sha256Hex, ownUsername, ownFieldManager });
    const app = buildWebhookServer({
      https: { cert: serving.certPem, key: serving.keyPem },
      logger,
      metrics,
      admit,
    });
    const health = buildHealthServer({ logger, metrics, checks: [] });
    const agent = new https.Agent({ keepAlive: true, maxSockets: 8, ca: ca.certPem });
    t.teardown(async () => {
      agent.destroy();
      await app.close();
      await health.close();
    });
    const port = Number(new URL(await app.listen({ host: '127.0.0.1', port: 0 })).port);
    const scrape = async () =>
      admissionCounts((await health.inject({ method: 'GET', url: '/metrics' })).body);
    const before = await scrape();

    const cases: Case[] = [];
    for (let i = 0; i < 950; i += 1) cases.push(reviewCase('a generated review', generatedRequest()));
    cases.push(...directedCases(), ...badCases());
    t.ok(cases.length >= 1000, `${cases.length} requests (seed ${seed})`);

    const failures: string[] = [];
    const statuses = new Map<number, number>();
    const patchedByUid = new Map<string, unknown>();
    await inPool(cases, 8, async (c) => {
      let answer: Answer;
      try {
        answer = await send(agent, port, c.body);
      } catch (err) {
        failures.push(`${c.name}: ${err instanceof Error ? err.message : String(err)}`);
        return;
      }
      statuses.set(answer.status, (statuses.get(answer.status) ?? 0) + 1);
      const checked = check(c, answer);
      if (checked.problem !== undefined) failures.push(`${c.name} ${c.uid ?? ''}: ${checked.problem}`);
      if (checked.patched !== undefined && c.uid !== undefined) patchedByUid.set(c.uid, checked.patched);
    });

    t.same(failures.slice(0, 10), [], `every answer is as the contract says (${failures.length} not)`);
    t.notOk(
      [...statuses.keys()].some((status) => status >= 500),
      `no 5xx (statuses: ${JSON.stringify([...statuses])})`,
    );
    const reviews = cases.filter((c) => c.kind === 'review').length;
    const notReviews = cases.filter((c) => c.kind === 'not-a-review').length;
    t.equal(statuses.get(200), reviews, 'every review was answered 200');
    t.ok(patchedByUid.size >= 80, `${patchedByUid.size} reviews came back with a patch that applies cleanly`);

    t.test('the directed odd cases got the answer an opted-in workload gets', (t) => {
      t.equal(
        templateAnnotations(patchedByUid.get('huge-env'))?.[hashAnnotation] !== undefined,
        true,
        '10,000 env entries: stamped',
      );
      t.equal(
        templateAnnotations(patchedByUid.get('big-annotation'))?.[hashAnnotation],
        normalHash,
        '3 MB object: stamped with the right hash',
      );
      t.ok(patchedByUid.has('deep'), 'a template nested 1,000 deep: a changed template is stamped');
      t.end();
    });

    t.test('the admission metrics moved by exactly what was sent', async (t) => {
      const after = await scrape();
      const delta = (decision: string) =>
        (after.byDecision.get(decision) ?? 0) - (before.byDecision.get(decision) ?? 0);
      t.equal(
        after.total - before.total,
        reviews + notReviews,
        'one count per review and per JSON body that is not one; unparsable bodies never reach the route',
      );
      t.equal(delta('invalid'), notReviews, 'decision="invalid" counts the bodies that are not reviews');
      t.ok(rejectedReads > 0, `${rejectedReads} reads of the "flaky" namespace failed`);
      // The 20,000-deep template is the one request the core may fail on (and then it fails open).
      const deepFailedOpen = patchedByUid.has('deeper') ? 0 : 1;
      t.equal(
        delta('error'),
        rejectedReads + deepFailedOpen,
        `decision="error" counts the failed reads${deepFailedOpen === 1 ? ' and the 20,000-deep template' : ''}: the core failed on nothing else`,
      );
      t.equal(after.errors - before.errors, delta('error'), 'wave_admission_errors_total agrees');
      for (const decision of ['stamp', 'hold', 'keep', 'skip']) {
        t.ok(delta(decision) > 0, `the generator reached decision ${decision} (${delta(decision)} times)`);
      }
    });

    t.test('Events: recorded for real requests only, and never with a Secret value', (t) => {
      const reasons = new Set(recorded.map((r) => r.event.reason));
      t.same([...reasons].sort(), ['ConfigMissing', 'OptInNearMiss'], 'both kinds of warning were recorded');
      t.same(
        recorded.filter((r) => r.target.name.startsWith('dryrun-')).map((r) => r.target.name),
        [],
        'none for a dryRun request',
      );
      const leaks = recorded.filter((r) =>
        secretValues.some((v) => r.event.message.includes(v) || r.event.message.includes(b64(v))),
      );
      t.equal(leaks.length, 0, 'no Secret value in any Event');
      t.end();
    });

    t.test('the log: one line per review, never a Secret value', (t) => {
      const entries = logLines.map((line) => JSON.parse(line) as { msg?: string });
      const perReview = entries.filter((e) => e.msg === 'admission' || e.msg === 'admission failed open');
      t.equal(perReview.length, reviews, 'one admission line per review');
      const text = logLines.join('');
      t.notOk(
        secretValues.some((v) => text.includes(v) || text.includes(b64(v))),
        'no Secret value in the log',
      );
      t.end();
    });

    t.test('afterwards a normal request is stamped with the hash of its configuration', async (t) => {
      const object = normalDeployment('after-the-storm', normalPodSpec);
      const c = reviewCase('after the storm', createRequest('after-the-storm', object));
      const checked = check(c, await send(agent, port, c.body));
      t.equal(checked.problem, undefined, 'a clean answer');
      t.equal(
        templateAnnotations(checked.patched)?.[hashAnnotation],
        normalHash,
        'the hash of settings, files/a.txt and creds/password',
      );
      t.same(templateGates(checked.patched), [], 'not held');
    });

    t.test(
      'and a unicode-named workload missing a required ConfigMap is held, with an Event naming it',
      async (t) => {
        const podSpecValue = {
          containers: [{ name: 'web', envFrom: [{ configMapRef: { name: 'missing-cm' } }] }],
        };
        const object = normalDeployment('ünïcødé-名前', podSpecValue);
        const c = reviewCase('held', createRequest('held-uid', object));
        const count = recorded.length;
        const checked = check(c, await send(agent, port, c.body));
        t.equal(checked.problem, undefined, 'a clean answer');
        t.same(templateGates(checked.patched), [{ name: gate }], 'the config-missing gate is set');
        t.equal(templateAnnotations(checked.patched)?.[hashAnnotation], undefined, 'no hash');
        const event = recorded.slice(count).find((r) => r.target.name === 'ünïcødé-名前');
        t.equal(event?.event.reason, 'ConfigMissing', 'a ConfigMissing Event on the workload');
        t.match(event?.event.message ?? '', /missing-cm/, 'which names the missing ConfigMap');
      },
    );
  },
);
