import https from 'node:https';
import tls from 'node:tls';
import t from 'tap';
import { createCA, createServingCert, parseCert } from '../../src/certs/pki.ts';
import type { CertificatePem } from '../../src/certs/pki.ts';
import { createLogger } from '../../src/log.ts';
import { Metrics } from '../../src/metrics.ts';
import { buildWebhookServer, mutatePath } from '../../src/webhook/server.ts';
import { TlsFileSource } from '../../src/webhook/tls.ts';
import { secretVolume } from '../support/secret-volume.ts';
import { FakeClock } from './support/fake-clock.ts';

const now = new Date();
const ca = createCA({ commonName: 'wave-test-ca', validityDays: 30, now });
const issue = (validityDays: number) =>
  createServingCert({ ca, dnsNames: ['wave'], ipAddresses: ['127.0.0.1'], validityDays, now });
const certA = issue(10);
const certB = issue(20);
const serial = (cert: CertificatePem) => parseCert(cert.certPem).serialNumber;

/** The serial number a fresh TLS handshake presents. */
function presentedSerial(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, ca: ca.certPem }, () => {
      const serialNumber = socket.getPeerCertificate().serialNumber.toUpperCase();
      socket.end();
      resolve(serialNumber);
    });
    socket.on('error', reject);
  });
}

function tls11Handshake(port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const options = { host: '127.0.0.1', port, ca: ca.certPem, ciphers: 'DEFAULT:@SECLEVEL=0' } as const;
    const socket = tls.connect({ ...options, minVersion: 'TLSv1', maxVersion: 'TLSv1.1' }, () => {
      socket.end();
      resolve();
    });
    socket.on('error', reject);
  });
}

interface Exchange {
  status: number;
  reusedSocket: boolean;
  serial: string;
}

const review = JSON.stringify({
  apiVersion: 'admission.k8s.io/v1',
  kind: 'AdmissionReview',
  request: {
    uid: 'u-1',
    kind: { group: 'apps', version: 'v1', kind: 'Deployment' },
    operation: 'CREATE',
    object: { metadata: { name: 'web' } },
  },
});

function post(agent: https.Agent, port: number): Promise<Exchange> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: '127.0.0.1',
        port,
        path: mutatePath,
        method: 'POST',
        agent,
        headers: { 'content-type': 'application/json' },
      },
      (res) => {
        const serial = (res.socket as tls.TLSSocket).getPeerCertificate().serialNumber.toUpperCase();
        res.resume();
        res.on('end', () => {
          resolve({ status: res.statusCode ?? 0, reusedSocket: req.reusedSocket, serial });
        });
      },
    );
    req.on('error', reject);
    req.end(review);
  });
}

