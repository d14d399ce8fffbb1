// `wave serve` as a real process, where no cluster is needed: every start-up mistake ends it within
// seconds with exit status 1 and one line on stderr naming the bad input and the fix, and SIGTERM ends it
// within 10 s while it waits for an apiserver, while its caches sync against one that never answers, and
// while the shutdown after a failure is stuck on a hung request; an uncaught error shuts it down with exit
// status 1, and a second signal exits at once.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import type { Test } from 'tap';
import { localServingPair } from '../support/certs.ts';
import { FakeApiServer } from '../support/fake-apiserver.ts';
import type { Responder } from '../support/fake-apiserver.ts';
import { spawnWave } from '../support/wave.ts';
import type { WaveChild } from '../support/wave.ts';

/** The acceptance bounds: a fatal start-up error exits within 5 s, a signal within 10 s. */
const fatalExitMs = 5000;
const signalExitMs = 10_000;

const dir = await mkdtemp(join(tmpdir(), 'wave-serve-'));
t.teardown(() => rm(dir, { recursive: true, force: true }));

async function kubeconfig(name: string, server: string, skipTlsVerify: boolean): Promise<string> {
  const file = join(dir, name);
  await writeFile(
    file,
    [
      'apiVersion: v1',
      'kind: Config',
      `clusters: [{name: c, cluster: {server: "${server}", insecure-skip-tls-verify: ${String(skipTlsVerify)}}}]`,
      'users: [{name: u, user: {token: t}}]',
      'contexts: [{name: x, context: {cluster: c, user: u}}]',
      'current-context: x',
      '',
    ].join('\n'),
  );
  return file;
}

/** A port nothing listens on: bound, then released. */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

// A certificate made once here: --self-signed would make an RSA key in every child, seconds of CPU
// under load that would count against the bounds.
const { ca, serving } = localServingPair({ dnsNames: ['localhost'] });
await writeFile(join(dir, 'ca.crt'), ca.certPem);
await writeFile(join(dir, 'tls.crt'), serving.certPem);
await writeFile(join(dir, 'tls.key'), serving.keyPem, { mode: 0o600 });
const certificate = ['--tls-cert-file', join(dir, 'tls.crt'), '--tls-key-file', join(dir, 'tls.key')];

const refusing = await kubeconfig('refusing.yaml', `https://127.0.0.1:${String(await freePort())}`, true);

/**
 * The children run without tap's coverage hooks: writing V8 coverage of every module loaded takes a
 * second or more at exit, which is the test's cost, not wave's, and would eat the bounds measured here.
 */
const uninstrumented = { ...process.env };
delete uninstrumented['NODE_OPTIONS'];
delete uninstrumented['NODE_V8_COVERAGE'];

function serve(args: readonly string[], env: NodeJS.ProcessEnv = uninstrumented): WaveChild {
  const wave = spawnWave(
    ['serve', '--bind-address', '127.0.0.1', '--webhook-port', '0', '--health-port', '0', ...args],
    env,
  );
  t.teardown(() => {
    if (wave.child.exitCode === null && wave.child.signalCode === null) wave.child.kill('SIGKILL');
  });
  return wave;
}

/**
 * How long this machine takes just to start `wave serve` and exit (`--help` loads every module serve
 * needs): on a quiet machine well under a second, so the bound is fatalExitMs; on a machine so loaded that
 * starting node alone takes seconds, the bound grows by that, and still tells an exit from staying up.
 */
async function startupFloorMs(): Promise<number> {
  const wave = spawnWave(['serve', '--help'], uninstrumented);
  const exit = await wave.exited;
  return exit.at - wave.spawnedAt;
}
const fatalBoundMs = Math.max(fatalExitMs, (await startupFloorMs()) + 2000);

/** A start-up that must fail: exit status 1 within fatalBoundMs, one line on stderr. */
async function fails(t: Test, args: readonly string[]): Promise<string> {
  const wave = serve(args);
  const exit = await wave.exited;
  const ms = exit.at - wave.spawnedAt;
  t.equal(exit.code, 1, 'exit status 1');
  t.ok(
    ms < fatalBoundMs,
    `exited ${ms.toFixed(0)} ms after it was started (bound ${fatalBoundMs.toFixed(0)})`,
  );
  const lines = wave.stderr().trimEnd().split('\n');
  t.equal(lines.length, 1, `one line on stderr: ${wave.stderr()}`);
  t.match(lines[0], /^wave serve: /);
  return lines[0] ?? '';
}

t.test('a kubeconfig whose server is plain http:// without insecure-skip-tls-verify', async (t) => {
  const file = await kubeconfig('http.yaml', 'http://127.0.0.1:1234', false);
  const line = await fails(t, ['--kubeconfig', file, ...certificate]);
  t.match(line, file, 'names the kubeconfig');
  t.match(line, 'http://127.0.0.1:1234 uses plain HTTP', 'names the server');
  t.match(line, /use https, or set insecure-skip-tls-verify: true/, 'says what to do');
});

