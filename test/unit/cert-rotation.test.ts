// The rotation planner with an injected clock: when certificates renew, how a CA rotation steps through
// its phases, and what happens to a Secret that cannot be used.
import t from 'tap';
import type { Test } from 'tap';
import {
  createCA,
  createServingCert,
  isIssuedBy,
  parseCert,
  serviceDnsNames,
  splitPemBundle,
} from '../../src/certs/pki.ts';
import {
  phaseAnnotation,
  phaseSinceAnnotation,
  planRotation,
  renewalTime,
  rotationOptionsProblem,
} from '../../src/certs/rotation.ts';
import type { CertSecret, RotationOptions, RotationPlan, WebhookCaBundle } from '../../src/certs/rotation.ts';

const dayMs = 24 * 60 * 60 * 1000;
const t0 = new Date('2026-03-01T12:00:00.000Z');
const at = (ms: number) => new Date(t0.getTime() + ms);
const options: RotationOptions = {
  caValidityMs: 1825 * dayMs,
  certValidityMs: 90 * dayMs,
  overlapMs: 10 * 60_000,
  dnsNames: serviceDnsNames('wave', 'wave-system'),
  ipAddresses: ['127.0.0.1'],
};

interface Step {
  secret?: CertSecret | undefined;
  now: Date;
  webhooks?: readonly WebhookCaBundle[] | undefined;
  with?: Partial<RotationOptions>;
}

function plan(step: Step): RotationPlan {
  return planRotation({
    secret: step.secret,
    webhooks: step.webhooks,
    options: { ...options, ...step.with },
    now: step.now,
  });
}

/** The webhook configuration as it is after the plan was applied. */
const webhookOf = (p: RotationPlan): WebhookCaBundle[] => [
  { name: 'workloads.wave.pusher.com', caBundle: p.caBundle },
];

const kinds = (p: RotationPlan) => p.actions.map((a) => a.kind);
const data = (p: RotationPlan, key: string) => p.secret.data[key] ?? '';
const serial = (p: RotationPlan) => parseCert(data(p, 'tls.crt')).serialNumber;
const bundleCNs = (p: RotationPlan) => splitPemBundle(p.caBundle).map((pem) => parseCert(pem).subjectCN);
const trusted = (bundle: string, certPem: string) =>
  splitPemBundle(bundle).some((ca) => isIssuedBy(certPem, ca));

/** Plans again from the plan's own result, as the next CronJob run would: nothing may change. */
function assertSettled(t: Test, p: RotationPlan, now: Date, what: string) {
  const again = plan({ secret: p.secret, now, webhooks: webhookOf(p) });
  t.same(again.actions, [], `${what}: planning again changes nothing`);
  t.equal(again.secretChanged, false, `${what}: the Secret stays as it is`);
  t.same(again.webhooksToPatch, [], `${what}: the caBundle stays as it is`);
}

const created = plan({ now: t0, webhooks: [{ name: 'workloads.wave.pusher.com', caBundle: '' }] });

t.test('an absent Secret gets a CA and a serving certificate, and caBundle is filled in', (t) => {
  t.same(kinds(created), ['created', 'ca-bundle-patched']);
  t.match(created.actions[0]?.message, /^no certificates yet: created a CA \(wave-ca@\d+\)/);
  t.equal(created.secretChanged, true);
  t.same(Object.keys(created.secret.data).sort(), ['ca.crt', 'ca.key', 'tls.crt', 'tls.key']);
  t.same(created.secret.annotations, {}, 'no CA rotation in progress');
  t.equal(created.phase, 'steady');
  t.same(created.webhooksToPatch, [0]);
  t.equal(splitPemBundle(created.caBundle).length, 1);
  const serving = parseCert(data(created, 'tls.crt'));
  t.same(serving.dnsNames, options.dnsNames);
  t.same(serving.ips, ['127.0.0.1']);
  t.same(serving.notBefore, t0);
  t.same(serving.notAfter, at(90 * dayMs));
  t.ok(isIssuedBy(data(created, 'tls.crt'), created.caBundle), 'issued by the CA in ca.crt');
  const ca = parseCert(created.caBundle);
  t.equal(ca.isCA, true);
  t.same(ca.notAfter, at(1825 * dayMs));
  assertSettled(t, created, t0, 'right after creation');
  t.end();
});

