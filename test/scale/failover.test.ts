// Failover at scale: 2,000 opted-in Deployments (replicas 0), each consuming a ConfigMap of its own and
// one shared Secret, two replicas with leader election, the leader killed with SIGKILL. A standby must be
// warm: it holds the same consumed data as the leader before any failover (acceptance 0), so the new
// leader rolls a change written right after the takeover within a second of it (a) and reads no
// ConfigMap or Secret whose data it already held (b). The scenario is test/support/failover.ts (shared
// with bench/failover.ts); see there how each wave's requests are counted through a proxy of its own.
//
// "The takeover" is the `time` of the new leader's 'became the leader' log line: the moment its Lease write
// succeeded and it started leading, the earliest moment anything can be asked of it. The test also
// reports when it first read wave_leader 1 from it (polled every 50 ms).
import t from 'tap';
import { configHashAnnotation } from '../../src/core/annotations.ts';
import { clusterClients, freshNamespace, kubeconfigPath, waitFor } from '../support/cluster.ts';
import { apiserverDelta, describeFailover, runFailover } from '../support/failover.ts';

const deployments = 2000;
/** The window after the takeover whose requests are counted. */
const windowMs = 30_000;

// Creating 4,001 objects, stamping 2,000 Deployments, a 15 s lease and a 30 s window on a 2-core machine.
t.setTimeout(20 * 60_000);

t.test(
  `${String(deployments)} Deployments, the leader killed: the standby was warm, rolls a change within 1 s of the takeover and reads no data it held`,
  async (t) => {
    const started = Date.now();
    const namespace = await freshNamespace(t, 'failover');
    const r = await runFailover({
      t,
      kubeconfig: kubeconfigPath,
      namespace,
      deployments,
      concurrency: 32,
      windowMs,
      standbySettleMs: 30_000,
      startTimeoutMs: 120_000,
      timeoutMs: 300_000,
      progress: (line) => {
        t.comment(`[${String(Math.round((Date.now() - started) / 1000))} s] ${line}`);
      },
    });
    for (const line of describeFailover(r)) t.comment(line);

    // Acceptance 0: before any failover, the standby holds what the leader holds.
    t.same(
      r.leaderGauges,
      {
        configMapObjects: deployments,
        configMapBytes: r.leaderGauges.configMapBytes,
        secretObjects: 1,
        secretBytes: r.leaderGauges.secretBytes,
      },
      'the leader holds the data of every consumed ConfigMap and of the shared Secret',
    );
    t.ok(r.leaderGauges.configMapBytes > 0 && r.leaderGauges.secretBytes > 0, 'and counts their bytes');
    t.same(
      r.standbyGauges,
      r.leaderGauges,
      'before any failover the standby holds the same consumed data (wave_cache_objects/bytes, form data) as the leader',
    );

    // The takeover itself: within the 15 s lease duration (plus the 2 s retry period) of the kill.
    const takeoverMs = r.takeoverLoggedAt - r.killedAt;
    t.ok(
      takeoverMs > 0 && takeoverMs <= 17_000,
      `the standby took over ${String(takeoverMs)} ms after SIGKILL`,
    );

    // (a) A change written right after the takeover is rolled within 1 s of it, with the right hash.
    t.ok(r.writeSentAt - r.takeoverLoggedAt < 500, 'the change was written right after the takeover');
    t.not(r.hashAfter, undefined, `${r.changedDeployment} got a new hash`);
    t.equal(r.hashAfter, r.hashExpected, 'the hash `wave hash -f` computes from the changed ConfigMap');
    t.not(r.hashExpected, r.hashBefore, 'which differs from the one before');
    const rolledMs = r.hashSeenAt - r.takeoverLoggedAt;
    t.ok(rolledMs <= 1000, `the new hash was seen ${String(rolledMs)} ms after the takeover (≤ 1000 ms)`);
    // A template change makes a new ReplicaSet even with replicas 0 (kube-controller-manager may still be
    // working through the 2,000 of the first stamping).
    const { apps } = clusterClients();
    const newReplicaSet = await waitFor(
      `a ReplicaSet of ${r.changedDeployment} with the new hash`,
      async () => {
        const list = await apps.listNamespacedReplicaSet({
          namespace,
          labelSelector: `app=${r.changedDeployment}`,
        });
        return list.items.some(
          (rs) => rs.spec?.template?.metadata?.annotations?.[configHashAnnotation] === r.hashExpected,
        );
      },
      { timeoutMs: 120_000, intervalMs: 1000 },
    ).catch(() => false);
    t.ok(newReplicaSet, 'kube-controller-manager made a ReplicaSet of the new template');

    // (b) No GET of a ConfigMap or Secret whose data the new leader held, counted exactly on its own
    // requests (its proxy). Its one read of the changed ConfigMap is data it could not hold.
    const held = r.heldDataGets.map((g) => `${g.resource}/${g.name ?? ''}`);
    t.equal(
      held.length,
      0,
      `from the kill to the end of the window the new leader GETs no ConfigMap or Secret it held (it GOT ${String(held.length)}${held.length === 0 ? '' : `: ${held.slice(0, 5).join(', ')}${held.length > 5 ? ', …' : ''}`})`,
    );
    // The apiserver's counter covers every client; in this control plane nothing but wave GETs
    // ConfigMaps or Secrets one by one (kube-controller-manager and kube-scheduler read them through
    // informers: LIST and WATCH), so what the apiserver counted over the window is wave's reads, unless
    // another test file runs against the same control plane at the same time.
    const apiserverGets = r.apiserverAtWindowEnd.configGets - r.apiserverBeforeKill.configGets;
    const waveGets = r.heldDataGets.length + r.changedGets;
    t.ok(
      apiserverGets >= waveGets,
      `the apiserver counted at least the new leader's GETs (${String(apiserverGets)} ≥ ${String(waveGets)})`,
    );
    t.comment(
      `apiserver GET configmaps+secrets from the kill to the end of the window: ${String(apiserverGets)}; ` +
        `sent by the new leader: ${String(waveGets)}; by other clients: ${String(apiserverGets - waveGets)}`,
    );
    t.comment(
      `all apiserver requests from the kill to the end of the window: ${[
        ...apiserverDelta(r.apiserverBeforeKill, r.apiserverAtWindowEnd),
      ]
        .map(([k, v]) => `${k} ${String(v)}`)
        .join(', ')}`,
    );
    t.comment(`test runtime ${String(Math.round((Date.now() - started) / 1000))} s`);
  },
);
