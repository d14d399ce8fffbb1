// The README changes with the behaviour it describes: every flag and command of the CLI, and the near
// misses of the opt-in, are documented.
import { readFileSync } from 'node:fs';
import t from 'tap';
import { migrateFlags } from '../../src/cli/migrate.ts';
import { serveFlags } from '../../src/cli/serve.ts';
import { optInNearMissValues } from '../../src/core/annotations.ts';

const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');

t.test('the README documents every wave serve flag with its environment variable', (t) => {
  for (const [name, spec] of Object.entries(serveFlags)) {
    if (name === 'help') continue;
    t.ok(readme.includes(`\`--${name}\``), `--${name}`);
    if ('env' in spec) t.ok(readme.includes(`\`${spec.env}\``), spec.env);
  }
  t.end();
});

t.test('the README shows the two commands a newcomer needs', (t) => {
  t.match(readme, /make up/);
  t.match(readme, /make test/);
  t.end();
});

t.test('the README documents every wave migrate from-wave flag with its environment variable', (t) => {
  for (const [name, spec] of Object.entries(migrateFlags)) {
    if (name === 'help') continue;
    t.ok(readme.includes(`\`--${name}\``), `--${name}`);
    if ('env' in spec) t.ok(readme.includes(`\`${spec.env}\``), spec.env);
  }
  t.match(readme, /`wave migrate from-wave` prints `nothing left to do/, 'and how to verify a migration');
  t.end();
});

t.test('the README lists every near miss of the opt-in value', (t) => {
  const sentence = /A near miss is a value other than exactly `"true"` that, [^]*?, is ([^.]*)\./;
  const list = sentence.exec(readme)?.[1];
  const listed = [...(list ?? '').matchAll(/`([^`]+)`/g)].map((m) => m[1]);
  t.strictSame(listed.sort(), [...optInNearMissValues].sort(), list ?? 'the README says what a near miss is');
  t.end();
});
