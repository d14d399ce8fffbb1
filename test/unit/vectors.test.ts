import t from 'tap';
import { computeConfigHash, describeMissing } from '../../src/core/hash.ts';
import { consumedConfig } from '../../src/core/refs.ts';
import { expectedVectors, loadVector, sha256, vectorFiles } from './support/vectors.ts';

const expected = expectedVectors();

t.test('every vector file has an expectation', (t) => {
  t.strictSame(vectorFiles(), Object.keys(expected).sort());
  t.end();
});

for (const [file, want] of Object.entries(expected)) {
  t.test(`${file}: ${want.workload} hashes as expected`, (t) => {
    const { workload, lookup } = loadVector(file);
    t.equal(`${workload.kind}/${workload.metadata.namespace}/${workload.metadata.name}`, want.workload);
    const result = computeConfigHash(consumedConfig(workload), lookup, sha256);
    if (want.configHash === null) {
      t.notOk(result.complete, 'a workload missing required configuration has no hash');
      if (!result.complete) t.strictSame(result.missing.map(describeMissing), want.missingRequired);
    } else {
      t.ok(result.complete);
      if (result.complete) {
        t.equal(result.hashInput, want.hashInput, 'canonical input');
        t.equal(result.hash, want.configHash, 'hash');
      }
      t.strictSame(want.missingRequired, []);
    }
    t.end();
  });
}
