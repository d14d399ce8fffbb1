import t from 'tap';
import type { Test } from 'tap';
import jsonPatch from 'fast-json-patch';
import { decideAdmission, needsFreshChildren } from '../../src/core/admission.ts';
import type { AdmissionFacts, AdmissionInput } from '../../src/core/admission.ts';
import { childLookupFrom } from '../../src/core/objects.ts';
import type { ChildData, ChildLookup } from '../../src/core/objects.ts';
import { expectedVectors, loadVector, sha256 } from './support/vectors.ts';
import { deploymentObject, podSpec } from './support/workloads.ts';
import type { DeploymentOptions } from './support/workloads.ts';

const optIn = { 'wave.pusher.com/update-on-config-change': 'true' };
const hashKey = 'wave.pusher.com/config-hash';
const gate = { name: 'wave.pusher.com/config-missing' };

/** Consumes ConfigMap shop/prices key eur. */
const pricesSpec = podSpec({
  env: [{ name: 'EUR', valueFrom: { configMapKeyRef: { name: 'prices', key: 'eur' } } }],
});
const prices: ChildData = { kind: 'ConfigMap', namespace: 'shop', name: 'prices', data: { eur: '1.00' } };
const pricesHash = sha256(
  `{"configMaps":{"prices":{"eur":"${Buffer.from('1.00').toString('base64')}"}},"secrets":{}}`,
);

function web(options: DeploymentOptions = {}): Record<string, unknown> {
  return deploymentObject({ annotations: optIn, podSpec: pricesSpec, ...options });
}

function template(object: unknown): Record<string, unknown> {
  return ((object as Record<string, unknown>)['spec'] as Record<string, unknown>)['template'] as Record<
    string,
    unknown
  >;
}

function request(facts: Partial<AdmissionInput> & { object: unknown }): AdmissionInput {
  return {
    operation: 'CREATE',
    dryRun: false,
    fromOwnServiceAccount: false,
    children: childLookupFrom([prices]),
    hasher: sha256,
    ...facts,
  };
}

/** A lookup that fails the test when consulted: some decisions must never read configuration. */
function untouchable(t: Test): ChildLookup {
  return () => {
    t.fail('children were looked up');
    return undefined;
  };
}

function patched(
  object: Record<string, unknown>,
  patch: readonly jsonPatch.Operation[],
): Record<string, unknown> {
  return jsonPatch.applyPatch(structuredClone(object), [...patch], true, false).newDocument;
}

t.test('a workload that has not opted in is left alone', (t) => {
  const decision = decideAdmission(
    request({ object: deploymentObject({ podSpec: pricesSpec }), children: untouchable(t) }),
  );
  t.strictSame(decision, { allowed: true, patch: [], decision: 'skip', reason: 'not opted in', events: [] });
  const notTrue = decideAdmission(
    request({ object: web({ annotations: { 'wave.pusher.com/update-on-config-change': 'false' } }) }),
  );
  t.strictSame([notTrue.decision, notTrue.events], ['skip', []]);
  t.end();
});

t.test('a near miss of the opt-in value is skipped with a warning Event', (t) => {
  for (const value of ['True', 'TRUE', 'yes', '1', 'on', ' true', 't', 'Enable', '\u0085y\u3000']) {
    const decision = decideAdmission(
      request({ object: web({ annotations: { 'wave.pusher.com/update-on-config-change': value } }) }),
    );
    t.equal(decision.decision, 'skip', value);
    t.strictSame(decision.patch, []);
    t.match(decision.reason, /^not opted in: /);
    t.strictSame(decision.events, [
      {
        type: 'Warning',
        reason: 'OptInNearMiss',
        message: `wave.pusher.com/update-on-config-change is ${JSON.stringify(value)}; wave opts in only on exactly "true"`,
      },
    ]);
  }
  t.end();
});

t.test('near misses are trimmed as CEL trims, which keeps U+FEFF', (t) => {
  // CEL's trim() keeps U+FEFF, which JavaScript's trim() strips: the apiserver never sends these to wave.
  const cases: [label: string, value: string][] = [
    ['U+FEFF true', '\ufefftrue'],
    ['yes U+FEFF', 'yes\ufeff'],
  ];
  for (const [label, value] of cases) {
    const decision = decideAdmission(
      request({ object: web({ annotations: { 'wave.pusher.com/update-on-config-change': value } }) }),
    );
    t.strictSame([decision.reason, decision.events], ['not opted in', []], label);
  }
  t.end();
});

