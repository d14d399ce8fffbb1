// The webhook matches a Reloader reload list pattern against the names the watches know, as the loop does:
// the hash it stamps at CREATE includes an unreferenced ConfigMap the pattern matches, so the loop has
// nothing to roll afterwards.
import t from 'tap';
import { defaultCounting } from '../../src/core/counting.ts';
import type { ChildData, ChildRef } from '../../src/core/objects.ts';
import { sha256Hex } from '../../src/sha256.ts';
import { createAdmit } from '../../src/webhook/admit.ts';
import type { AdmitDependencies } from '../../src/webhook/admit.ts';
import { deploymentObject, podSpec } from './support/workloads.ts';

const objects: ChildData[] = [
  { kind: 'ConfigMap', namespace: 'shop', name: 'app', data: { a: '1' } },
  { kind: 'ConfigMap', namespace: 'shop', name: 'name-a', data: { x: '1' } },
  { kind: 'ConfigMap', namespace: 'shop', name: 'other', data: { y: '1' } },
];

async function stampedHash(names: AdmitDependencies['names'], read: string[]): Promise<unknown> {
  const admit = createAdmit({
    counting: { ...defaultCounting, reloaderAnnotations: true },
    readChildren: (refs: readonly ChildRef[]) => {
      read.push(...refs.map((r) => r.name));
      return Promise.resolve(objects.filter((o) => refs.some((r) => r.kind === o.kind && r.name === o.name)));
    },
    events: { record: () => undefined, flush: () => Promise.resolve() },
    hasher: sha256Hex,
    ownUsername: 'system:serviceaccount:wave-system:wave',
    ownFieldManager: 'wave',
    ...(names === undefined ? {} : { names }),
  });
  const object = deploymentObject({
    annotations: { 'configmap.reloader.stakater.com/reload': 'name-.*' },
    podSpec: podSpec({ envFrom: [{ configMapRef: { name: 'app' } }] }),
  });
  const result = await admit(
    {
      uid: 'u',
      kind: { group: 'apps', version: 'v1', kind: 'Deployment' },
      operation: 'CREATE',
      name: 'web',
      namespace: 'shop',
      userInfo: { username: 'someone', groups: [] },
      object: object as never,
      oldObject: null,
      dryRun: false,
      fieldManager: 'kubectl',
    },
    new AbortController().signal,
  );
  t.equal(result.decision, 'stamp', result.reason);
  return result.patch.find((op) => op.op !== 'remove' && JSON.stringify(op).includes('config-hash'));
}

t.test('the webhook reads and hashes the unreferenced objects a pattern matches', async (t) => {
  const withNames: string[] = [];
  const matched = await stampedHash(
    (kind, namespace) => (kind === 'ConfigMap' && namespace === 'shop' ? objects.map((o) => o.name) : []),
    withNames,
  );
  t.same(withNames.sort(), ['app', 'name-a'], 'the matching one is read, the other never');
  const without: string[] = [];
  const referencedOnly = await stampedHash(undefined, without);
  t.same(without, ['app'], 'without the names: only what is referenced');
  t.ok(matched !== undefined && referencedOnly !== undefined, 'both stamp a hash');
  t.not(JSON.stringify(matched), JSON.stringify(referencedOnly), 'and the matched object is in the hash');
});
