// Leader election against the real apiserver's Lease API.
import t from 'tap';
import { CoordinationV1Api } from '@kubernetes/client-node';
import { LeaderElector } from '../../src/kube/lease.ts';
import { createLogger } from '../../src/log.ts';
import { clusterClients, freshNamespace, waitFor } from '../support/cluster.ts';

t.test('one of two candidates leads; when it steps down the other takes over at once', async (t) => {
  const namespace = await freshNamespace(t, 'lease');
  const api = clusterClients().kc.makeApiClient(CoordinationV1Api);
  const leading = new Set<string>();
  const candidates = ['a', 'b'].map(
    (identity) =>
      new LeaderElector({
        api,
        namespace,
        name: 'wave-leader',
        identity,
        leaseDurationMs: 4000,
        renewDeadlineMs: 3000,
        retryPeriodMs: 300,
        logger: createLogger({ level: 'silent' }),
        onStartedLeading: () => leading.add(identity),
        onStoppedLeading: () => leading.delete(identity),
      }),
  );
  t.teardown(() => Promise.all(candidates.map((c) => c.stop())));
  for (const c of candidates) c.start();

  await waitFor('a leader', () => leading.size === 1);
  await new Promise((resolve) => setTimeout(resolve, 1500));
  t.equal(leading.size, 1, 'still exactly one leader after several renewals');
  const first = candidates.find((c) => c.isLeader);
  const second = candidates.find((c) => !c.isLeader);
  const lease = await api.readNamespacedLease({ name: 'wave-leader', namespace });
  t.equal(lease.spec?.holderIdentity, [...leading][0], 'the Lease names the leader');

  const handedOver = Date.now();
  await first?.stop();
  await waitFor('the standby to lead', () => second?.isLeader === true, { timeoutMs: 3000 });
  const ms = Date.now() - handedOver;
  t.ok(ms < 4000, `the standby led ${ms} ms after the leader stepped down, before the Lease would expire`);
  const after = await api.readNamespacedLease({ name: 'wave-leader', namespace });
  t.equal(after.spec?.leaseTransitions, 1, 'one transition recorded');
});