t.test('the opt-in annotation on the pod template alone opts the workload in', (t) => {
  const decision = decideAdmission(request({ object: web({ annotations: {}, templateAnnotations: optIn }) }));
  t.equal(decision.decision, 'stamp');
  t.same(decision.events, [], 'no near miss');
  t.end();
});

t.test('a dryRun near miss records no Event', (t) => {
  const object = web({ annotations: { 'wave.pusher.com/update-on-config-change': 'yes' } });
  t.strictSame(decideAdmission(request({ object, dryRun: true })).events, []);
  t.end();
});

t.test("a request from wave's own service account passes unchanged", (t) => {
  const decision = decideAdmission(
    request({ object: web(), fromOwnServiceAccount: true, children: untouchable(t) }),
  );
  t.strictSame(decision, {
    allowed: true,
    patch: [],
    decision: 'skip',
    reason: 'request from wave itself: its write passes unchanged',
    events: [],
  });
  t.strictSame(needsFreshChildren(request({ object: web(), fromOwnServiceAccount: true })), {
    needed: false,
  });
  t.end();
});

t.test('other operations, subresources, other kinds and malformed objects are skipped with a reason', (t) => {
  const cases: [Partial<AdmissionFacts> & { object: unknown }, string][] = [
    [{ operation: 'DELETE', object: null, oldObject: web() }, 'operation DELETE is not handled'],
    [
      { operation: 'UPDATE', object: web(), oldObject: web(), subResource: 'scale' },
      'subresource scale is not handled',
    ],
    [{ object: { ...web(), kind: 'ReplicaSet' } }, 'kind ReplicaSet is not a workload kind wave manages'],
    [{ object: 'not an object' }, 'object is not a JSON object'],
    [{ object: { ...web(), spec: null } }, 'Deployment web has no pod template at spec.template'],
  ];
  for (const [facts, reason] of cases) {
    const decision = decideAdmission(request({ children: untouchable(t), ...facts }));
    t.strictSame(decision, { allowed: true, patch: [], decision: 'skip', reason, events: [] });
  }
  t.end();
});

t.test('no odd input makes a decision throw', (t) => {
  const odd: unknown[] = [
    undefined,
    [],
    42,
    { kind: 'Deployment' },
    { kind: 'Deployment', metadata: null, spec: { template: {} } },
    { ...web(), metadata: { namespace: 'shop', annotations: optIn } },
    {
      ...web(),
      spec: { template: { metadata: 'x', spec: { containers: 'x', volumes: [null], schedulingGates: 7 } } },
    },
    { ...web(), spec: { template: { metadata: { annotations: null }, spec: null } } },
  ];
  for (const object of odd) {
    for (const operation of ['CREATE', 'UPDATE']) {
      for (const oldObject of [undefined, null, web(), object]) {
        const decision = decideAdmission(
          request({ object, oldObject, operation, children: () => undefined }),
        );
        t.equal(decision.allowed, true);
      }
    }
  }
  t.end();
});

t.test('at CREATE a workload whose configuration exists is stamped with its hash', (t) => {
  const object = web();
  const decision = decideAdmission(request({ object }));
  t.equal(decision.decision, 'stamp');
  t.equal(decision.reason, `stamped hash ${pricesHash.slice(0, 12)}…`);
  t.strictSame(decision.patch, [
    { op: 'add', path: '/spec/template/metadata/annotations', value: { [hashKey]: pricesHash } },
  ]);
  t.strictSame(decision.events, []);
  t.end();
});

t.test('the hash joins an existing annotations map with one escaped add', (t) => {
  const object = web({ templateAnnotations: { team: 'shop' } });
  t.strictSame(decideAdmission(request({ object })).patch, [
    {
      op: 'add',
      path: '/spec/template/metadata/annotations/wave.pusher.com~1config-hash',
      value: pricesHash,
    },
  ]);
  t.end();
});

