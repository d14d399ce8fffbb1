import t from 'tap';
import { flagHelp, parseDuration, parseFlags, UsageError } from '../../src/cli/flags.ts';

t.test('durations read as operators write them, days included', (t) => {
  t.equal(parseDuration('500ms'), 500);
  t.equal(parseDuration('1h30m'), 90 * 60_000);
  t.equal(parseDuration('90d'), 90 * 86_400_000);
  t.equal(parseDuration('1d12h'), 36 * 3_600_000);
  t.equal(parseDuration('1.5d'), 36 * 3_600_000);
  t.equal(parseDuration('2'), 2000, 'a bare number is seconds');
  t.throws(() => parseDuration('3 days'), /"3 days" is not a duration \(examples: .*90d\)/);
  t.throws(() => parseDuration('1w'), /not a duration/);
  t.end();
});

t.test('a duration flag takes days from the command line and the environment', (t) => {
  const table = {
    validity: { type: 'duration', env: 'VALIDITY', default: 90 * 86_400_000, help: 'lifetime' },
  } as const;
  t.equal(parseFlags(table, ['--validity', '30d'], {}).values.validity, 30 * 86_400_000);
  t.equal(parseFlags(table, [], { VALIDITY: '1825d' }).values.validity, 1825 * 86_400_000);
  t.throws(() => parseFlags(table, ['--validity=soon'], {}), UsageError);
  t.end();
});

t.test('--help shows a duration default in its largest whole unit', (t) => {
  const help = flagHelp({
    a: { type: 'duration', default: 1825 * 86_400_000, help: 'a' },
    b: { type: 'duration', default: 10 * 60_000, help: 'b' },
    c: { type: 'duration', default: 2000, help: 'c' },
    d: { type: 'duration', default: 1500, help: 'd' },
    e: { type: 'duration', default: 0, help: 'e' },
  });
  t.match(help, /--a <duration>\n\s+a \(default 1825d\)/);
  t.match(help, /--b <duration>\n\s+b \(default 10m\)/);
  t.match(help, /--c <duration>\n\s+c \(default 2s\)/);
  t.match(help, /--d <duration>\n\s+d \(default 1500ms\)/);
  t.match(help, /--e <duration>\n\s+e \(default 0s\)/);
  t.end();
});
