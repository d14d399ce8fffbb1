// Who wrote a change and who manages a pod template, read off managedFields: the input of the debounce rule.
import t from 'tap';
import { kindByName } from '../../src/core/kinds.ts';
import { latestManagers, sharedManager, templateManagers } from '../../src/core/managed-fields.ts';

const entry = (manager: string, time: string, fieldsV1: object = {}, subresource?: string) => ({
  manager,
  operation: 'Update',
  apiVersion: 'v1',
  time,
  fieldsType: 'FieldsV1',
  fieldsV1,
  ...(subresource === undefined ? {} : { subresource }),
});

const templatePath = ['spec', 'template'];

t.test('the writer of a change is the manager of the newest entry', (t) => {
  t.same(
    latestManagers([
      entry('kubectl-client-side-apply', '2026-12-02T10:00:00Z'),
      entry('cert-manager', '2026-12-02T10:05:00Z'),
      entry('helm', '2026-12-02T10:01:00Z'),
    ]),
    ['cert-manager'],
  );
  t.same(
    latestManagers([entry('helm', '2026-12-02T10:00:00.250Z'), entry('x', '2026-12-02T10:00:00Z')]),
    ['helm'],
    'fractions of a second count',
  );
  t.same(
    latestManagers([entry('x', 'yesterday'), entry('y', '2026-12-02T10:00:00Z')]),
    ['y'],
    'junk times are oldest',
  );
  t.end();
});

t.test('entries of the same second are all writers; status entries are none', (t) => {
  t.same(
    latestManagers([
      entry('b', '2026-12-02T10:00:00Z'),
      entry('a', '2026-12-02T10:00:00Z'),
      entry('controller', '2026-12-02T11:00:00Z', {}, 'status'),
    ]),
    ['a', 'b'],
  );
  t.same(latestManagers(undefined), [], 'no managedFields: no known writer');
  t.same(latestManagers([{ time: '2026-12-02T10:00:00Z' }, 'junk']), [], 'entries without a manager');
  t.end();
});

t.test('template managers own a field under f:spec → f:template; wave and subresources do not count', (t) => {
  const fields = [
    entry('helm', '2026-12-02T10:00:00Z', {
      'f:metadata': { 'f:labels': {} },
      'f:spec': { 'f:replicas': {}, 'f:template': { 'f:spec': { 'f:containers': {} } } },
    }),
    entry('wave', '2026-12-02T10:01:00Z', {
      'f:spec': { 'f:template': { 'f:metadata': { 'f:annotations': {} } } },
    }),
    entry('hpa', '2026-12-02T10:02:00Z', { 'f:spec': { 'f:replicas': {} } }),
    entry('kube-controller-manager', '2026-12-02T10:03:00Z', { 'f:status': {} }, 'status'),
    entry('kubectl-edit', '2026-12-02T10:04:00Z', { 'f:metadata': { 'f:annotations': {} } }),
  ];
  t.same(templateManagers(fields, templatePath, ['wave']), ['helm']);
  t.same(templateManagers(fields, templatePath), ['helm', 'wave'], 'wave counts unless excluded');
  t.same(templateManagers(fields, ['spec', 'jobTemplate']), [], 'the kind table says where the template is');
  t.end();
});

t.test('a change waits only when its writer also manages the template', (t) => {
  t.equal(sharedManager(['helm'], ['argocd-controller', 'helm']), 'helm');
  t.equal(sharedManager(['cert-manager'], ['helm']), undefined);
  t.equal(sharedManager([], ['helm']), undefined, 'an unknown writer never waits');
  t.end();
});

t.test('equal manager lists are one shared array', (t) => {
  const a = templateManagers([entry('helm', 'x', { 'f:spec': { 'f:template': {} } })], templatePath);
  const b = templateManagers([entry('helm', 'y', { 'f:spec': { 'f:template': {} } })], templatePath);
  t.equal(a, b, 'thousands of workloads written by one tool hold one list');
  t.end();
});

t.test(
  'a CronJob’s template managers own a field under f:spec → f:jobTemplate → f:spec → f:template',
  (t) => {
    const cronJob = kindByName('CronJob');
    if (cronJob === undefined) throw new Error('no CronJob in the kinds table');
    const fields = [
      entry('argocd-controller', '2026-12-02T10:00:00Z', {
        'f:spec': {
          'f:schedule': {},
          'f:jobTemplate': { 'f:spec': { 'f:template': { 'f:spec': { 'f:containers': {} } } } },
        },
      }),
      entry('kubectl-patch', '2026-12-02T10:01:00Z', { 'f:spec': { 'f:suspend': {} } }),
      entry('wave', '2026-12-02T10:02:00Z', {
        'f:spec': {
          'f:jobTemplate': { 'f:spec': { 'f:template': { 'f:metadata': { 'f:annotations': {} } } } },
        },
      }),
    ];
    t.same(templateManagers(fields, cronJob.templatePath, ['wave']), ['argocd-controller']);
    t.same(templateManagers(fields, ['spec', 'template']), [], 'not where a Deployment keeps it');
    t.end();
  },
);
