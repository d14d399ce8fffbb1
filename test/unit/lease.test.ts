// LeaderElector's timing on a fake clock against a scripted Lease API: a standby takes over the moment
// the Lease it watched expires, and a leader that cannot renew steps down at its renew deadline exactly.
import t from 'tap';
import { ApiException } from '@kubernetes/client-node';
import type { CoordinationV1Api, V1Lease } from '@kubernetes/client-node';
import { LeaderElector } from '../../src/kube/lease.ts';
import { createLogger } from '../../src/log.ts';
import { FakeClock } from './support/fake-clock.ts';

/** An elector on `clock` whose Lease API is `api`, recording when it gained and lost leadership. */
function elector(api: Record<string, unknown>, clock: FakeClock) {
  const changes: [string, number][] = [];
  const candidate = new LeaderElector({
    api: api as unknown as CoordinationV1Api,
    namespace: 'ns',
    name: 'wave-leader',
    identity: 'me',
    leaseDurationMs: 15_000,
    renewDeadlineMs: 10_000,
    retryPeriodMs: 2000,
    logger: createLogger({ level: 'silent' }),
    onStartedLeading: () => changes.push(['started', clock.now()]),
    onStoppedLeading: () => changes.push(['stopped', clock.now()]),
    clock,
  });
  return { candidate, changes };
}

t.test('a standby takes the Lease the moment it expires as its own clock counts', async (t) => {
  const clock = new FakeClock();
  const reads: number[] = [];
  const writes: (string | undefined)[] = [];
  // Held by a replica that never renews again: the same record at every read.
  const lease: V1Lease = {
    metadata: { name: 'wave-leader', namespace: 'ns', resourceVersion: '1' },
    spec: { holderIdentity: 'other', leaseDurationSeconds: 15, renewTime: new Date(0) },
  };
  const { candidate, changes } = elector(
    {
      readNamespacedLease: () => {
        reads.push(clock.now());
        return Promise.resolve(structuredClone(lease));
      },
      replaceNamespacedLease: ({ body }: { body: V1Lease }) => {
        writes.push(body.spec?.holderIdentity);
        return Promise.resolve(body);
      },
    },
    clock,
  );
  t.teardown(() => candidate.stop());
  candidate.start();
  await clock.advanceBy(14_999);
  t.same(changes, [], 'not the leader 1 ms before the Lease expires');
  t.same(writes, [], 'nor did it write the Lease');
  await clock.advanceBy(1);
  t.same(changes, [['started', 15_000]], 'the leader at 15 s, the lease duration after its first read');
  t.same(writes, ['me']);
  t.same(
    reads,
    [0, 2000, 4000, 6000, 8000, 10_000, 12_000, 14_000, 15_000],
    'read every retry period, then again at the expiry rather than a retry period after it',
  );
  t.ok(candidate.isLeader);
});

t.test('a leader that cannot renew steps down at its renew deadline, not at a later tick', async (t) => {
  const clock = new FakeClock();
  let created = false;
  const { candidate, changes } = elector(
    {
      readNamespacedLease: () =>
        Promise.reject(
          created
            ? new ApiException(500, 'etcd is down', {}, {})
            : new ApiException(404, 'not found', {}, {}),
        ),
      createNamespacedLease: ({ body }: { body: V1Lease }) => {
        created = true;
        return Promise.resolve(body);
      },
    },
    clock,
  );
  t.teardown(() => candidate.stop());
  candidate.start();
  await clock.advanceBy(0);
  t.same(changes, [['started', 0]], 'it created the Lease and leads');
  await clock.advanceBy(10_000);
  t.ok(candidate.isLeader, 'still the leader at the renew deadline itself');
  await clock.advanceBy(1);
  t.same(
    changes,
    [
      ['started', 0],
      ['stopped', 10_001],
    ],
    'gave leadership up 1 ms after the deadline',
  );
  t.notOk(candidate.isLeader);
});