async function eventually(what: string, condition: () => Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

t.test('a renewed certificate is served to new connections while open ones keep working', async (t) => {
  const volume = await secretVolume();
  t.teardown(volume.remove);
  await volume.publish({ 'tls.crt': certA.certPem, 'tls.key': certA.keyPem });

  const lines: string[] = [];
  const logger = createLogger({
    level: 'info',
    destination: { write: (line: string) => void lines.push(line) },
  });
  const metrics = new Metrics({ defaultMetrics: false });
  const clock = new FakeClock(now.getTime());
  const source = await TlsFileSource.load({ ...volume, logger, metrics, pollIntervalMs: 100, clock });
  const app = buildWebhookServer({
    https: source,
    logger,
    metrics,
    admit: () => Promise.resolve({ patch: [], decision: 'skip', reason: 'test' }),
  });
  const agent = new https.Agent({ keepAlive: true, maxSockets: 1, ca: ca.certPem });
  t.teardown(async () => {
    agent.destroy();
    await app.close();
  });
  const port = Number(new URL(await app.listen({ host: '127.0.0.1', port: 0 })).port);
  const expiry = async () => (await metrics.certificateExpiry.get()).values[0]?.value;

  const first = await post(agent, port);
  t.same(first, { status: 200, reusedSocket: false, serial: serial(certA) });
  t.equal(await expiry(), parseCert(certA.certPem).notAfter.getTime() / 1000, 'the expiry gauge shows A');

  await volume.publish({ 'tls.crt': certB.certPem, 'tls.key': certB.keyPem });
  await clock.advanceBy(99);
  t.equal(await presentedSerial(port), serial(certA), 'A until the next poll');
  await clock.advanceBy(1);
  await eventually('a new handshake presents B', async () => (await presentedSerial(port)) === serial(certB));

  const onOldConnection = await post(agent, port);
  t.same(
    onOldConnection,
    { status: 200, reusedSocket: true, serial: serial(certA) },
    'the keep-alive connection opened with A still answers',
  );
  t.equal(await expiry(), parseCert(certB.certPem).notAfter.getTime() / 1000, 'the expiry gauge shows B');
  t.match(lines.join(''), `"serial":"${serial(certB)}"`, 'the change is logged with the new serial');
  await t.rejects(
    tls11Handshake(port),
    { code: 'ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION' },
    'TLS 1.1 is still refused after the reload',
  );
  t.equal(source.isServable(), true, 'B is inside its validity window on the clock');
});

t.test('invalid or half-written files keep the current certificate and are reported once', async (t) => {
  const volume = await secretVolume();
  t.teardown(volume.remove);
  await volume.publish({ 'tls.crt': certA.certPem, 'tls.key': certA.keyPem });

  const lines: string[] = [];
  const logger = createLogger({
    level: 'info',
    destination: { write: (line: string) => void lines.push(line) },
  });
  const metrics = new Metrics({ defaultMetrics: false });
  const clock = new FakeClock();
  const source = await TlsFileSource.load({ ...volume, logger, metrics, pollIntervalMs: 50, clock });
  const app = buildWebhookServer({
    https: source,
    logger,
    metrics,
    admit: () => Promise.resolve({ patch: [], decision: 'skip', reason: 'test' }),
  });
  t.teardown(() => app.close());
  const port = Number(new URL(await app.listen({ host: '127.0.0.1', port: 0 })).port);
  const rejections = () => lines.filter((line) => line.includes('cannot be served')).length;

  const badPairs = [
    {
      name: 'a key that belongs to another certificate',
      files: { 'tls.crt': certB.certPem, 'tls.key': certA.keyPem },
    },
    {
      name: 'a half-written certificate',
      files: { 'tls.crt': certB.certPem.slice(0, 400), 'tls.key': certB.keyPem },
    },
    { name: 'an empty key', files: { 'tls.crt': certB.certPem, 'tls.key': '' } },
    { name: 'garbage', files: { 'tls.crt': 'not a certificate', 'tls.key': 'not a key' } },
  ];
  for (const [index, bad] of badPairs.entries()) {
    await volume.publish(bad.files);
    await clock.advanceBy(50);
    await eventually(`${bad.name} is reported`, () => Promise.resolve(rejections() === index + 1));
    for (let poll = 0; poll < 4; poll++) {
      await clock.advanceBy(50);
      // Joins the read the poll started, so the next step begins after it.
      await source.reload();
    }
    t.equal(rejections(), index + 1, `${bad.name} is logged once although polled several times`);
    t.equal(await presentedSerial(port), serial(certA), `${bad.name}: A is still served`);
    t.equal(source.current().cert, certA.certPem);
  }
  t.match(lines.join(''), /private key is unreadable or does not belong to the certificate/);
  t.match(lines.join(''), /"servingSerial":"[0-9A-F]+"/);
  const reloads = await metrics.certificateReloads.get();
  t.equal(reloads.values.find((v) => v.labels.result === 'rejected')?.value, badPairs.length);

  await volume.publish({ 'tls.crt': certB.certPem, 'tls.key': certB.keyPem });
  await clock.advanceBy(50);
  await eventually(
    'the repaired pair is served',
    async () => (await presentedSerial(port)) === serial(certB),
  );
  t.equal(await source.reload(), 'unchanged');
});

t.test('loading files that cannot be served fails with the paths and the reason', async (t) => {
  const volume = await secretVolume();
  t.teardown(volume.remove);
  const logger = createLogger({ level: 'silent' });
  await t.rejects(TlsFileSource.load({ ...volume, logger }), {
    name: 'CertificateError',
    message: /cannot serve TLS from .*tls\.crt and .*tls\.key: ENOENT/,
  });
  await volume.publish({ 'tls.crt': certA.certPem, 'tls.key': certB.keyPem });
  await t.rejects(TlsFileSource.load({ ...volume, logger }), /does not belong to the certificate/);
});

t.test('a certificate outside its validity window is not servable', async (t) => {
  const volume = await secretVolume();
  t.teardown(volume.remove);
  await volume.publish({ 'tls.crt': certA.certPem, 'tls.key': certA.keyPem });
  const { notBefore, notAfter } = parseCert(certA.certPem);
  const clock = new FakeClock(notAfter.getTime() - 1);
  const source = await TlsFileSource.load({ ...volume, logger: createLogger({ level: 'silent' }), clock });
  t.equal(source.isServable(), true, 'servable 1 ms before its notAfter, by default as the clock reads');
  clock.advance(1);
  t.equal(source.isServable(), false, 'not at its notAfter');
  t.equal(source.isServable(new Date(notBefore.getTime() + 1000)), true);
  t.equal(source.isServable(new Date(notBefore.getTime() - 1000)), false);
  t.equal(source.isServable(notAfter), false);
});