t.test('the serving certificate renews exactly at 2/3 of its lifetime', (t) => {
  const due = renewalTime(parseCert(data(created, 'tls.crt')));
  t.same(due, at(60 * dayMs), '2/3 of 90 days');
  const before = plan({
    secret: created.secret,
    now: new Date(due.getTime() - 1),
    webhooks: webhookOf(created),
  });
  t.same(before.actions, [], 'one millisecond before: nothing');
  t.equal(before.secretChanged, false);
  t.match(before.notes.join('\n'), `renewal due ${due.toISOString()}`);

  const renewed = plan({ secret: created.secret, now: due, webhooks: webhookOf(created) });
  t.same(kinds(renewed), ['serving-issued']);
  t.match(renewed.actions[0]?.message, 'serving certificate renewed (2/3 of its lifetime passed)');
  t.not(serial(renewed), serial(created));
  t.equal(data(renewed, 'ca.crt'), data(created, 'ca.crt'), 'the CA stays');
  t.equal(data(renewed, 'ca.key'), data(created, 'ca.key'));
  t.same(renewed.webhooksToPatch, [], 'caBundle needs no change for a renewal');
  t.same(parseCert(data(renewed, 'tls.crt')).notBefore, due);

  const later = plan({ secret: created.secret, now: at(75 * dayMs), webhooks: webhookOf(created) });
  t.same(kinds(later), ['serving-issued'], 'after the boundary too');
  assertSettled(t, renewed, at(60 * dayMs + 1000), 'after a renewal');
  t.end();
});

t.test('--force renews the serving certificate now and leaves the CA alone', (t) => {
  const forced = plan({
    secret: created.secret,
    now: at(1000),
    webhooks: webhookOf(created),
    with: { force: true },
  });
  t.same(kinds(forced), ['serving-issued']);
  t.match(forced.actions[0]?.message, '(--force)');
  t.not(serial(forced), serial(created));
  t.equal(forced.caBundle, created.caBundle);
  t.end();
});

t.test('the CA rotates by itself at 2/3 of its lifetime', (t) => {
  const caDue = renewalTime(parseCert(created.caBundle));
  t.same(caDue, at(Math.round(1825 * dayMs * (2 / 3))));
  // Renewed just before the boundary (the old certificate expired long ago), so only the CA is due after.
  const fresh = plan({
    secret: created.secret,
    now: new Date(caDue.getTime() - 1000),
    webhooks: webhookOf(created),
  });
  t.same(kinds(fresh), ['replaced'], 'an expired serving certificate is replaced, the CA not yet due');
  t.match(fresh.actions[0]?.message, /serving certificate unusable \(tls\.crt expired at .*\): replaced/);
  const before = plan({
    secret: fresh.secret,
    now: new Date(caDue.getTime() - 1),
    webhooks: webhookOf(fresh),
  });
  t.same(before.actions, []);
  const rotating = plan({ secret: fresh.secret, now: caDue, webhooks: webhookOf(fresh) });
  t.same(kinds(rotating), ['ca-rotation-started', 'ca-bundle-patched']);
  t.match(rotating.actions[0]?.message, /^CA rotation phase 1 \(2\/3 of its lifetime passed\)/);
  t.end();
});

