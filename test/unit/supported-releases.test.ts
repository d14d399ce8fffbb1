// The Kubernetes releases wave supports are the ones its tests run on: the modules under
// test/cluster/k8s/ (make test on the newest, CI's API-surface tests on the oldest). The chart and the
// READMEs state that range, and change with it.
import { readdirSync, readFileSync } from 'node:fs';
import t from 'tap';
import { parse } from 'yaml';

const root = new URL('../../', import.meta.url);
const read = (path: string) => readFileSync(new URL(path, root), 'utf8');

const minors = readdirSync(new URL('test/cluster/k8s/', root))
  .map((name) => name.split('.').map(Number) as [number, number])
  .sort(([a1, a2], [b1, b2]) => a1 - b1 || a2 - b2);
const [oldestMajor, oldestMinor] = minors[0] ?? [0, 0];
const [newestMajor, newestMinor] = minors.at(-1) ?? [0, 0];
const range = `${oldestMajor}.${oldestMinor} to ${newestMajor}.${newestMinor}`;

t.test('the control plane is built for at least two releases, oldest and newest', (t) => {
  t.ok(minors.length >= 2, `releases: ${minors.map((m) => m.join('.')).join(', ')}`);
  for (const [major, minor] of minors) {
    const mod = read(`test/cluster/k8s/${major}.${minor}/go.mod`);
    t.match(
      mod,
      new RegExp(`^\\s*k8s\\.io/kubernetes v${major}\\.${minor}\\.\\d+$`, 'm'),
      `${major}.${minor} builds it`,
    );
  }
  t.end();
});

t.test("the chart's kubeVersion is the tested range", (t) => {
  const chart = parse(read('manifests/helm/wave/Chart.yaml')) as { kubeVersion: string };
  t.equal(chart.kubeVersion, `>=${oldestMajor}.${oldestMinor}.0-0 <${newestMajor}.${newestMinor + 1}.0-0`);
  t.end();
});

for (const file of ['README.md', 'manifests/README.md', 'manifests/helm/wave/README.md']) {
  t.test(`${file} states the supported range`, (t) => {
    t.ok(read(file).includes(`Kubernetes ${range}`), `says "Kubernetes ${range}"`);
    t.end();
  });
}