t.test('a kubeconfig file that does not exist', async (t) => {
  const missing = join(dir, 'absent.yaml');
  const line = await fails(t, ['--kubeconfig', missing, ...certificate]);
  t.match(line, `cannot read the kubeconfig ${missing} (ENOENT)`);
  t.match(line, /pass --kubeconfig/);
});

t.test('a kubeconfig whose current context names no cluster', async (t) => {
  const file = join(dir, 'no-cluster.yaml');
  await writeFile(file, 'apiVersion: v1\nkind: Config\ncurrent-context: gone\n');
  const line = await fails(t, ['--kubeconfig', file, ...certificate]);
  t.match(line, /has no current cluster .*"gone".*set current-context/);
});

t.test('certificate files that cannot be read', async (t) => {
  const cert = join(dir, 'missing', 'tls.crt');
  const key = join(dir, 'missing', 'tls.key');
  const line = await fails(t, ['--kubeconfig', refusing, '--tls-cert-file', cert, '--tls-key-file', key]);
  t.match(line, `cannot serve TLS from ${cert} and ${key}: ENOENT`, 'names the files');
  t.match(line, /check --tls-cert-file and --tls-key-file .* or use --self-signed/, 'says what to do');
});

t.test('a port in use', async (t) => {
  const holder = createServer();
  await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise((resolve) => holder.close(resolve)));
  const { port } = holder.address() as AddressInfo;
  const line = await fails(t, ['--kubeconfig', refusing, ...certificate, '--webhook-port', String(port)]);
  t.match(line, `cannot listen on 127.0.0.1:${String(port)} for the webhook (--webhook-port)`);
  t.match(line, /in use: stop the process holding it, or choose another port/);
});

t.test('an apiserver that refuses connections past --startup-timeout', async (t) => {
  const wave = serve(['--kubeconfig', refusing, ...certificate, '--startup-timeout', '1s']);
  const retried = await wave.logged('the apiserver does not answer yet; retrying until --startup-timeout');
  const retriedAt = performance.now();
  t.match(retried, { attempt: 1, error: /ECONNREFUSED|no bytes/ }, 'each attempt is logged with its error');
  const exit = await wave.exited;
  t.equal(exit.code, 1);
  const ms = exit.at - retriedAt;
  t.ok(ms < 3000, `gave up ${ms.toFixed(0)} ms after the first failed attempt (--startup-timeout 1s)`);
  t.match(
    wave.stderr(),
    /^wave serve: cannot reach the apiserver at https:\/\/127\.0\.0\.1:\d+ \(.+\) after \d+ attempts? in 1s/,
  );
  t.match(wave.stderr(), /raise --startup-timeout\n$/);
  t.equal(wave.stderr().split('\n').length, 2, 'one line');
});

t.test('SIGTERM while waiting for an apiserver ends it at once', async (t) => {
  const wave = serve(['--kubeconfig', refusing, ...certificate]);
  await wave.logged('the apiserver does not answer yet; retrying until --startup-timeout');
  const exit = await wave.signal('SIGTERM');
  t.equal(exit.code, 0, 'a graceful exit');
  t.ok(exit.ms < signalExitMs, `exited ${exit.ms.toFixed(0)} ms after SIGTERM`);
  t.ok(
    wave.logLines().some((l) => l['msg'] === 'stopped'),
    'the shutdown ran to its end',
  );
  t.equal(wave.stderr(), '');
});

/** A fake apiserver that answers /version and hangs every other request: nothing ever syncs. */
async function hangingApiserver(t: Test, more?: Responder): Promise<FakeApiServer> {
  const fake = await FakeApiServer.start((request, response) => {
    if (request.path === '/version') response.json(200, { major: '1', minor: '34' });
    else if (more !== undefined) more(request, response);
    else response.hang();
  });
  t.teardown(() => fake.close());
  return fake;
}

t.test('SIGTERM while the caches sync and every API request hangs ends it within 10 s', async (t) => {
  // Resolves once every watch has sent its first list and the elector its read of the Lease.
  let allHanging: () => void = () => undefined;
  const hanging = new Promise<void>((resolve) => (allHanging = resolve));
  const paths: string[] = [];
  const fake = await hangingApiserver(t, (request, response) => {
    paths.push(request.path);
    const lists = paths.filter((p) => p.endsWith('/configmaps')).length;
    if (lists === 2 && paths.some((p) => p.includes('/leases/'))) allHanging();
    response.hang();
  });
  const file = await kubeconfig('hanging.yaml', fake.url, true);
  const wave = serve(['--kubeconfig', file, ...certificate, '--namespaces', 'a,b']);
  await Promise.race([
    hanging,
    wave.exited.then(() => {
      throw new Error(`wave exited before its requests hung:\n${wave.output()}`);
    }),
  ]);
  const exit = await wave.signal('SIGTERM');
  t.equal(exit.code, 0);
  t.ok(exit.ms < signalExitMs, `exited ${exit.ms.toFixed(0)} ms after SIGTERM`);
  t.ok(
    wave.logLines().some((l) => l['msg'] === 'stopped'),
    'the shutdown ran to its end',
  );
});

