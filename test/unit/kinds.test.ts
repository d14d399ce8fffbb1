// The kinds table: what each built-in kind is, how a person names it, where its template lives, and the
// registry a kind can join at start (validated, never shadowing another kind's name).
import t from 'tap';
import {
  apiVersionOf,
  atTemplate,
  builtinKinds,
  describeAliases,
  kindByAlias,
  kindByName,
  kindError,
  registerWorkloadKind,
  resourcesByGroupVersion,
  templatePaths,
  templatePointer,
  workloadKinds,
} from '../../src/core/kinds.ts';
import type { WorkloadKind } from '../../src/core/kinds.ts';

t.test('the built-in kinds: apps/v1 Deployment, StatefulSet, DaemonSet and batch/v1 CronJob', (t) => {
  t.strictSame(
    builtinKinds.map((k) => `${apiVersionOf(k)} ${k.kind} ${k.plural} ${templatePointer(k)}`),
    [
      'apps/v1 Deployment deployments /spec/template',
      'apps/v1 StatefulSet statefulsets /spec/template',
      'apps/v1 DaemonSet daemonsets /spec/template',
      'batch/v1 CronJob cronjobs /spec/jobTemplate/spec/template',
    ],
  );
  t.strictSame(workloadKinds, builtinKinds, 'the table starts as the built-in kinds');
  t.equal(kindByName('StatefulSet')?.plural, 'statefulsets');
  t.equal(kindByName('ReplicaSet'), undefined, 'a kind outside the table is unknown');
  t.equal(kindByName('Job'), undefined, 'wave never manages a Job: the CronJob carries the template');
  t.end();
});

t.test(
  'how each kind rolls: only a StatefulSet needs its held pods deleted; a CronJob has no pods of its own',
  (t) => {
    t.strictSame(
      builtinKinds.filter((k) => !k.replacesUnreadyPods).map((k) => k.kind),
      ['StatefulSet'],
    );
    const cronJob = kindByName('CronJob');
    t.equal(cronJob?.podSelectorPath, undefined, 'wave reads and deletes no pod of a CronJob');
    t.equal(cronJob?.managedByWave, false, 'Wave never managed CronJobs: nothing of it to migrate');
    for (const kind of builtinKinds.filter((k) => k.group === 'apps')) {
      t.strictSame(
        kind.podSelectorPath,
        ['spec', 'selector', 'matchLabels'],
        `${kind.kind} selects its pods`,
      );
    }
    t.end();
  },
);

t.test('a person names a kind by its name, plural or short name, in any case', (t) => {
  for (const [text, kind] of [
    ['deploy', 'Deployment'],
    ['Deployments', 'Deployment'],
    ['sts', 'StatefulSet'],
    ['ds', 'DaemonSet'],
    ['cj', 'CronJob'],
    ['cronjob', 'CronJob'],
    ['CronJobs', 'CronJob'],
  ] as const) {
    t.equal(kindByAlias(text)?.kind, kind, text);
  }
  t.equal(kindByAlias('job'), undefined);
  t.equal(describeAliases(kindByName('CronJob') as WorkloadKind), 'cronjob (cronjobs, cj)');
  t.end();
});

t.test('a merge patch of the template nests at the kind’s path', (t) => {
  const cronJob = kindByName('CronJob') as WorkloadKind;
  t.strictSame(atTemplate(cronJob, { metadata: { annotations: { a: 'b' } } }), {
    spec: { jobTemplate: { spec: { template: { metadata: { annotations: { a: 'b' } } } } } },
  });
  t.end();
});

t.test('rules and template paths group the kinds in table order', (t) => {
  t.strictSame(resourcesByGroupVersion(builtinKinds), [
    { group: 'apps', version: 'v1', plurals: ['deployments', 'statefulsets', 'daemonsets'] },
    { group: 'batch', version: 'v1', plurals: ['cronjobs'] },
  ]);
  t.strictSame(templatePaths(builtinKinds), [
    ['spec', 'template'],
    ['spec', 'jobTemplate', 'spec', 'template'],
  ]);
  t.end();
});

t.test('a kind registered at start joins the table; a bad or clashing one is refused with its name', (t) => {
  const widget: WorkloadKind = {
    kind: 'CloneSet',
    group: 'apps.kruise.io',
    version: 'v1alpha1',
    plural: 'clonesets',
    templatePath: ['spec', 'template'],
    podSelectorPath: ['spec', 'selector', 'matchLabels'],
    aliases: ['clone'],
    replacesUnreadyPods: true,
    rollout: 'the pods are replaced',
    managedByWave: false,
  };
  t.match(
    kindError({ ...widget, templatePath: [] }),
    /^apps\.kruise\.io\/v1alpha1\/CloneSet: the pod template path/,
  );
  t.match(kindError({ ...widget, kind: 'Deployment' }), /already manages a kind named Deployment/);
  t.match(kindError({ ...widget, aliases: ['sts'] }), /the name sts already means StatefulSet/);
  t.match(kindError({ ...widget, plural: 'Clone Sets' }), /the plural must be/);
  t.throws(() => registerWorkloadKind({ ...widget, kind: 'cloneset' }), /the kind must be a CamelCase name/);
  t.equal(workloadKinds.length, builtinKinds.length, 'nothing registered by a refusal');

  registerWorkloadKind(widget);
  t.equal(kindByName('CloneSet')?.plural, 'clonesets');
  t.equal(kindByAlias('clone')?.kind, 'CloneSet');
  t.equal(workloadKinds.at(-1)?.kind, 'CloneSet', 'the live table holds it');
  t.throws(() => registerWorkloadKind(widget), /already manages a kind named CloneSet/);
  t.end();
});
