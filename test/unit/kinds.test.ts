import t from 'tap';
import { kindByName } from '../../src/core/kinds.ts';

t.test('each apps/v1 workload kind is known by name', (t) => {
  t.equal(kindByName('StatefulSet')?.plural, 'statefulsets');
  t.equal(kindByName('ReplicaSet'), undefined);
  t.end();
});
