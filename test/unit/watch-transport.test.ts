// The pieces under the reflector: splitting a byte stream into JSON lines, reading Retry-After, the
// backoff's growth, cap and jitter, and how a failed answer becomes an error that says what happened.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import t from 'tap';
import { KubeConfig } from '@kubernetes/client-node';
import { sleep } from '../../src/clock.ts';
import { Backoff } from '../../src/kube/backoff.ts';
import { ApiStatusError, KubeTransport, LineSplitter, retryAfterMs } from '../../src/kube/transport.ts';
import { FakeClock } from './support/fake-clock.ts';

t.test('lines are split wherever chunks break them, even inside a UTF-8 character', (t) => {
  const text = '{"a":"ü"}\n\n{"b":"名前"}\n{"c":1}\n{"partial"';
  const bytes = Buffer.from(text, 'utf8');
  for (const size of [1, 2, 3, 7, bytes.length]) {
    const splitter = new LineSplitter();
    const lines: string[] = [];
    for (let i = 0; i < bytes.length; i += size) lines.push(...splitter.push(bytes.subarray(i, i + size)));
    t.same(lines, ['{"a":"ü"}', '{"b":"名前"}', '{"c":1}'], `chunks of ${size} bytes; empty lines skipped`);
  }
  t.end();
});

t.test('Retry-After is read as seconds or as an HTTP date', (t) => {
  const now = Date.parse('2026-01-01T00:00:00Z');
  t.equal(retryAfterMs({ 'retry-after': '3' }, now), 3000);
  t.equal(retryAfterMs({ 'retry-after': 'Thu, 01 Jan 2026 00:00:05 GMT' }, now), 5000);
  t.equal(
    retryAfterMs({ 'retry-after': 'Wed, 31 Dec 2025 00:00:05 GMT' }, now),
    0,
    'a date in the past: now',
  );
  t.equal(retryAfterMs({ 'retry-after': 'soon' }, now), undefined);
  t.equal(retryAfterMs({}, now), undefined);
  t.end();
});

t.test('the backoff doubles from its initial delay to its cap, with jitter in the upper half', (t) => {
  const low = new Backoff({ initialMs: 100, maxMs: 1000, random: () => 0 });
  t.same(
    Array.from({ length: 6 }, () => low.next()),
    [50, 100, 200, 400, 500, 500],
  );
  const high = new Backoff({ initialMs: 100, maxMs: 1000, random: () => 0.999 });
  t.same(
    Array.from({ length: 6 }, () => high.next()),
    [100, 200, 400, 800, 1000, 1000],
  );
  t.equal(high.failures, 6);
  high.reset();
  t.equal(high.next(), 100, 'after a reset the series starts again');
  const defaults = new Backoff({ random: () => 0.999 });
  t.equal(defaults.next(), 800, "client-go's defaults: 800 ms first");
  for (let i = 0; i < 100; i++) defaults.next();
  const last = defaults.next();
  t.ok(last > 29_900 && last <= 30_000, `30 s at most, even after many failures (${last})`);
  t.end();
});

t.test('sleep ends when its time has passed on its clock, or as soon as its signal aborts', async (t) => {
  const clock = new FakeClock();
  let woke = false;
  const sleeping = sleep(clock, 10_000).then(() => (woke = true));
  await clock.advanceBy(9_999);
  t.notOk(woke, 'still asleep 1 ms before its time');
  await clock.advanceBy(1);
  t.ok(woke, 'awake at its time');
  await sleeping;

  const controller = new AbortController();
  const aborted = sleep(clock, 10_000, controller.signal);
  t.same(clock.pending, [10_000]);
  controller.abort();
  await aborted;
  t.same(clock.pending, [], 'the abort resolved it without the clock moving, and cancelled its timer');
  await sleep(clock, 10_000, controller.signal);
  t.same(clock.pending, [], 'an aborted signal resolves at once');
});

t.test('a failed answer becomes an ApiStatusError with the Status message, never the body', async (t) => {
  const server = http.createServer((req, res) => {
    if (req.url?.startsWith('/forbidden') === true) {
      res.writeHead(403, { 'Content-Type': 'application/json' });
      res.end(
        JSON.stringify({
          kind: 'Status',
          code: 403,
          reason: 'Forbidden',
          message: 'secrets is forbidden: User "wave" cannot list resource "secrets"',
        }),
      );
    } else {
      res.writeHead(502, { 'Content-Type': 'text/html' });
      res.end('<html>bad gateway from some proxy</html>');
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    server.close();
  });
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [
      {
        name: 'c',
        server: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`,
        skipTLSVerify: true,
      },
    ],
    users: [{ name: 'u' }],
    contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
    currentContext: 'x',
  });
  const transport = new KubeTransport(kc);
  const options = { accept: 'application/json', signal: new AbortController().signal, silenceMs: 5_000 };

  const forbidden = await transport.getJson('/forbidden', options).catch((err: unknown) => err);
  t.ok(forbidden instanceof ApiStatusError);
  if (forbidden instanceof ApiStatusError) {
    t.equal(forbidden.status, 403);
    t.equal(forbidden.reason, 'Forbidden');
    t.match(forbidden.message, /^HTTP 403 Forbidden: secrets is forbidden: User "wave" cannot list/);
  }
  const proxy = await transport.getJson('/other', options).catch((err: unknown) => err);
  t.ok(proxy instanceof ApiStatusError);
  if (proxy instanceof ApiStatusError)
    t.equal(proxy.message, 'HTTP 502 Bad Gateway', 'an HTML page is not quoted');
  t.equal(
    transport.server,
    `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    'trailing slash dropped',
  );
});

t.test('a kubeconfig without a current cluster is refused with what to do', (t) => {
  t.throws(() => new KubeTransport(new KubeConfig()), /no current cluster: set current-context/);
  t.end();
});
