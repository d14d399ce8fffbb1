// Label selectors in kubectl's text form, as --resource-label-selector takes them: what matches, and the
// message a bad one fails with.
import t from 'tap';
import { countingLabelKeys, decideChild, defaultCounting } from '../../src/core/counting.ts';
import { optInStatus } from '../../src/core/admission.ts';
import { matchesLabels, parseLabelSelector, selectorKeys } from '../../src/core/label-selector.ts';
import { parseConfigMap, parseSecret } from '../../src/core/objects.ts';
import { countingOptions } from '../../src/cli/counting-flags.ts';
import { UsageError } from '../../src/cli/flags.ts';
import { deployment, podSpec } from './support/workloads.ts';

t.test('what a selector selects, as Kubernetes decides it', (t) => {
  const rows: [string, Record<string, string> | undefined, boolean][] = [
    ['reload=yes', { reload: 'yes' }, true],
    ['reload=yes', { reload: 'no' }, false],
    ['reload=yes', undefined, false],
    ['reload==yes', { reload: 'yes' }, true],
    ['reload!=yes', { reload: 'no' }, true],
    ['reload!=yes', {}, true],
    ['reload!=yes', { reload: 'yes' }, false],
    ['reload', { reload: '' }, true],
    ['reload', { other: 'x' }, false],
    ['!reload', { other: 'x' }, true],
    ['!reload', { reload: 'x' }, false],
    ['env in (prod, stage)', { env: 'stage' }, true],
    ['env in (prod,stage)', { env: 'dev' }, false],
    ['env notin (prod,stage)', { env: 'dev' }, true],
    ['env notin (prod,stage)', {}, true],
    ['env notin (prod,stage)', { env: 'prod' }, false],
    [
      'app.kubernetes.io/part-of=shop,env in (prod,stage)',
      { 'app.kubernetes.io/part-of': 'shop', env: 'prod' },
      true,
    ],
    ['app.kubernetes.io/part-of=shop,env in (prod,stage)', { 'app.kubernetes.io/part-of': 'shop' }, false],
    ['empty=', { empty: '' }, true],
    ['', undefined, true],
  ];
  for (const [text, labels, expected] of rows) {
    t.equal(
      matchesLabels(parseLabelSelector(text), labels),
      expected,
      `${text} on ${JSON.stringify(labels)}`,
    );
  }
  t.same(selectorKeys(parseLabelSelector('a=1,b in (x),!a')), ['a', 'b'], 'the keys it reads, once each');
  t.end();
});

t.test('a bad selector is an error naming the requirement', (t) => {
  const rows: [string, RegExp][] = [
    ['reload=yes,,env=prod', /an empty requirement/],
    ['reload=yes,', /an empty requirement/],
    ['env in ()', /"env in \(\)": a set needs at least one value/],
    ['env in (a b)', /"env in \(a b\)": "a b" is not a label value/],
    ['-bad=1', /"-bad=1": "-bad" is not a label key/],
    ['reload=yes!', /"reload=yes!": "yes!" is not a label value/],
    ['a b', /"a b" is not key, !key, key=value/],
  ];
  for (const [text, message] of rows) {
    t.throws(() => parseLabelSelector(text), { name: 'LabelSelectorError', message }, text);
  }
  t.throws(
    () =>
      countingOptions({
        'reloader-annotations': false,
        'auto-reload-all': false,
        'resources-to-ignore': [],
        'resource-label-selector': 'env in ()',
      }),
    new UsageError('--resource-label-selector: "env in ()": a set needs at least one value'),
    'the flag names itself and the requirement',
  );
  t.end();
});

t.test(
  'with the flag, only selected children count, for Wave opt-ins too; absent ones are left alone',
  (t) => {
    const counting = countingOptions({
      'reloader-annotations': false,
      'auto-reload-all': false,
      'resources-to-ignore': [],
      'resource-label-selector': 'reload=yes',
    });
    t.not(counting, defaultCounting, 'the flag alone makes options of its own');
    t.same(countingLabelKeys(counting), ['reload']);
    t.same(countingLabelKeys(defaultCounting), [], 'no selector: no label is kept');
    const status = optInStatus(
      deployment({
        annotations: { 'wave.pusher.com/update-on-config-change': 'true' },
        podSpec: podSpec({ envFrom: [{ configMapRef: { name: 'app' } }] }),
      }),
      counting,
    );
    if (!status.optedIn) throw new Error('not opted in');
    const ref = { kind: 'ConfigMap' as const, namespace: 'shop', name: 'app' };
    const read = (labels: Record<string, string>) =>
      parseConfigMap(
        { metadata: { name: 'app', namespace: 'shop', labels } },
        undefined,
        countingLabelKeys(counting),
      );
    t.same(
      read({ reload: 'yes', other: 'x' })?.labels,
      { reload: 'yes' },
      'only the labels the selector reads are kept',
    );
    t.equal(read({ other: 'x' })?.labels, undefined, 'none when it has none of them');
    t.same(decideChild(status.policy, ref, read({ reload: 'yes' })), {
      counts: true,
      decidedBy: 'wave.pusher.com/update-on-config-change: "true"',
    });
    t.same(decideChild(status.policy, ref, read({ reload: 'no' })), {
      counts: false,
      decidedBy: '--resource-label-selector=reload=yes does not select it',
    });
    t.equal(
      decideChild(status.policy, ref, undefined).counts,
      true,
      'an absent child has no labels to judge',
    );
    t.equal(
      parseSecret({ metadata: { name: 'db', namespace: 'shop', labels: { reload: 'yes' } } })?.labels,
      undefined,
      'without keepLabels no label is kept',
    );
    t.end();
  },
);
