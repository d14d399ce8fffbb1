// LeaderElector.stop() against a scripted Lease API: it never waits on a read, never writes once
// stopped, waits for a write in flight and then hands the Lease back.
import t from 'tap';
import { ApiException } from '@kubernetes/client-node';
import type { CoordinationV1Api, V1Lease } from '@kubernetes/client-node';
import { LeaderElector } from '../../src/kube/lease.ts';
import { createLogger } from '../../src/log.ts';
import { FakeClock } from './support/fake-clock.ts';

interface Calls {
  read: number;
  replace: number;
}

/** An elector whose Lease API is `api`: only the methods a test scripts. Its clock never moves: no retry. */
function elector(api: Record<string, unknown>) {
  return new LeaderElector({
    api: api as unknown as CoordinationV1Api,
    namespace: 'ns',
    name: 'wave-leader',
    identity: 'me',
    leaseDurationMs: 15_000,
    renewDeadlineMs: 10_000,
    retryPeriodMs: 2000,
    logger: createLogger({ level: 'silent' }),
    onStartedLeading: () => undefined,
    onStoppedLeading: () => undefined,
    clock: new FakeClock(),
  });
}

const heldByOther = (): V1Lease => ({
  metadata: { name: 'wave-leader', namespace: 'ns', resourceVersion: '1' },
  spec: { holderIdentity: 'other', leaseDurationSeconds: 15, renewTime: new Date() },
});

t.test('a standby whose read of the Lease hangs stops at once, and writes nothing', async (t) => {
  const calls: Calls = { read: 0, replace: 0 };
  let answer: ((lease: V1Lease) => void) | undefined;
  const candidate = elector({
    readNamespacedLease: () => {
      calls.read += 1;
      return new Promise<V1Lease>((resolve) => (answer = resolve));
    },
    replaceNamespacedLease: () => {
      calls.replace += 1;
      return Promise.resolve(heldByOther());
    },
  });
  candidate.start();
  await t.resolves(candidate.stop(), 'stop() resolves while the read hangs');
  t.equal(calls.read, 1, 'no read to hand the Lease back: it never wrote it');
  // The read comes back (an expired Lease it could take) after the stop: no write follows.
  answer?.({ metadata: { resourceVersion: '1' }, spec: { holderIdentity: '', leaseDurationSeconds: 1 } });
  await new Promise((resolve) => setImmediate(resolve));
  t.equal(calls.replace, 0, 'nothing is written once stopped');
});

t.test('a write in flight is waited for, then the Lease is handed back', async (t) => {
  let lease: V1Lease | undefined;
  let finishWrite: (() => void) | undefined;
  const writes: (string | undefined)[] = [];
  const candidate = elector({
    readNamespacedLease: () =>
      lease === undefined
        ? Promise.reject(new ApiException(404, 'not found', {}, {}))
        : Promise.resolve(structuredClone(lease)),
    createNamespacedLease: ({ body }: { body: V1Lease }) =>
      new Promise<V1Lease>((resolve) => {
        finishWrite = () => {
          lease = body;
          resolve(body);
        };
      }),
    replaceNamespacedLease: ({ body }: { body: V1Lease }) => {
      writes.push(body.spec?.holderIdentity);
      lease = body;
      return Promise.resolve(body);
    },
  });
  candidate.start();
  await new Promise((resolve) => setImmediate(resolve));
  t.ok(finishWrite, 'the candidate is creating the Lease');
  const stopping = candidate.stop();
  finishWrite?.();
  await stopping;
  t.same(writes, [''], 'after its create landed, stop() wrote the Lease back with no holder');
});