t.test('a CA rotation: both CAs trusted before the new one signs, the old one dropped after', (t) => {
  const { overlapMs } = options;
  const t1 = at(5 * dayMs);
  const phase1 = plan({
    secret: created.secret,
    now: t1,
    webhooks: webhookOf(created),
    with: { forceCa: true },
  });
  t.same(kinds(phase1), ['ca-rotation-started', 'ca-bundle-patched']);
  t.match(
    phase1.actions[0]?.message,
    /^CA rotation phase 1 \(--force-ca\): new CA wave-ca@\d+ added to caBundle, still serving from the old CA wave-ca@\d+$/,
  );
  t.equal(phase1.phase, 'new-ca-trusted');
  t.same(
    bundleCNs(phase1),
    [...bundleCNs(created), `wave-ca@${t1.getTime() / 1000}`],
    'old CA first, new CA appended',
  );
  t.equal(serial(phase1), serial(created), 'still serving the same certificate');
  t.equal(data(phase1, 'ca.key'), data(created, 'ca.key'), 'the old CA still signs');
  t.ok(data(phase1, 'next-ca.key').includes('PRIVATE KEY'), 'the new CA key waits in next-ca.key');
  t.same(phase1.secret.annotations, {
    [phaseAnnotation]: 'new-ca-trusted',
    [phaseSinceAnnotation]: t1.toISOString(),
  });
  t.same(phase1.webhooksToPatch, [0]);

  const waiting = plan({
    secret: phase1.secret,
    now: new Date(t1.getTime() + overlapMs - 1),
    webhooks: webhookOf(phase1),
    with: { forceCa: true },
  });
  t.same(waiting.actions, [], 'within the overlap nothing moves, --force-ca or not');
  t.match(waiting.notes.join('\n'), 'the next step waits for the overlap');
  t.match(waiting.notes.join('\n'), '--force-ca: a CA rotation is already in progress');

  const t2 = new Date(t1.getTime() + overlapMs);
  const phase2 = plan({ secret: phase1.secret, now: t2, webhooks: webhookOf(phase1) });
  t.same(kinds(phase2), ['ca-switched']);
  t.match(phase2.actions[0]?.message, /^CA rotation phase 2: serving certificate re-issued from the new CA/);
  t.equal(phase2.phase, 'serving-from-new-ca');
  t.equal(phase2.caBundle, phase1.caBundle, 'caBundle unchanged: both CAs still trusted');
  t.same(phase2.webhooksToPatch, []);
  const newCa = splitPemBundle(phase1.caBundle)[1] ?? '';
  t.ok(isIssuedBy(data(phase2, 'tls.crt'), newCa), 'the serving certificate now comes from the new CA');
  t.equal(data(phase2, 'ca.key'), data(phase1, 'next-ca.key'), 'the new CA signs from now on');
  t.equal(phase2.secret.data['next-ca.key'], undefined);
  t.same(phase2.secret.annotations, {
    [phaseAnnotation]: 'serving-from-new-ca',
    [phaseSinceAnnotation]: t2.toISOString(),
  });
  const early = plan({
    secret: phase2.secret,
    now: new Date(t2.getTime() + overlapMs - 1),
    webhooks: webhookOf(phase2),
  });
  t.same(early.actions, [], 'the old CA stays for a whole overlap');

  const t3 = new Date(t2.getTime() + overlapMs);
  const phase3 = plan({ secret: phase2.secret, now: t3, webhooks: webhookOf(phase2) });
  t.same(kinds(phase3), ['ca-retired', 'ca-bundle-patched']);
  t.match(
    phase3.actions[0]?.message,
    /^CA rotation phase 3: 1 old CA \(wave-ca@\d+\) dropped from caBundle; rotation complete/,
  );
  t.equal(phase3.caBundle, newCa);
  t.equal(serial(phase3), serial(phase2), 'the serving certificate stays');
  t.same(phase3.secret.annotations, {});
  t.equal(phase3.phase, 'steady');
  assertSettled(t, phase3, t3, 'after the rotation');

  // At every step, whatever a server presents (the old Secret or the new) is trusted by whatever caBundle
  // the apiserver holds (the old or the new): that is why no admission fails.
  const steps = [created, phase1, phase2, phase3];
  for (const [i, step] of steps.slice(1).entries()) {
    const before = steps[i] as RotationPlan;
    for (const served of [before, step]) {
      for (const bundle of [before.caBundle, step.caBundle]) {
        t.ok(trusted(bundle, data(served, 'tls.crt')), `step ${i + 1}: every served certificate is trusted`);
      }
    }
  }
  t.end();
});

t.test('a rotation without a recorded start restarts its overlap instead of skipping it', (t) => {
  const phase1 = plan({ secret: created.secret, now: t0, with: { forceCa: true } });
  const stripped = { data: phase1.secret.data, annotations: {} };
  const later = at(dayMs);
  const repaired = plan({ secret: stripped, now: later });
  t.same(kinds(repaired), ['state-repaired']);
  t.match(repaired.actions[0]?.message, 'has no recorded start: its overlap starts now');
  t.equal(repaired.secret.annotations[phaseSinceAnnotation], later.toISOString());
  t.equal(data(repaired, 'ca.key'), data(phase1, 'ca.key'), 'still in phase 1');
  t.end();
});