t.test('a stale hash is replaced; a current one needs no patch', (t) => {
  const stale = decideAdmission(request({ object: web({ templateAnnotations: { [hashKey]: 'stale' } }) }));
  t.strictSame(stale.patch, [
    {
      op: 'replace',
      path: '/spec/template/metadata/annotations/wave.pusher.com~1config-hash',
      value: pricesHash,
    },
  ]);
  const current = decideAdmission(
    request({ object: web({ templateAnnotations: { [hashKey]: pricesHash } }) }),
  );
  t.strictSame(
    [current.decision, current.patch, current.reason],
    ['stamp', [], `hash ${pricesHash.slice(0, 12)}… already current`],
  );
  t.end();
});

t.test('the stamped hash is the vectors hash', (t) => {
  const expected = expectedVectors();
  for (const file of Object.keys(expected)) {
    const { object, lookup } = loadVector(file);
    const decision = decideAdmission(request({ object, children: lookup }));
    const hash = expected[file]?.configHash;
    if (hash === null || hash === undefined) {
      t.equal(decision.decision, 'hold', file);
    } else {
      t.equal(decision.decision, 'stamp', file);
      const annotations = (template(patched(object, decision.patch))['metadata'] as Record<string, unknown>)[
        'annotations'
      ];
      t.equal((annotations as Record<string, string>)[hashKey], hash, file);
    }
  }
  t.end();
});

t.test(
  'at CREATE with configuration missing the workload is held by a scheduling gate, without a hash',
  (t) => {
    const object = web({ templateAnnotations: { [hashKey]: 'copied-from-elsewhere' } });
    const decision = decideAdmission(
      request({ object, children: childLookupFrom([{ ...prices, data: { usd: '1' } }]) }),
    );
    t.equal(decision.decision, 'hold');
    t.equal(decision.reason, 'held: ConfigMap shop/prices is missing key eur');
    t.strictSame(decision.events, [
      {
        type: 'Warning',
        reason: 'ConfigMissing',
        message: 'ConfigMap shop/prices is missing key eur; the Deployment is held',
      },
    ]);
    t.strictSame(decision.patch, [
      { op: 'add', path: '/spec/template/spec/schedulingGates', value: [gate] },
      { op: 'remove', path: '/spec/template/metadata/annotations' },
    ]);
    t.end();
  },
);

t.test('a held workload gets its gate after the gates it already has', (t) => {
  const object = web({ podSpec: { ...pricesSpec, schedulingGates: [{ name: 'example.com/quota' }] } });
  const decision = decideAdmission(request({ object, children: () => undefined }));
  t.strictSame(decision.patch, [{ op: 'add', path: '/spec/template/spec/schedulingGates/1', value: gate }]);
  t.match(decision.events[0]?.message, 'ConfigMap shop/prices is missing; the Deployment is held');
  t.end();
});

t.test('a dryRun CREATE is answered the same way, without Events', (t) => {
  const live = decideAdmission(request({ object: web(), children: () => undefined }));
  const dry = decideAdmission(request({ object: web(), children: () => undefined, dryRun: true }));
  t.strictSame(dry.patch, live.patch);
  t.equal(dry.decision, 'hold');
  t.strictSame(dry.events, []);
  t.equal(live.events.length, 1);
  t.end();
});

t.test('Events name what is missing, never a value', (t) => {
  const spec = podSpec({
    env: [{ name: 'P', valueFrom: { secretKeyRef: { name: 'db', key: 'password' } } }],
  });
  const secret: ChildData = {
    kind: 'Secret',
    namespace: 'shop',
    name: 'db',
    data: { user: Buffer.from('hunter2').toString('base64') },
  };
  const decision = decideAdmission(
    request({ object: web({ podSpec: spec }), children: childLookupFrom([secret]) }),
  );
  t.equal(decision.events[0]?.message, 'Secret shop/db is missing key password; the Deployment is held');
  t.notMatch(JSON.stringify(decision), /hunter2|aHVudGVyMg/);
  t.end();
});

t.test('when configuration exists at CREATE the gate goes and the hash comes in one patch', (t) => {
  const object = web({ podSpec: { ...pricesSpec, schedulingGates: [gate] } });
  const decision = decideAdmission(request({ object }));
  t.equal(decision.decision, 'stamp');
  t.equal(decision.reason, `released the config-missing gate and stamped hash ${pricesHash.slice(0, 12)}…`);
  const after = template(patched(object, decision.patch));
  t.equal((after['spec'] as Record<string, unknown>)['schedulingGates'], undefined);
  t.equal((after['metadata'] as { annotations: Record<string, string> }).annotations[hashKey], pricesHash);
  t.end();
});

