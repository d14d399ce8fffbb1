// --workload-kinds: what an entry declares, the message a bad one fails with, and what discovery says of
// the kind (plural, scope, verbs) against a scripted apiserver.
import t from 'tap';
import { parseDeclaredKind, parseDeclaredKinds, pointerSegments } from '../../src/core/declared-kinds.ts';
import { discoverKind, unfitWorkloadKind } from '../../src/kube/discovery.ts';
import { KubeTransport } from '../../src/kube/transport.ts';
import { FakeApiServer } from '../support/fake-apiserver.ts';

const builtIn = [
  { group: 'apps', kind: 'Deployment' },
  { group: 'argoproj.io', kind: 'Rollout' },
];

t.test('an entry declares group, version, kind and where the template is', (t) => {
  t.same(parseDeclaredKind('apps.kruise.io/v1alpha1/CloneSet:/spec/template'), {
    group: 'apps.kruise.io',
    version: 'v1alpha1',
    kind: 'CloneSet',
    templatePath: ['spec', 'template'],
    entry: 'apps.kruise.io/v1alpha1/CloneSet:/spec/template',
  });
  t.same(parseDeclaredKind('example.com/v2beta1/Pool:/spec/pods/template').templatePath, [
    'spec',
    'pods',
    'template',
  ]);
  t.same(pointerSegments('/a~1b/c~0d'), ['a/b', 'c~d'], 'RFC 6901 escapes');
  t.same(
    parseDeclaredKinds([' a.example.com/v1/A:/spec/template ', '', 'b.example.com/v1/B:/x'], builtIn).map(
      (k) => k.kind,
    ),
    ['A', 'B'],
    'a list, trimmed, empty entries skipped',
  );
  t.end();
});

t.test('a bad entry fails naming it and what is wrong', (t) => {
  const rows: [string, RegExp][] = [
    ['apps.kruise.io/v1alpha1/CloneSet', /no ":" before the pointer/],
    ['apps.kruise.io/CloneSet:/spec/template', /expected GROUP\/VERSION\/KIND before ":"/],
    ['kruise/v1alpha1/CloneSet:/spec/template', /"kruise" is not an API group of a custom resource/],
    ['apps.kruise.io/1/CloneSet:/spec/template', /"1" is not an API version/],
    ['apps.kruise.io/v1alpha1/cloneset:/spec/template', /"cloneset" is not a kind/],
    ['apps.kruise.io/v1alpha1/CloneSet:spec/template', /"spec\/template" is not a JSON Pointer/],
    ['apps.kruise.io/v1alpha1/CloneSet:/spec//template', /has an empty segment/],
    ['apps.kruise.io/v1alpha1/CloneSet:/spec/~2', /"~" must be followed by 0 or 1/],
  ];
  for (const [entry, why] of rows) {
    t.throws(() => parseDeclaredKind(entry), { name: 'DeclaredKindError', message: why }, entry);
    t.throws(() => parseDeclaredKind(entry), { message: `--workload-kinds entry "${entry}": ` }, 'named');
  }
  t.throws(
    () => parseDeclaredKinds(['argoproj.io/v1alpha1/Rollout:/spec/template'], builtIn),
    { message: /Rollout of argoproj.io is built in/ },
    'a built-in kind',
  );
  t.throws(
    () => parseDeclaredKinds(['a.example.com/v1/A:/spec/template', 'a.example.com/v2/A:/spec/t'], builtIn),
    { message: /"a.example.com\/v2\/A:\/spec\/t": A of a.example.com is declared twice/ },
    'one kind twice',
  );
  t.end();
});

t.test('discovery gives the plural, the scope and the verbs; what is not served says why', async (t) => {
  const fake = await FakeApiServer.start((request, response) => {
    if (request.path === '/apis/apps.kruise.io/v1alpha1') {
      response.json(200, {
        kind: 'APIResourceList',
        groupVersion: 'apps.kruise.io/v1alpha1',
        resources: [
          { name: 'clonesets/status', kind: 'CloneSet', namespaced: true, verbs: ['get', 'patch'] },
          { name: 'clonesets', kind: 'CloneSet', namespaced: true, verbs: ['get', 'list', 'watch', 'patch'] },
          {
            name: 'nodeimages',
            kind: 'NodeImage',
            namespaced: false,
            verbs: ['get', 'list', 'watch', 'patch'],
          },
          { name: 'readonlies', kind: 'ReadOnly', namespaced: true, verbs: ['get', 'list'] },
        ],
      });
    } else {
      response.status(404, 'NotFound', 'the server could not find the requested resource');
    }
  });
  t.teardown(() => fake.close());
  const transport = new KubeTransport(fake.kubeConfig());
  const signal = new AbortController().signal;
  const ask = (group: string, kind: string) =>
    discoverKind(transport, { group, version: 'v1alpha1', kind }, signal);
  const cloneSet = await ask('apps.kruise.io', 'CloneSet');
  t.same(cloneSet, {
    served: true,
    resource: { plural: 'clonesets', namespaced: true, verbs: ['get', 'list', 'watch', 'patch'] },
  });
  if (cloneSet.served) t.equal(unfitWorkloadKind('CloneSet', cloneSet.resource), undefined, 'fit');
  const nodeImage = await ask('apps.kruise.io', 'NodeImage');
  if (nodeImage.served) t.match(unfitWorkloadKind('NodeImage', nodeImage.resource), /cluster-scoped/);
  const readOnly = await ask('apps.kruise.io', 'ReadOnly');
  if (readOnly.served)
    t.equal(unfitWorkloadKind('ReadOnly', readOnly.resource), 'ReadOnly does not support watch, patch');
  t.same(await ask('apps.kruise.io', 'Other'), {
    served: false,
    why: 'apps.kruise.io/v1alpha1 has no kind Other (it serves CloneSet, NodeImage, ReadOnly)',
  });
  t.same(await ask('argoproj.io', 'Rollout'), {
    served: false,
    why: 'the apiserver serves no argoproj.io/v1alpha1 (is its CustomResourceDefinition installed?)',
  });
});
