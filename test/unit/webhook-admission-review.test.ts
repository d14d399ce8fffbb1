import t from 'tap';
import {
  allowed,
  allowedWithPatch,
  objectName,
  parseAdmissionReview,
} from '../../src/webhook/admission-review.ts';
import type { JsonPatchOp } from '../../src/webhook/admission-review.ts';

function review(request: Record<string, unknown>): Record<string, unknown> {
  return {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: '705ab4f5-6393-11e8-b7cc-42010a800002',
      kind: { group: 'apps', version: 'v1', kind: 'Deployment' },
      resource: { group: 'apps', version: 'v1', resource: 'deployments' },
      name: 'web',
      namespace: 'shop',
      operation: 'UPDATE',
      userInfo: { username: 'admin', groups: ['system:masters'] },
      object: { metadata: { name: 'web' } },
      oldObject: { metadata: { name: 'web' } },
      dryRun: false,
      ...request,
    },
  };
}

t.test('odd request.options are read as no field manager, never as a bad review', (t) => {
  for (const options of [null, 'x', [], { fieldManager: 7 }]) {
    const result = parseAdmissionReview(review({ options }));
    t.equal(result.ok && result.request.fieldManager, '', JSON.stringify(options));
  }
  t.end();
});

function errorOf(body: unknown): string {
  const result = parseAdmissionReview(body);
  return result.ok ? '(parsed)' : result.error;
}

t.test('a real AdmissionReview v1 parses into the fields wave reads', (t) => {
  const result = parseAdmissionReview(
    review({ dryRun: true, options: { kind: 'UpdateOptions', fieldManager: 'wave' } }),
  );
  t.ok(result.ok);
  if (!result.ok) return t.end();
  t.same(result.request, {
    uid: '705ab4f5-6393-11e8-b7cc-42010a800002',
    kind: { group: 'apps', version: 'v1', kind: 'Deployment' },
    operation: 'UPDATE',
    name: 'web',
    namespace: 'shop',
    userInfo: { username: 'admin', groups: ['system:masters'] },
    object: { metadata: { name: 'web' } },
    oldObject: { metadata: { name: 'web' } },
    dryRun: true,
    fieldManager: 'wave',
  });
  t.end();
});

t.test('fields the apiserver may omit read as empty', (t) => {
  const body = review({});
  const request = body.request as Record<string, unknown>;
  for (const key of ['name', 'namespace', 'oldObject', 'dryRun', 'userInfo'])
    Reflect.deleteProperty(request, key);
  request.object = null;
  const result = parseAdmissionReview(body);
  t.ok(result.ok);
  if (!result.ok) return t.end();
  t.equal(result.request.name, '');
  t.equal(result.request.namespace, '');
  t.equal(result.request.object, null);
  t.equal(result.request.oldObject, null);
  t.equal(result.request.dryRun, false);
  t.same(result.request.userInfo, { username: '', groups: [] });
  t.end();
});

t.test('each way of not being an AdmissionReview gets a precise message', (t) => {
  const cases: [unknown, RegExp][] = [
    [undefined, /the body is empty/],
    [[], /the body is an array, not an object/],
    ['text', /the body is a string/],
    [42, /the body is a number/],
    [null, /the body is null/],
    [
      { ...review({}), apiVersion: 'admission.k8s.io/v1beta1' },
      /apiVersion must be "admission.k8s.io\/v1" \(got "admission.k8s.io\/v1beta1"\)/,
    ],
    [
      { ...review({}), kind: 'ConversionReview' },
      /kind must be "AdmissionReview" \(got "ConversionReview"\)/,
    ],
    [
      { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview' },
      /request must be an object \(got nothing\)/,
    ],
    [
      { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: [] },
      /request must be an object \(got an array\)/,
    ],
    [review({ uid: '' }), /request.uid must be a non-empty string/],
    [review({ uid: 7 }), /request.uid must be a non-empty string \(got a number\)/],
    [
      review({ operation: 'PATCH' }),
      /request.operation must be one of CREATE, UPDATE, DELETE, CONNECT \(got a string\)/,
    ],
    [review({ kind: 'Deployment' }), /request.kind must be an object/],
    [review({ kind: { group: 'apps', version: 'v1', kind: '' } }), /request.kind must be/],
    [review({ name: 5 }), /request.name must be a string/],
    [review({ namespace: {} }), /request.namespace must be a string \(got an object\)/],
    [review({ object: [] }), /request.object must be an object \(got an array\)/],
    [review({ oldObject: 'x' }), /request.oldObject must be an object/],
    [review({ dryRun: 'true' }), /request.dryRun must be a boolean/],
    [review({ userInfo: 'admin' }), /request.userInfo must be an object/],
    [review({ userInfo: { username: 1 } }), /request.userInfo.username must be a string/],
    [
      review({ userInfo: { username: 'a', groups: [1] } }),
      /request.userInfo.groups must be an array of strings/,
    ],
  ];
  for (const [body, message] of cases) {
    t.match(errorOf(body), message, message.source);
    t.match(errorOf(body), /^not an AdmissionReview v1: /);
  }
  t.end();
});

t.test('error messages never quote request content', (t) => {
  t.notMatch(errorOf(review({ object: ['s3cr3t-value'] })), /s3cr3t/);
  t.notMatch(errorOf(review({ operation: 's3cr3t-value' })), /s3cr3t/);
  t.notMatch(errorOf(review({ userInfo: { username: ['s3cr3t-value'] } })), /s3cr3t/);
  t.match(
    errorOf({ apiVersion: 'x'.repeat(500) }),
    /apiVersion must be "admission.k8s.io\/v1" \(got a string\)$/,
  );
  t.end();
});

t.test('allowed echoes apiVersion, kind and uid and carries no patch', (t) => {
  t.same(allowed('u-1'), {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    response: { uid: 'u-1', allowed: true },
  });
  t.end();
});

t.test('a patch is base64 of the JSON patch text and decodes to the same operations', (t) => {
  const ops: JsonPatchOp[] = [
    { op: 'add', path: '/spec/template/metadata/annotations/wave.pusher.com~1config-hash', value: 'ab12' },
    { op: 'remove', path: '/spec/template/spec/schedulingGates/0' },
    { op: 'replace', path: '/metadata/labels/ünïcode', value: { nested: ['é', 1, null] } },
  ];
  const response = allowedWithPatch('u-2', ops).response;
  t.equal(response.patchType, 'JSONPatch');
  t.equal(response.allowed, true);
  t.equal(response.uid, 'u-2');
  t.match(response.patch, /^[A-Za-z0-9+/]+=*$/);
  t.same(JSON.parse(Buffer.from(response.patch ?? '', 'base64').toString('utf8')), ops);
  t.end();
});

t.test('an empty patch is a plain allow', (t) => {
  t.same(allowedWithPatch('u-3', []), allowed('u-3'));
  t.end();
});

t.test('the logged name falls back to metadata.name, then generateName', (t) => {
  const parse = (request: Record<string, unknown>) => {
    const result = parseAdmissionReview(review(request));
    if (!result.ok) throw new Error(result.error);
    return result.request;
  };
  t.equal(objectName(parse({ name: 'web' })), 'web');
  t.equal(objectName(parse({ name: '', object: { metadata: { name: 'api' } } })), 'api');
  t.equal(objectName(parse({ name: '', object: { metadata: { generateName: 'job-' } } })), 'job-*');
  t.equal(objectName(parse({ name: '', object: { metadata: null } })), '');
  t.end();
});
