import type { AddressInfo } from 'node:net';
import tls from 'node:tls';
import type { SecureVersion } from 'node:tls';
import t from 'tap';
import { createLogger } from '../../src/log.ts';
import { Metrics } from '../../src/metrics.ts';
import { buildWebhookServer } from '../../src/webhook/server.ts';
import { localServingPair } from '../support/certs.ts';

const { ca, serving } = localServingPair();

const protocolVersionAlert = { code: 'ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION' };

// SECLEVEL=0 lets this client offer TLS 1.0/1.1 at all, so a refusal is the server's doing.
function handshake(port: number, minVersion: SecureVersion, maxVersion: SecureVersion): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect(
      { host: '127.0.0.1', port, ca: ca.certPem, minVersion, maxVersion, ciphers: 'DEFAULT:@SECLEVEL=0' },
      () => {
        const protocol = socket.getProtocol() ?? 'unknown';
        socket.end();
        resolve(protocol);
      },
    );
    socket.on('error', reject);
  });
}

async function listen(server: { listen(opts: { host: string; port: number }): Promise<string> }) {
  const address = await server.listen({ host: '127.0.0.1', port: 0 });
  return Number(new URL(address).port);
}

t.test('the client used here can speak TLS 1.1 to a server that allows it', async (t) => {
  const permissive = tls.createServer(
    { key: serving.keyPem, cert: serving.certPem, minVersion: 'TLSv1', ciphers: 'DEFAULT:@SECLEVEL=0' },
    (socket) => socket.end(),
  );
  await new Promise<void>((resolve) => permissive.listen(0, '127.0.0.1', resolve));
  t.teardown(() => permissive.close());
  t.equal(await handshake((permissive.address() as AddressInfo).port, 'TLSv1', 'TLSv1.1'), 'TLSv1.1');
});

t.test('the webhook refuses TLS 1.0 and 1.1 and accepts 1.2 and 1.3', async (t) => {
  const app = buildWebhookServer({
    https: { cert: serving.certPem, key: serving.keyPem },
    logger: createLogger({ level: 'silent' }),
    metrics: new Metrics({ defaultMetrics: false }),
    admit: () => Promise.resolve({ patch: [], decision: 'skip', reason: 'test' }),
  });
  t.teardown(() => app.close());
  const port = await listen(app);
  await t.rejects(handshake(port, 'TLSv1', 'TLSv1'), protocolVersionAlert, 'TLS 1.0 is refused');
  await t.rejects(handshake(port, 'TLSv1', 'TLSv1.1'), protocolVersionAlert, 'TLS 1.1 is refused');
  t.equal(await handshake(port, 'TLSv1.2', 'TLSv1.2'), 'TLSv1.2');
  t.equal(await handshake(port, 'TLSv1.3', 'TLSv1.3'), 'TLSv1.3');
});
