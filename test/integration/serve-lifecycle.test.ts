// `wave serve` against the real apiserver, ended by SIGTERM in each state it can be in: still starting
// while its caches sync, leading (the Lease and the webhook registration are handed back), and standing by.
// Each exit must come within 10 s of the signal, with exit status 0 and the shutdown run to its end.
import t from 'tap';
import type { Test } from 'tap';
import { AdmissionregistrationV1Api, CoordinationV1Api } from '@kubernetes/client-node';
import { clusterClients, freshNamespace } from '../support/cluster.ts';
import { startWave } from '../support/wave.ts';
import type { WaveChild } from '../support/wave.ts';

const signalExitMs = 10_000;

async function terminates(t: Test, wave: WaveChild, state: string): Promise<void> {
  const exit = await wave.signal('SIGTERM');
  t.equal(exit.code, 0, `${state}: exit status 0`);
  t.ok(exit.ms < signalExitMs, `${state}: exited ${exit.ms.toFixed(0)} ms after SIGTERM`);
  t.ok(
    wave.logLines().some((l) => l['msg'] === 'stopped'),
    `${state}: the shutdown ran to its end`,
  );
  t.notOk(
    wave.logLines().some((l) => l['msg'] === 'still running 1000 ms after shutting down: exiting'),
    `${state}: nothing was left running after the shutdown`,
  );
}

t.test('SIGTERM while starting and syncing its caches', async (t) => {
  const namespace = await freshNamespace(t, 'serve-syncing');
  const wave = await startWave(t, {
    namespaces: [namespace],
    args: ['--debounce', '200ms', '--leader-election-namespace', namespace],
    register: false,
    until: 'serving',
  });
  // The signal comes as soon as it listens: before or while its first lists are answered (the unit test
  // holds it in that state with an apiserver that never answers; here the lists are real).
  const readiness = (await fetch(`http://127.0.0.1:${String(wave.healthPort)}/readyz`)).status;
  await terminates(t, wave, `starting (readyz ${String(readiness)})`);
});

t.test(
  'SIGTERM to a standby, then to the leader: both exit, and the leader hands everything back',
  async (t) => {
    const namespace = await freshNamespace(t, 'serve-leading');
    const args = ['--debounce', '200ms', '--leader-election-namespace', namespace];
    const coordination = clusterClients().kc.makeApiClient(CoordinationV1Api);
    const holder = async () =>
      (await coordination.readNamespacedLease({ name: 'wave-leader', namespace })).spec?.holderIdentity;

    const leader = await startWave(t, { namespaces: [namespace], args });
    await leader.logged('became the leader');
    const leaderIdentity = await holder();
    t.ok(leaderIdentity, 'the first replica holds the Lease');
    const standby = await startWave(t, { namespaces: [namespace], args, register: false });
    t.notOk(
      standby.logLines().some((l) => l['msg'] === 'became the leader'),
      'the second replica stands by',
    );

    await terminates(t, standby, 'standing by');
    t.equal(await holder(), leaderIdentity, 'a standby leaving does not touch the Lease');

    await terminates(t, leader, 'leading');
    t.ok(
      leader.logLines().some((l) => l['msg'] === 'released the leader Lease'),
      'the leader released the Lease',
    );
    t.equal(await holder(), '', 'the Lease names no holder, so a standby takes over at once');
    const admission = clusterClients().kc.makeApiClient(AdmissionregistrationV1Api);
    const configurations = await admission.listMutatingWebhookConfiguration();
    t.notOk(
      configurations.items.some((c) => c.metadata?.name === leader.configuration),
      'its webhook configuration is deleted',
    );
  },
);
