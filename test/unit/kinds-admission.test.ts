// The admission decision for every kind of the kinds table, its pod template wherever the kind keeps it:
// opted in on the workload's metadata or, for a workload whose operator owns its metadata, on the pod
// template; the patch touches the template only, at the kind's path.
import t from 'tap';
import jsonPatch from 'fast-json-patch';
import { decideAdmission } from '../../src/core/admission.ts';
import type { AdmissionInput } from '../../src/core/admission.ts';
import { configHashAnnotation, configMissingGate, optInAnnotation } from '../../src/core/annotations.ts';
import { atTemplate, templatePointer, workloadKinds } from '../../src/core/kinds.ts';
import type { WorkloadKind } from '../../src/core/kinds.ts';
import { childLookupFrom, valueAt } from '../../src/core/objects.ts';
import type { ChildData } from '../../src/core/objects.ts';
import { sha256 } from './support/vectors.ts';

const prices: ChildData = { kind: 'ConfigMap', namespace: 'shop', name: 'prices', data: { eur: '1.00' } };

function object(
  kind: WorkloadKind,
  o: { annotations?: Record<string, string>; templateAnnotations?: Record<string, string> },
): Record<string, unknown> {
  const template = {
    metadata: {
      labels: { app: 'web' },
      ...(o.templateAnnotations && { annotations: o.templateAnnotations }),
    },
    spec: {
      containers: [
        {
          name: 'web',
          image: 'web:1',
          env: [{ name: 'EUR', valueFrom: { configMapKeyRef: { name: 'prices', key: 'eur' } } }],
        },
      ],
    },
  };
  return {
    apiVersion: `${kind.group}/${kind.version}`,
    kind: kind.kind,
    metadata: { name: 'web', namespace: 'shop', ...(o.annotations && { annotations: o.annotations }) },
    ...atTemplate(kind, template),
  };
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

function apply(o: Record<string, unknown>, patch: readonly jsonPatch.Operation[]): Record<string, unknown> {
  return jsonPatch.applyPatch(structuredClone(o), [...patch], true, false).newDocument;
}

const optIn = { [optInAnnotation]: 'true' };

for (const kind of workloadKinds) {
  const templateOf = (o: unknown) => valueAt(o, kind.templatePath) as Record<string, unknown>;
  const hashOf = (o: unknown) =>
    (valueAt(templateOf(o), ['metadata', 'annotations']) as Record<string, string> | undefined)?.[
      configHashAnnotation
    ];

  t.test(kind.kind, (t) => {
    t.test('opted in on its metadata: stamped at the template path, nothing else touched', (t) => {
      const created = object(kind, { annotations: optIn });
      const decision = decideAdmission(request({ object: created }));
      t.equal(decision.decision, 'stamp');
      t.ok(decision.patch.length > 0, 'a patch');
      for (const op of decision.patch) {
        t.ok(op.path.startsWith(`${templatePointer(kind)}/`), `${op.path} is inside the template`);
      }
      t.match(hashOf(apply(created, decision.patch as jsonPatch.Operation[])), /^[0-9a-f]{64}$/);
      t.end();
    });

    t.test('opted in on the pod template only: stamped the same', (t) => {
      const onMetadata = decideAdmission(request({ object: object(kind, { annotations: optIn }) }));
      const created = object(kind, { templateAnnotations: optIn });
      const decision = decideAdmission(request({ object: created }));
      t.equal(decision.decision, 'stamp');
      t.same(decision.events, [], 'no near-miss warning');
      const stamped = apply(created, decision.patch as jsonPatch.Operation[]);
      t.equal(
        hashOf(stamped),
        hashOf(apply(object(kind, { annotations: optIn }), onMetadata.patch as jsonPatch.Operation[])),
      );
      t.equal(
        (valueAt(templateOf(stamped), ['metadata', 'annotations']) as Record<string, string>)[
          optInAnnotation
        ],
        'true',
        'the opt-in stays where the owner put it',
      );
      t.end();
    });

    t.test('the workload\'s own metadata decides first: "false" there beats "true" on the template', (t) => {
      const decision = decideAdmission(
        request({
          object: object(kind, { annotations: { [optInAnnotation]: 'false' }, templateAnnotations: optIn }),
        }),
      );
      t.equal(decision.decision, 'skip');
      t.same(decision.patch, []);
      t.end();
    });

    t.test('a near miss on the pod template is warned about, saying where', (t) => {
      const decision = decideAdmission(
        request({ object: object(kind, { templateAnnotations: { [optInAnnotation]: 'True' } }) }),
      );
      t.equal(decision.decision, 'skip');
      t.equal(decision.events[0]?.reason, 'OptInNearMiss');
      t.match(decision.events[0]?.message, /"True" on the pod template; wave opts in only on exactly "true"/);
      t.end();
    });

    t.test('created while a consumed object is missing: held by the gate in the template', (t) => {
      const created = object(kind, { templateAnnotations: optIn });
      const decision = decideAdmission(request({ object: created, children: childLookupFrom([]) }));
      t.equal(decision.decision, 'hold');
      const held = templateOf(apply(created, decision.patch as jsonPatch.Operation[]));
      t.same((held['spec'] as Record<string, unknown>)['schedulingGates'], [{ name: configMissingGate }]);
      t.end();
    });

    t.test('an owner re-applying the template without the hash gets it back, no new hash', (t) => {
      const created = object(kind, { templateAnnotations: optIn });
      const stamped = apply(
        created,
        decideAdmission(request({ object: created })).patch as jsonPatch.Operation[],
      );
      const decision = decideAdmission(
        request({ operation: 'UPDATE', object: created, oldObject: stamped, children: childLookupFrom([]) }),
      );
      t.equal(decision.decision, 'keep');
      t.equal(hashOf(apply(created, decision.patch as jsonPatch.Operation[])), hashOf(stamped));
      t.end();
    });
    t.end();
  });
}