t.test('a next-ca.key that belongs to no CA in ca.crt is discarded', (t) => {
  const broken = { data: { ...created.secret.data, 'next-ca.key': 'garbage' }, annotations: {} };
  const repaired = plan({ secret: broken, now: t0 });
  t.same(kinds(repaired), ['state-repaired']);
  t.match(repaired.actions[0]?.message, 'next-ca.key belongs to no usable CA in ca.crt: discarded');
  t.equal(repaired.secret.data['next-ca.key'], undefined);
  t.equal(repaired.phase, 'steady');
  t.end();
});

t.test('an unusable serving pair is replaced from the same CA, saying why', (t) => {
  const otherCa = createCA({ commonName: 'someone-else', validityDays: 365, now: t0 });
  const foreign = createServingCert({
    ca: otherCa,
    dnsNames: options.dnsNames,
    ipAddresses: ['127.0.0.1'],
    validityDays: 30,
    now: t0,
  });
  const cases: [string, Record<string, string>, RegExp][] = [
    ['garbage tls.crt', { 'tls.crt': 'garbage' }, /tls\.crt: no "-----BEGIN CERTIFICATE-----" block found/],
    ['missing tls.crt', { 'tls.crt': '' }, /tls\.crt is missing/],
    [
      'a key of another certificate',
      { 'tls.key': otherCa.keyPem },
      /tls\.key is missing, unreadable or does not belong to tls\.crt/,
    ],
    [
      'a certificate from another CA',
      { 'tls.crt': foreign.certPem, 'tls.key': foreign.keyPem },
      /tls\.crt was not issued by the signing CA wave-ca@/,
    ],
  ];
  for (const [what, change, reason] of cases) {
    const secret = { data: { ...created.secret.data, ...change }, annotations: {} };
    const repaired = plan({ secret, now: at(1000), webhooks: webhookOf(created) });
    t.same(kinds(repaired), ['replaced'], what);
    t.match(repaired.actions[0]?.message, reason, `${what}: the reason is given`);
    t.match(repaired.actions[0]?.message, /: replaced with a new one from the CA wave-ca@/);
    t.equal(repaired.caBundle, created.caBundle, `${what}: the CA stays`);
    t.ok(isIssuedBy(data(repaired, 'tls.crt'), created.caBundle));
    assertSettled(t, repaired, at(2000), what);
  }
  const expired = plan({ secret: created.secret, now: at(90 * dayMs), webhooks: webhookOf(created) });
  t.match(expired.actions[0]?.message, `tls.crt expired at ${at(90 * dayMs).toISOString()}`);

  const renamed = plan({
    secret: created.secret,
    now: at(1000),
    with: { dnsNames: serviceDnsNames('wave', 'other') },
  });
  t.same(kinds(renamed), ['replaced']);
  t.match(
    renamed.actions[0]?.message,
    /tls\.crt names \[wave, .*\] differ from the wanted \[wave, wave\.other,/,
  );
  t.same(parseCert(data(renamed, 'tls.crt')).dnsNames, serviceDnsNames('wave', 'other'));
  t.end();
});

t.test('a Secret without a usable CA is replaced; the CAs caBundle trusted stay for one overlap', (t) => {
  const undecodable = '-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n';
  // Only valid CAs are kept: an undecodable block in caBundle is dropped.
  const webhooks = [{ name: 'workloads.wave.pusher.com', caBundle: `${undecodable}${created.caBundle}` }];
  const cases: [string, Record<string, string>, RegExp][] = [
    ['garbage ca.crt', { 'ca.crt': 'garbage' }, /ca\.crt holds no PEM certificate/],
    [
      'an undecodable ca.crt',
      { 'ca.crt': `${created.caBundle}${undecodable}` },
      /ca\.crt certificate 2: the PEM certificate block cannot be decoded/,
    ],
    ['no ca.crt', { 'ca.crt': '' }, /ca\.crt is missing/],
    ['no ca.key', { 'ca.key': '' }, /ca\.key is missing/],
    [
      'a ca.key of another certificate',
      { 'ca.key': data(created, 'tls.key') },
      /ca\.key is unreadable or belongs to no certificate in ca\.crt/,
    ],
    [
      'a serving certificate as CA',
      { 'ca.crt': data(created, 'tls.crt'), 'ca.key': data(created, 'tls.key') },
      /is not a CA/,
    ],
  ];
  for (const [what, change, reason] of cases) {
    const replaced = plan({
      secret: { data: { ...created.secret.data, ...change }, annotations: {} },
      now: at(1000),
      webhooks,
    });
    t.same(kinds(replaced), ['replaced', 'ca-bundle-patched'], what);
    t.match(replaced.actions[0]?.message, reason, `${what}: the reason is given`);
    t.match(
      replaced.actions[0]?.message,
      /replaced with a new CA \(wave-ca@\d+\) and serving certificate; the 1 CA the webhook configuration trusted stays in caBundle/,
    );
    t.equal(replaced.phase, 'serving-from-new-ca');
    t.equal(
      splitPemBundle(replaced.caBundle)[0],
      created.caBundle,
      'the CA servers may still present stays trusted',
    );
    t.ok(trusted(replaced.caBundle, data(created, 'tls.crt')));
    t.ok(trusted(replaced.caBundle, data(replaced, 'tls.crt')));
  }
  const replaced = plan({ secret: { data: { 'tls.crt': 'x' }, annotations: {} }, now: at(1000), webhooks });
  const retired = plan({
    secret: replaced.secret,
    now: at(1000 + options.overlapMs),
    webhooks: webhookOf(replaced),
  });
  t.same(kinds(retired), ['ca-retired', 'ca-bundle-patched'], 'the old CA leaves after the overlap');

  const caExpiry = at(1825 * dayMs);
  const expired = plan({ secret: created.secret, now: caExpiry, webhooks });
  t.match(
    expired.actions[0]?.message,
    `certificates unusable (the CA wave-ca@${t0.getTime() / 1000} expired at ${caExpiry.toISOString()})`,
  );
  t.equal(splitPemBundle(expired.caBundle).length, 1, 'an expired CA is not kept');
  t.equal(expired.phase, 'steady');
  t.end();
});

t.test('a caBundle that differs from ca.crt is repaired, webhook by webhook', (t) => {
  const webhooks = [
    { name: 'first', caBundle: created.caBundle },
    { name: 'second', caBundle: 'stale' },
  ];
  const repaired = plan({ secret: created.secret, now: at(1000), webhooks });
  t.same(kinds(repaired), ['ca-bundle-patched']);
  t.match(
    repaired.actions[0]?.message,
    /^caBundle of webhook second did not match the Secret's ca\.crt: repaired \(trusts wave-ca@\d+\)$/,
  );
  t.same(repaired.webhooksToPatch, [1]);
  t.equal(repaired.secretChanged, false);
  const absent = plan({ secret: created.secret, now: at(1000), webhooks: undefined });
  t.same(absent.actions, [], 'no configuration: nothing to patch');
  t.end();
});

t.test('IP addresses compare by value, not spelling', (t) => {
  const v6 = { ...options, ipAddresses: ['::1', 'fd00::ab:1'] };
  const first = plan({ now: t0, with: v6 });
  t.same(parseCert(data(first, 'tls.crt')).ips, ['0:0:0:0:0:0:0:1', 'FD00:0:0:0:0:0:AB:1']);
  const again = plan({ secret: first.secret, now: t0, with: v6 });
  t.same(again.actions, []);
  t.end();
});

t.test('other data keys and annotations of the Secret are kept', (t) => {
  const secret = {
    data: { ...created.secret.data, 'extra.txt': 'kept' },
    annotations: { 'example.com/owner': 'team-a' },
  };
  const renewed = plan({ secret, now: at(1000), with: { force: true, forceCa: true } });
  t.equal(renewed.secret.data['extra.txt'], 'kept');
  t.equal(renewed.secret.annotations['example.com/owner'], 'team-a');
  t.equal(renewed.secret.annotations[phaseAnnotation], 'new-ca-trusted');
  t.end();
});

t.test('options that cannot work are refused', (t) => {
  t.equal(rotationOptionsProblem(options), undefined);
  t.match(
    rotationOptionsProblem({ ...options, certValidityMs: 700 * dayMs }),
    'at most a third of the CA validity',
  );
  t.match(
    rotationOptionsProblem({ ...options, ipAddresses: ['localhost'] }),
    '"localhost" is not an IP address',
  );
  t.match(rotationOptionsProblem({ ...options, overlapMs: -1 }), 'must not be negative');
  t.match(rotationOptionsProblem({ ...options, keyBits: 1024 }), 'at least 2048 bits');
  t.match(
    rotationOptionsProblem({ ...options, dnsNames: [], ipAddresses: [] }),
    'at least one DNS name or IP',
  );
  t.throws(() => plan({ now: t0, with: { certValidityMs: 0 } }), RangeError);
  t.end();
});