t.test('an UPDATE that leaves the pod template alone keeps the hash without reading configuration', (t) => {
  const oldObject = web({ templateAnnotations: { [hashKey]: 'old-hash' } });
  const object = structuredClone(oldObject);
  (object['spec'] as Record<string, unknown>)['replicas'] = 5;
  (object['metadata'] as Record<string, unknown>)['labels'] = { tier: 'front' };
  const facts = { operation: 'UPDATE', object, oldObject };
  t.strictSame(needsFreshChildren(request(facts)), { needed: false });
  const decision = decideAdmission(request({ ...facts, children: untouchable(t) }));
  t.strictSame(decision, {
    allowed: true,
    patch: [],
    decision: 'keep',
    reason: 'pod template unchanged: kept hash old-hash…',
    events: [],
  });
  t.end();
});

t.test('a re-apply that dropped the hash annotation gets the old hash back', (t) => {
  const oldObject = web({ templateAnnotations: { [hashKey]: 'old-hash', team: 'shop' } });
  const object = web({ templateAnnotations: { team: 'shop' } });
  const decision = decideAdmission(
    request({ operation: 'UPDATE', object, oldObject, children: untouchable(t) }),
  );
  t.equal(decision.decision, 'keep');
  t.equal(decision.reason, 'pod template unchanged: restored hash old-hash…');
  t.strictSame(decision.patch, [
    {
      op: 'add',
      path: '/spec/template/metadata/annotations/wave.pusher.com~1config-hash',
      value: 'old-hash',
    },
  ]);
  t.end();
});

t.test('a re-apply of a held workload that dropped the gate gets the gate back', (t) => {
  const oldObject = web({ podSpec: { ...pricesSpec, schedulingGates: [gate] } });
  const object = web();
  const decision = decideAdmission(
    request({ operation: 'UPDATE', object, oldObject, children: untouchable(t) }),
  );
  t.equal(decision.decision, 'keep');
  t.equal(decision.reason, 'pod template unchanged: no hash to keep and restored the config-missing gate');
  t.strictSame(decision.patch, [{ op: 'add', path: '/spec/template/spec/schedulingGates', value: [gate] }]);
  t.end();
});

t.test('an UPDATE that only sets a different hash does not start a rollout', (t) => {
  const oldObject = web({ templateAnnotations: { [hashKey]: 'old-hash' } });
  const object = web({ templateAnnotations: { [hashKey]: 'someone-elses' } });
  const decision = decideAdmission(
    request({ operation: 'UPDATE', object, oldObject, children: untouchable(t) }),
  );
  t.strictSame(decision.patch, [
    {
      op: 'replace',
      path: '/spec/template/metadata/annotations/wave.pusher.com~1config-hash',
      value: 'old-hash',
    },
  ]);
  t.end();
});

t.test('an UPDATE that changes the pod template is stamped with the fresh hash', (t) => {
  const oldObject = web({ templateAnnotations: { [hashKey]: 'old-hash' } });
  const object = web({ templateAnnotations: { [hashKey]: 'old-hash' } });
  (template(object)['spec'] as { containers: Record<string, unknown>[] }).containers.forEach((c) => {
    c['image'] = 'web:2';
  });
  const fresh = needsFreshChildren(request({ operation: 'UPDATE', object, oldObject }));
  t.strictSame(fresh, { needed: true, children: [{ kind: 'ConfigMap', namespace: 'shop', name: 'prices' }] });
  const decision = decideAdmission(request({ operation: 'UPDATE', object, oldObject }));
  t.equal(decision.decision, 'stamp');
  t.strictSame(decision.patch, [
    {
      op: 'replace',
      path: '/spec/template/metadata/annotations/wave.pusher.com~1config-hash',
      value: pricesHash,
    },
  ]);
  t.end();
});

