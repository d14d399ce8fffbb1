// `wave certs` without a cluster: help, usage errors, and `wave certs local` (what `make certs` runs).
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { isIssuedBy, keyMatchesCert, parseCert } from '../../src/certs/pki.ts';

const main = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));

function wave(args: string[]) {
  const run = spawnSync(process.execPath, [main, ...args], { encoding: 'utf8' });
  const lines = run.stdout
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as { msg: string; action?: string });
  return { status: run.status, stdout: run.stdout, stderr: run.stderr, lines };
}

t.test('wave certs lists its subcommands; each documents its options', (t) => {
  const top = wave(['--help']);
  t.match(top.stdout, /\n {2}certs {2}/);
  const certs = wave(['certs', '--help']);
  t.equal(certs.status, 0);
  t.match(certs.stdout, /Usage: wave certs <rotate\|local>/);
  const rotate = wave(['certs', 'rotate', '--help']);
  t.equal(rotate.status, 0);
  for (const flag of ['--kubeconfig', '--namespace', '--secret', '--webhook-configuration', '--service']) {
    t.match(rotate.stdout, `${flag} <string>`);
  }
  for (const flag of ['--force', '--force-ca', '--dry-run']) t.match(rotate.stdout, `${flag}\n`);
  t.match(rotate.stdout, /--ca-validity <duration>\n.*\(default 1825d; env WAVE_CA_VALIDITY\)/);
  t.match(rotate.stdout, /--cert-validity <duration>\n.*\(default 90d; env WAVE_CERT_VALIDITY\)/);
  t.match(rotate.stdout, /--overlap <duration>\n.*\(default 10m; env WAVE_CA_OVERLAP\)/);
  t.match(rotate.stdout, /--namespace <string>\n.*\(default wave-system; env POD_NAMESPACE\)/);
  const local = wave(['certs', 'local', '--help']);
  t.equal(local.status, 0);
  t.match(local.stdout, /--out <string>\n.*\(default webhook-certs/);
  t.end();
});

t.test('impossible options and unknown subcommands are usage errors', (t) => {
  const tooLong = wave(['certs', 'rotate', '--cert-validity', '1000d']);
  t.equal(tooLong.status, 2);
  t.match(tooLong.stderr, /at most a third of the CA validity/);
  const badIp = wave(['certs', 'local', '--extra-ip', 'localhost']);
  t.equal(badIp.status, 2);
  t.match(badIp.stderr, /"localhost" is not an IP address/);
  const badDuration = wave(['certs', 'rotate', '--overlap', 'soon']);
  t.equal(badDuration.status, 2);
  t.match(badDuration.stderr, /--overlap: "soon" is not a duration/);
  const unknown = wave(['certs', 'renew']);
  t.equal(unknown.status, 2);
  t.match(unknown.stderr, /unknown subcommand "renew"/);
  t.equal(wave(['certs']).status, 2);
  t.end();
});

t.test('wave certs local writes a CA and a serving pair, keeps them, and repairs garbage', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'wave-certs-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const first = wave(['certs', 'local', '--out', dir]);
  t.equal(first.status, 0, first.stderr);
  t.same(
    first.lines.filter((l) => l.action !== undefined).map((l) => l.action),
    ['created'],
  );
  const read = async () => ({
    ca: await readFile(join(dir, 'ca.crt'), 'utf8'),
    cert: await readFile(join(dir, 'tls.crt'), 'utf8'),
    key: await readFile(join(dir, 'tls.key'), 'utf8'),
  });
  const files = await read();
  const info = parseCert(files.cert);
  t.same(info.ips, ['127.0.0.1']);
  t.same(info.dnsNames, [
    'wave',
    'wave.wave-system',
    'wave.wave-system.svc',
    'wave.wave-system.svc.cluster.local',
    'localhost',
  ]);
  t.ok(isIssuedBy(files.cert, files.ca));
  t.ok(keyMatchesCert(files.cert, files.key));
  t.notOk(first.stdout.includes('PRIVATE KEY'), 'no key material in the log');

  const second = wave(['certs', 'local', '--out', dir]);
  t.equal(second.status, 0);
  t.ok(second.lines.some((l) => l.msg === 'certificates are up to date: nothing to change'));
  t.same(await read(), files, 'a second run changes nothing');

  await writeFile(join(dir, 'tls.crt'), 'garbage');
  const repair = wave(['certs', 'local', '--out', dir]);
  t.equal(repair.status, 0);
  t.match(
    repair.lines.map((l) => l.msg).join('\n'),
    /serving certificate unusable \(tls\.crt: no "-----BEGIN CERTIFICATE-----" block found.*\): replaced/,
  );
  const repaired = await read();
  t.equal(repaired.ca, files.ca, 'the CA stays, so what trusts it still does');
  t.ok(isIssuedBy(repaired.cert, repaired.ca));

  const forced = wave(['certs', 'local', '--out', dir, '--force']);
  t.ok(forced.lines.some((l) => l.action === 'serving-issued'));
  t.not((await read()).cert, repaired.cert);
});