t.test('after a failure whose shutdown hangs, it still exits 1 within 10 s; SIGTERM then too', async (t) => {
  // Registering the webhook fails (500); deleting the configuration at shutdown hangs, like every watch.
  const failing = async (name: string) => {
    let calls = 0;
    const fake = await hangingApiserver(t, (request, response) => {
      if (request.path.includes('mutatingwebhookconfigurations') && ++calls === 1) {
        response.status(500, 'InternalError', 'etcd is down');
      } else {
        response.hang();
      }
    });
    const file = await kubeconfig(name, fake.url, true);
    const registering = ['--ca-file', join(dir, 'ca.crt'), '--register-webhook', '--no-leader-election'];
    return serve(['--kubeconfig', file, ...certificate, ...registering]);
  };
  const check = async (wave: WaveChild, signal: boolean) => {
    await wave.logged(/^shutting down after a failure: cannot register/);
    const failedAt = performance.now();
    const exit = signal ? await wave.signal('SIGTERM') : await wave.exited;
    const label = signal ? 'SIGTERM during the shutdown' : 'no signal';
    t.equal(exit.code, 1, `${label}: exit status 1`);
    const ms = exit.at - failedAt;
    t.ok(ms < signalExitMs, `${label}: exited ${ms.toFixed(0)} ms after the failure`);
    t.match(
      wave.stderr(),
      /^wave serve: cannot register the webhook \(--register-webhook\): .*HTTP 500: etcd is down\n$/,
      `${label}: one line naming the failure`,
    );
  };
  // Side by side: each spends its time waiting for a shutdown deadline, not on the CPU.
  await Promise.all([
    check(await failing('failing-alone.yaml'), false),
    check(await failing('failing-signalled.yaml'), true),
  ]);
});

t.test(
  'an uncaught exception or unhandled rejection shuts it down with exit status 1 and one line',
  async (t) => {
    // A preload that turns SIGUSR2 into an uncaught exception and SIGHUP into an unhandled rejection.
    const inject = [
      "process.on('SIGUSR2', () => { throw new Error('injected exception'); });",
      "process.on('SIGHUP', () => { void Promise.reject(new Error('injected rejection')); });",
    ].join('');
    const env = {
      ...uninstrumented,
      NODE_OPTIONS: `--import=data:text/javascript,${encodeURIComponent(inject)}`,
    };
    const injected = async (signal: NodeJS.Signals, what: string) => {
      const wave = serve(['--kubeconfig', refusing, ...certificate], env);
      await wave.logged('the apiserver does not answer yet; retrying until --startup-timeout');
      const exit = await wave.signal(signal);
      t.equal(exit.code, 1, `${what}: exit status 1`);
      t.ok(exit.ms < signalExitMs, `${what}: exited ${exit.ms.toFixed(0)} ms after it`);
      t.equal(wave.stderr(), `wave serve: internal error: injected ${what}\n`, `${what}: one line`);
      t.ok(
        wave.logLines().some((l) => l['msg'] === 'uncaught error: shutting down' && l['level'] === 'fatal'),
        `${what}: logged as fatal`,
      );
    };
    // Side by side: both mostly wait for their apiserver.
    await Promise.all([injected('SIGUSR2', 'exception'), injected('SIGHUP', 'rejection')]);
  },
);

t.test('a second SIGTERM while the shutdown waits on a hung request exits at once', async (t) => {
  // The registration never answers, so the shutdown waits for it up to its deadline.
  const fake = await hangingApiserver(t);
  const file = await kubeconfig('second-signal.yaml', fake.url, true);
  const registering = ['--ca-file', join(dir, 'ca.crt'), '--register-webhook', '--no-leader-election'];
  const wave = serve(['--kubeconfig', file, ...certificate, ...registering]);
  await wave.logged('the apiserver answers');
  wave.child.kill('SIGTERM');
  await wave.logged('shutting down: no new admissions, finishing in-flight work');
  const exit = await wave.signal('SIGTERM');
  t.equal(exit.code, 143, 'exit status 128 + SIGTERM: not the graceful 0');
  t.ok(
    wave.logLines().some((l) => l['msg'] === 'second signal while shutting down: exiting at once'),
    'says why',
  );
  t.notOk(
    wave.logLines().some((l) => l['msg'] === 'stopped'),
    'without waiting for the shutdown',
  );
});
