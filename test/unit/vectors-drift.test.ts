// The hash vectors are carried in the repository (a user's clone has nothing beside it). Where the
// design's own copy is beside the clone, as in CI, the two must be identical, so they cannot drift.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { vectorsDir } from './support/vectors.ts';

const designCopy = new URL('../../../../shared/vectors/config-hash/', import.meta.url);

const listing = (dir: URL) => readdirSync(dir).sort();

t.test('the repository carries the vectors', (t) => {
  t.ok(listing(vectorsDir).includes('expected.json'), 'expected.json is there');
  t.ok(listing(vectorsDir).filter((f) => f.endsWith('.yaml')).length > 0, 'and vector files');
  t.end();
});

if (existsSync(designCopy)) {
  t.test("the vectors equal the design's copy beside the clone, file by file", (t) => {
    t.strictSame(listing(vectorsDir), listing(designCopy), 'the same files');
    for (const file of listing(designCopy)) {
      t.equal(
        readFileSync(new URL(file, vectorsDir), 'utf8'),
        readFileSync(new URL(file, designCopy), 'utf8'),
        `${file} is identical`,
      );
    }
    t.end();
  });
} else {
  t.comment(`no design copy at ${fileURLToPath(designCopy)}: nothing to compare the vectors with`);
  t.pass('the drift check needs the copy beside the clone (CI has it); a clone on its own has only its own');
}
