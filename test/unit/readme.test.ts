// The README changes with the behaviour it describes: every flag and command of the CLI is documented.
import { readFileSync } from 'node:fs';
import t from 'tap';
import { migrateFlags } from '../../src/cli/migrate.ts';
import { serveFlags } from '../../src/cli/serve.ts';

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