t.test(
  'an UPDATE that changes the template while configuration is missing keeps the old hash and adds no gate',
  (t) => {
    const oldObject = web({ templateAnnotations: { [hashKey]: 'old-hash' } });
    const object = web({ templateAnnotations: { restartedAt: 'now' } });
    const decision = decideAdmission(
      request({ operation: 'UPDATE', object, oldObject, children: () => undefined }),
    );
    t.equal(decision.decision, 'keep');
    t.equal(decision.reason, 'ConfigMap shop/prices is missing: the Deployment keeps config hash old-hash…');
    t.strictSame(decision.patch, [
      {
        op: 'add',
        path: '/spec/template/metadata/annotations/wave.pusher.com~1config-hash',
        value: 'old-hash',
      },
    ]);
    t.strictSame(decision.events, [
      {
        type: 'Warning',
        reason: 'ConfigMissing',
        message: 'ConfigMap shop/prices is missing; the Deployment keeps config hash old-hash…',
      },
    ]);
    t.end();
  },
);

t.test('a held workload whose template changes while configuration is still missing stays held', (t) => {
  const oldObject = web({ podSpec: { ...pricesSpec, schedulingGates: [gate] } });
  const object = web({
    podSpec: { ...pricesSpec, schedulingGates: [gate] },
    templateAnnotations: { v: '2' },
  });
  const decision = decideAdmission(
    request({ operation: 'UPDATE', object, oldObject, children: () => undefined }),
  );
  t.equal(decision.decision, 'hold');
  t.strictSame(decision.patch, []);
  t.equal(decision.events[0]?.message, 'ConfigMap shop/prices is missing; the Deployment stays held');
  t.end();
});

t.test('an UPDATE without its old object is treated as a template change', (t) => {
  const decision = decideAdmission(request({ operation: 'UPDATE', object: web() }));
  t.equal(decision.decision, 'stamp');
  const missing = decideAdmission(request({ operation: 'UPDATE', object: web(), children: () => undefined }));
  t.strictSame([missing.decision, missing.patch], ['keep', []], 'no gate on UPDATE');
  t.equal(
    missing.events[0]?.message,
    'ConfigMap shop/prices is missing; the Deployment gets no config hash until then',
  );
  t.end();
});

t.test(
  'fresh children are wanted only for CREATE and template-changing UPDATE of opted-in workloads',
  (t) => {
    t.strictSame(needsFreshChildren(request({ object: web() })), {
      needed: true,
      children: [{ kind: 'ConfigMap', namespace: 'shop', name: 'prices' }],
    });
    t.strictSame(
      needsFreshChildren(request({ object: deploymentObject() })),
      { needed: false },
      'not opted in',
    );
    t.strictSame(needsFreshChildren(request({ operation: 'DELETE', object: web() })), { needed: false });
    t.strictSame(needsFreshChildren(request({ operation: 'UPDATE', object: web(), oldObject: web() })), {
      needed: false,
    });
    t.end();
  },
);

t.test('a CREATE whose object has no namespace takes the request namespace', (t) => {
  const object = web();
  delete (object['metadata'] as Record<string, unknown>)['namespace'];
  t.strictSame(needsFreshChildren({ ...request({ object }), namespace: 'shop' }), {
    needed: true,
    children: [{ kind: 'ConfigMap', namespace: 'shop', name: 'prices' }],
  });
  t.equal(decideAdmission({ ...request({ object }), namespace: 'shop' }).decision, 'stamp');
  t.end();
});

t.test("releasing the gate leaves other controllers' gates in place", (t) => {
  const other = { name: 'example.com/quota' };
  const object = web({ podSpec: { ...pricesSpec, schedulingGates: [gate, other] } });
  const decision = decideAdmission(request({ object }));
  const after = template(patched(object, decision.patch));
  t.strictSame((after['spec'] as Record<string, unknown>)['schedulingGates'], [other]);
  t.end();
});

t.test('an UPDATE that only adds the config-missing gate does not hold a running workload', (t) => {
  const oldObject = web({ templateAnnotations: { [hashKey]: 'old-hash' } });
  const object = web({
    templateAnnotations: { [hashKey]: 'old-hash' },
    podSpec: { ...pricesSpec, schedulingGates: [gate] },
  });
  const decision = decideAdmission(
    request({ operation: 'UPDATE', object, oldObject, children: untouchable(t) }),
  );
  t.equal(
    decision.reason,
    'pod template unchanged: kept hash old-hash… and removed the config-missing gate the request set',
  );
  t.strictSame(decision.patch, [{ op: 'remove', path: '/spec/template/spec/schedulingGates' }]);
  t.end();
});
