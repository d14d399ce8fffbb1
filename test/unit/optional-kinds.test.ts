// --argo-rollouts' discovery: a CRD that is absent costs one info line and no error; once it is served the
// kind joins the table and onServed runs, once; discovery failing is a warning and is asked again.
import t from 'tap';
import { manageWhenServed } from '../../src/cli/optional-kinds.ts';
import { kindByName } from '../../src/core/kinds.ts';
import type { WorkloadKind } from '../../src/core/kinds.ts';
import { KubeTransport } from '../../src/kube/transport.ts';
import { createLogger } from '../../src/log.ts';
import { FakeApiServer } from '../support/fake-apiserver.ts';
import { FakeClock } from './support/fake-clock.ts';

const gizmo: WorkloadKind = {
  kind: 'Gizmo',
  group: 'gizmos.example.com',
  version: 'v1',
  plural: 'gizmos',
  templatePath: ['spec', 'template'],
  aliases: [],
  replacesUnreadyPods: true,
  rollout: 'its controller rolls the pods',
  managedByWave: false,
};

const until = async (what: string, ok: () => boolean) => {
  for (let i = 0; i < 200 && !ok(); i++) await new Promise((resolve) => setTimeout(resolve, 10));
  if (!ok()) throw new Error(`timed out waiting for ${what}`);
};

t.test('absent, then failing, then served: one info line, one warning, then managed once', async (t) => {
  let answer: 'absent' | 'broken' | 'served' = 'absent';
  const fake = await FakeApiServer.start((_request, response) => {
    if (answer === 'absent')
      response.status(404, 'NotFound', 'the server could not find the requested resource');
    else if (answer === 'broken') response.status(503, 'ServiceUnavailable', 'try later');
    else
      response.json(200, {
        kind: 'APIResourceList',
        resources: [{ name: 'gizmos', kind: 'Gizmo', namespaced: true, verbs: ['list', 'watch', 'patch'] }],
      });
  });
  t.teardown(() => fake.close());
  const lines: Record<string, unknown>[] = [];
  const logger = createLogger({
    level: 'info',
    destination: { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) },
  });
  const clock = new FakeClock();
  const served: WorkloadKind[] = [];
  const stop = await manageWhenServed({
    kind: gizmo,
    flag: '--gizmos',
    transport: new KubeTransport(fake.kubeConfig()),
    clock,
    logger,
    signal: new AbortController().signal,
    intervalMs: 30_000,
    onServed: (kind) => served.push(kind),
  });
  t.teardown(stop);
  t.same(clock.pending, [30_000], 'asks again in 30 s');
  t.equal(kindByName('Gizmo'), undefined, 'not in the table while absent');
  const levels = () => lines.map((l) => l['level']);
  t.same(levels(), ['info'], 'one info line, no error');
  t.match(lines[0]?.['msg'], /serves no gizmos.example.com\/v1.*wave manages Gizmos once it is/);

  clock.advance(30_000);
  await until('the second check', () => fake.requests.length === 2);
  await until('its reschedule', () => clock.pending.length === 1);
  t.same(levels(), ['info'], 'still absent: no second line');

  answer = 'broken';
  clock.advance(30_000);
  await until('the warning', () => lines.length === 2);
  t.equal(lines[1]?.['level'], 'warn', 'discovery failing: a warning');
  await until('its reschedule', () => clock.pending.length === 1);

  answer = 'served';
  clock.advance(30_000);
  await until('onServed', () => served.length === 1);
  t.equal(served[0]?.plural, 'gizmos');
  t.equal(kindByName('Gizmo')?.group, 'gizmos.example.com', 'in the table');
  t.same(clock.pending, [], 'no more checks');
  t.equal(lines.at(-1)?.['msg'], 'managing a workload kind');
});
