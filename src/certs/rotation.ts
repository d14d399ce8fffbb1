// The rotation planner: from what the Secret and the webhook configuration hold now, and the time, the
// next state and every change with its reason. No I/O and no clock of its own (`now` is an input), so each
// rule is tested with an injected clock; the only thing not determined by the input is fresh key material.
//
// Secret layout (type kubernetes.io/tls):
//   tls.crt      serving certificate, issued by the signing CA      (mounted by the server)
//   tls.key      its private key (PKCS#8)                           (mounted by the server)
//   ca.crt       the CAs clients trust: exactly what the webhook configuration's caBundle holds (1 or 2)
//   ca.key       private key of the signing CA: the certificate in ca.crt that this key belongs to
//   next-ca.key  during CA rotation phase 1 only: private key of the new CA, already in ca.crt
// Annotations, during a CA rotation only:
//   wave.pusher.com/ca-rotation-phase        new-ca-trusted | serving-from-new-ca
//   wave.pusher.com/ca-rotation-phase-since  when that phase started (RFC 3339)
// The phase itself follows from the data (next-ca.key present: phase 1; more than one CA without it:
// phase 2); the annotation names it for operators, and its start time counts only for the phase it names.
import { SocketAddress, isIP } from 'node:net';
import { createCA, createServingCert, isIssuedBy, keyMatchesCert, parseCert, splitPemBundle } from './pki.ts';
import type { CertificateInfo, CertificatePem } from './pki.ts';
import { errorMessage } from '../errors.ts';

export const secretKeys = {
  cert: 'tls.crt',
  key: 'tls.key',
  caBundle: 'ca.crt',
  caKey: 'ca.key',
  nextCaKey: 'next-ca.key',
} as const;

export const phaseAnnotation = 'wave.pusher.com/ca-rotation-phase';
export const phaseSinceAnnotation = 'wave.pusher.com/ca-rotation-phase-since';

/**
 * Where a CA rotation stands. `new-ca-trusted` (phase 1): the new CA is in caBundle, the server still
 * presents a certificate from the old one. `serving-from-new-ca` (phase 2): the server presents a
 * certificate from the new CA, the old one is still trusted. `steady`: one CA.
 */
export type CaPhase = 'steady' | 'new-ca-trusted' | 'serving-from-new-ca';

/** A Secret's content as text (data decoded from base64), and its annotations. */
export interface CertSecret {
  readonly data: Readonly<Record<string, string>>;
  readonly annotations: Readonly<Record<string, string>>;
}

export interface RotationOptions {
  readonly caValidityMs: number;
  readonly certValidityMs: number;
  /**
   * Least time between the steps of a CA rotation: long enough for the kubelet to update every mounted
   * copy of the Secret and for every server to reload it, and for the apiserver to see a new caBundle.
   */
  readonly overlapMs: number;
  /** Subject alternative names of the serving certificate. */
  readonly dnsNames: readonly string[];
  readonly ipAddresses: readonly string[];
  /** RSA modulus length of new keys; default 2048. */
  readonly keyBits?: number;
  /** Renew the serving certificate now. */
  readonly force?: boolean;
  /** Start a CA rotation now (no effect while one is in progress). */
  readonly forceCa?: boolean;
}

export interface WebhookCaBundle {
  /** The webhook's name in the configuration. */
  readonly name: string;
  /** Its clientConfig.caBundle, decoded; '' when unset. */
  readonly caBundle: string;
}

export interface RotationInput {
  /** undefined: the Secret does not exist. */
  readonly secret: CertSecret | undefined;
  /** One entry per webhook of the configuration; undefined: the configuration does not exist. */
  readonly webhooks: readonly WebhookCaBundle[] | undefined;
  readonly options: RotationOptions;
  readonly now: Date;
}

export type ActionKind =
  | 'created'
  | 'replaced'
  | 'serving-issued'
  | 'ca-rotation-started'
  | 'ca-switched'
  | 'ca-retired'
  | 'state-repaired'
  | 'ca-bundle-patched';

export interface RotationAction {
  readonly kind: ActionKind;
  /** One line for an operator: what changed and why. Never key material. */
  readonly message: string;
}

export interface RotationPlan {
  /** The Secret as it should be (unchanged when `secretChanged` is false). */
  readonly secret: CertSecret;
  readonly secretChanged: boolean;
  /** The trust bundle (ca.crt) every webhook's caBundle must hold. */
  readonly caBundle: string;
  /** Indexes of the webhooks whose caBundle differs from `caBundle`, to patch before the Secret is written. */
  readonly webhooksToPatch: readonly number[];
  readonly phase: CaPhase;
  readonly actions: readonly RotationAction[];
  /** What stays as it is and until when: validity, next renewal, a phase waiting for its overlap. */
  readonly notes: readonly string[];
}

const dayMs = 24 * 60 * 60 * 1000;
/** The share of its lifetime after which a certificate is replaced (as cert-manager does). */
const renewAtFraction = 2 / 3;

/** The moment a certificate is due for renewal: 2/3 of the way from notBefore to notAfter. */
export function renewalTime(info: Pick<CertificateInfo, 'notBefore' | 'notAfter'>): Date {
  const start = info.notBefore.getTime();
  return new Date(start + Math.round((info.notAfter.getTime() - start) * renewAtFraction));
}

/** Why the options cannot work, or undefined when they can. */
export function rotationOptionsProblem(o: RotationOptions): string | undefined {
  if (!(o.caValidityMs >= 1000)) return 'the CA validity must be at least 1s';
  if (!(o.certValidityMs >= 1000)) return 'the serving certificate validity must be at least 1s';
  if (o.certValidityMs * 3 > o.caValidityMs) {
    // The CA rotates at 2/3 of its life: a serving certificate issued just before must not outlive it.
    return 'the serving certificate validity must be at most a third of the CA validity';
  }
  if (!(o.overlapMs >= 0)) return 'the overlap must not be negative';
  if (o.keyBits !== undefined && !(Number.isInteger(o.keyBits) && o.keyBits >= 2048)) {
    return 'keys must have at least 2048 bits';
  }
  const notIp = o.ipAddresses.find((ip) => isIP(ip) === 0);
  if (notIp !== undefined) return `"${notIp}" is not an IP address`;
  if (o.dnsNames.length === 0 && o.ipAddresses.length === 0) {
    return 'the serving certificate needs at least one DNS name or IP address';
  }
  return undefined;
}

interface Pair extends CertificatePem {
  readonly info: CertificateInfo;
}

/** A readable Secret: the trust bundle, the CA that signs, the pending CA in phase 1, the serving pair. */
interface State {
  readonly bundle: readonly string[];
  readonly signing: Pair;
  readonly next: Pair | undefined;
  readonly serving: CertificatePem | undefined;
  readonly since: Date | undefined;
}

type Read = { readonly state: State } | { readonly problem: string };

export function planRotation(input: RotationInput): RotationPlan {
  const { options: o, now } = input;
  const problem = rotationOptionsProblem(o);
  if (problem !== undefined) throw new RangeError(problem);
  const actions: RotationAction[] = [];
  const notes: string[] = [];
  const act = (kind: ActionKind, message: string) => actions.push({ kind, message });

  let state: State;
  const read = input.secret === undefined ? undefined : readState(input.secret, now, act);
  if (read === undefined || 'problem' in read) {
    const fresh = bootstrap(input, now);
    state = fresh.state;
    const kept = fresh.keptFromWebhooks;
    const keeping =
      kept === 0
        ? ''
        : `; the ${plural(kept, 'CA')} the webhook configuration trusted ${kept === 1 ? 'stays' : 'stay'} in caBundle for the overlap, so a server still presenting an old certificate keeps working`;
    if (read === undefined) {
      act(
        'created',
        `no certificates yet: created a CA (${cnOf(state.signing)}) and a serving certificate${keeping}`,
      );
    } else {
      act(
        'replaced',
        `certificates unusable (${read.problem}): replaced with a new CA (${cnOf(state.signing)}) and serving certificate${keeping}`,
      );
    }
  } else {
    const advanced = advanceCa(read.state, input, act, notes);
    state = renewServing(advanced, input, advanced.signing !== read.state.signing, act);
  }

  const phase = phaseOf(state);
  const secret = render(input.secret, state, phase);
  const caBundle = secret.data[secretKeys.caBundle] ?? '';
  const webhooksToPatch = (input.webhooks ?? []).flatMap((w, i) => (w.caBundle === caBundle ? [] : [i]));
  if (webhooksToPatch.length > 0) {
    const names = webhooksToPatch.map((i) => input.webhooks?.[i]?.name ?? String(i)).join(', ');
    const cas = state.bundle.map((pem) => parseCert(pem).subjectCN ?? '?').join(', ');
    const repair = input.secret?.data[secretKeys.caBundle] === caBundle;
    act(
      'ca-bundle-patched',
      repair
        ? `caBundle of webhook ${names} did not match the Secret's ca.crt: repaired (trusts ${cas})`
        : `caBundle of webhook ${names} set to trust ${cas}`,
    );
  }
  notes.push(...describe(state, phase, o));
  return {
    secret,
    secretChanged: input.secret === undefined || !sameSecret(input.secret, secret),
    caBundle,
    webhooksToPatch,
    phase,
    actions,
    notes,
  };
}

/** Reads the Secret; a problem means it cannot be repaired in place and is replaced. */
function readState(secret: CertSecret, now: Date, act: (kind: ActionKind, message: string) => void): Read {
  const text = secret.data[secretKeys.caBundle] ?? '';
  if (text.trim() === '') return { problem: `${secretKeys.caBundle} is missing` };
  const bundle = splitPemBundle(text);
  if (bundle.length === 0) return { problem: `${secretKeys.caBundle} holds no PEM certificate` };
  for (const [i, pem] of bundle.entries()) {
    try {
      parseCert(pem);
    } catch (err) {
      return { problem: `${secretKeys.caBundle} certificate ${i + 1}: ${errorMessage(err)}` };
    }
  }
  const caKey = secret.data[secretKeys.caKey] ?? '';
  const signingPem = bundle.find((pem) => keyMatchesCert(pem, caKey));
  if (signingPem === undefined) {
    return {
      problem:
        caKey.trim() === ''
          ? `${secretKeys.caKey} is missing`
          : `${secretKeys.caKey} is unreadable or belongs to no certificate in ${secretKeys.caBundle}`,
    };
  }
  const signing = { certPem: signingPem, keyPem: caKey, info: parseCert(signingPem) };
  if (!signing.info.isCA) return { problem: `the certificate ${secretKeys.caKey} belongs to is not a CA` };
  if (now >= signing.info.notAfter) {
    return { problem: `the CA ${cnOf(signing)} expired at ${signing.info.notAfter.toISOString()}` };
  }

  let next: Pair | undefined;
  const nextKey = secret.data[secretKeys.nextCaKey];
  if (nextKey !== undefined) {
    const nextPem = bundle.find((pem) => pem !== signingPem && keyMatchesCert(pem, nextKey));
    const info = nextPem === undefined ? undefined : parseCert(nextPem);
    if (nextPem !== undefined && info?.isCA === true && now < info.notAfter) {
      next = { certPem: nextPem, keyPem: nextKey, info };
    } else {
      act(
        'state-repaired',
        `${secretKeys.nextCaKey} belongs to no usable CA in ${secretKeys.caBundle}: discarded (the CA rotation restarts from its last complete phase)`,
      );
    }
  }

  const partial = { bundle, signing, next, serving: servingPair(secret), since: undefined };
  const phase = phaseOf(partial);
  let since: Date | undefined;
  if (phase !== 'steady') {
    const recorded = new Date(secret.annotations[phaseSinceAnnotation] ?? '');
    if (secret.annotations[phaseAnnotation] === phase && !Number.isNaN(recorded.getTime())) {
      since = recorded;
    } else {
      since = now;
      act(
        'state-repaired',
        `CA rotation phase "${phase}" has no recorded start: its overlap starts now (${now.toISOString()})`,
      );
    }
  }
  return { state: { ...partial, since } };
}

function servingPair(secret: CertSecret): CertificatePem | undefined {
  const certPem = secret.data[secretKeys.cert];
  const keyPem = secret.data[secretKeys.key];
  return certPem === undefined || keyPem === undefined ? undefined : { certPem, keyPem };
}

/** Steps a CA rotation forward when its overlap has passed, or starts one when due or forced. */
function advanceCa(
  state: State,
  input: RotationInput,
  act: (kind: ActionKind, message: string) => void,
  notes: string[],
): State {
  const { options: o, now } = input;
  const phase = phaseOf(state);
  if (phase === 'steady') {
    const due = renewalTime(state.signing.info);
    const reason = o.forceCa === true ? '--force-ca' : now >= due ? '2/3 of its lifetime passed' : undefined;
    if (reason === undefined) return state;
    const fresh = newCa(now, o);
    act(
      'ca-rotation-started',
      `CA rotation phase 1 (${reason}): new CA ${cnOf(fresh)} added to caBundle, still serving from the old CA ${cnOf(state.signing)}`,
    );
    return { ...state, bundle: [...state.bundle, fresh.certPem], next: fresh, since: now };
  }
  if (o.forceCa === true) notes.push(`--force-ca: a CA rotation is already in progress (${phase})`);
  const since = state.since ?? now;
  const ready = new Date(since.getTime() + o.overlapMs);
  if (now < ready) {
    notes.push(
      `CA rotation phase ${phase === 'new-ca-trusted' ? '1' : '2'} (${phase}) since ${since.toISOString()}: the next step waits for the overlap, until ${ready.toISOString()}`,
    );
    return state;
  }
  if (state.next !== undefined) {
    act(
      'ca-switched',
      `CA rotation phase 2: serving certificate re-issued from the new CA ${cnOf(state.next)}; the old CA ${cnOf(state.signing)} stays in caBundle for the overlap`,
    );
    return { ...state, signing: state.next, next: undefined, since: now };
  }
  const retired = state.bundle.filter((pem) => pem !== state.signing.certPem);
  act(
    'ca-retired',
    `CA rotation phase 3: ${plural(retired.length, 'old CA')} (${retired.map((pem) => parseCert(pem).subjectCN ?? '?').join(', ')}) dropped from caBundle; rotation complete, trusting ${cnOf(state.signing)} only`,
  );
  return { ...state, bundle: [state.signing.certPem], since: undefined };
}

/** Issues a serving certificate when its CA changed, or it is unusable, forced or due. */
function renewServing(
  state: State,
  input: RotationInput,
  caSwitched: boolean,
  act: (kind: ActionKind, message: string) => void,
): State {
  const { options: o, now } = input;
  const issued = () => ({ ...state, serving: issueServing(state.signing, o, now) });
  if (caSwitched) return issued();
  const problem = servingProblem(state, o, now);
  if (problem !== undefined) {
    act(
      'replaced',
      `serving certificate unusable (${problem}): replaced with a new one from the CA ${cnOf(state.signing)}`,
    );
    return issued();
  }
  const info = parseCert(state.serving?.certPem ?? '');
  const reason =
    o.force === true ? '--force' : now >= renewalTime(info) ? '2/3 of its lifetime passed' : undefined;
  if (reason === undefined) return state;
  act('serving-issued', `serving certificate renewed (${reason}) from the CA ${cnOf(state.signing)}`);
  return issued();
}

/** Why the serving pair cannot stay, or undefined when it can. */
function servingProblem(state: State, o: RotationOptions, now: Date): string | undefined {
  const { serving, signing } = state;
  if (serving === undefined || serving.certPem.trim() === '') return `${secretKeys.cert} is missing`;
  let info: CertificateInfo;
  try {
    info = parseCert(serving.certPem);
  } catch (err) {
    return `${secretKeys.cert}: ${errorMessage(err)}`;
  }
  if (!keyMatchesCert(serving.certPem, serving.keyPem)) {
    return `${secretKeys.key} is missing, unreadable or does not belong to ${secretKeys.cert}`;
  }
  if (!isIssuedBy(serving.certPem, signing.certPem)) {
    return `${secretKeys.cert} was not issued by the signing CA ${cnOf(signing)}`;
  }
  if (now >= info.notAfter) return `${secretKeys.cert} expired at ${info.notAfter.toISOString()}`;
  if (
    !sameSet(info.dnsNames, o.dnsNames) ||
    !sameSet(info.ips.map(canonicalIp), o.ipAddresses.map(canonicalIp))
  ) {
    return `${secretKeys.cert} names [${[...info.dnsNames, ...info.ips].join(', ')}] differ from the wanted [${[...o.dnsNames, ...o.ipAddresses].join(', ')}]`;
  }
  return undefined;
}

/**
 * A new CA and serving certificate. The CAs the webhook configuration trusts now (valid ones) stay in the
 * bundle as if in phase 2, so a server still presenting a certificate from one of them keeps working until
 * it loads the new pair; they are dropped after the overlap.
 */
function bootstrap(input: RotationInput, now: Date): { state: State; keptFromWebhooks: number } {
  const ca = newCa(now, input.options);
  const trusted = new Map<string, string>();
  for (const webhook of input.webhooks ?? []) {
    for (const pem of splitPemBundle(webhook.caBundle)) {
      try {
        const info = parseCert(pem);
        if (info.isCA && now < info.notAfter) trusted.set(info.fingerprint256, pem);
      } catch {
        // Unreadable trust is no trust: nothing can be served from it.
      }
    }
  }
  const kept = [...trusted.values()];
  return {
    state: {
      bundle: [...kept, ca.certPem],
      signing: ca,
      next: undefined,
      serving: issueServing(ca, input.options, now),
      since: kept.length > 0 ? now : undefined,
    },
    keptFromWebhooks: kept.length,
  };
}

function newCa(now: Date, o: RotationOptions): Pair {
  // A distinct subject per CA: while two are trusted, clients tell them apart at a glance.
  const pem = createCA({
    commonName: `wave-ca@${Math.floor(now.getTime() / 1000)}`,
    validityDays: o.caValidityMs / dayMs,
    now,
    keyBits: o.keyBits,
  });
  return { ...pem, info: parseCert(pem.certPem) };
}

function issueServing(ca: CertificatePem, o: RotationOptions, now: Date): CertificatePem {
  return createServingCert({
    ca,
    dnsNames: o.dnsNames,
    ipAddresses: o.ipAddresses,
    validityDays: o.certValidityMs / dayMs,
    now,
    keyBits: o.keyBits,
  });
}

function phaseOf(state: Pick<State, 'bundle' | 'next'>): CaPhase {
  if (state.next !== undefined) return 'new-ca-trusted';
  return state.bundle.length > 1 ? 'serving-from-new-ca' : 'steady';
}

/** The Secret for a state: its own keys replaced, anything else it holds kept. */
function render(previous: CertSecret | undefined, state: State, phase: CaPhase): CertSecret {
  const ours = new Set<string>(Object.values(secretKeys));
  const data: Record<string, string> = Object.fromEntries(
    Object.entries(previous?.data ?? {}).filter(([key]) => !ours.has(key)),
  );
  const serving = state.serving ?? { certPem: '', keyPem: '' };
  data[secretKeys.cert] = serving.certPem;
  data[secretKeys.key] = serving.keyPem;
  data[secretKeys.caBundle] = state.bundle.join('');
  data[secretKeys.caKey] = state.signing.keyPem;
  if (state.next !== undefined) data[secretKeys.nextCaKey] = state.next.keyPem;

  const annotations: Record<string, string> = Object.fromEntries(
    Object.entries(previous?.annotations ?? {}).filter(
      ([key]) => key !== phaseAnnotation && key !== phaseSinceAnnotation,
    ),
  );
  if (phase !== 'steady' && state.since !== undefined) {
    annotations[phaseAnnotation] = phase;
    annotations[phaseSinceAnnotation] = state.since.toISOString();
  }
  return { data, annotations };
}

function describe(state: State, phase: CaPhase, o: RotationOptions): string[] {
  const notes: string[] = [];
  if (state.serving !== undefined) {
    const info = parseCert(state.serving.certPem);
    notes.push(
      `serving certificate ${info.serialNumber} valid until ${info.notAfter.toISOString()}, renewal due ${renewalTime(info).toISOString()}`,
    );
  }
  const ca = state.signing.info;
  notes.push(
    phase === 'steady'
      ? `CA ${cnOf(state.signing)} valid until ${ca.notAfter.toISOString()}, rotation due ${renewalTime(ca).toISOString()}`
      : `CA ${cnOf(state.signing)} valid until ${ca.notAfter.toISOString()}; CA rotation in phase "${phase}", next step after ${new Date((state.since?.getTime() ?? 0) + o.overlapMs).toISOString()}`,
  );
  return notes;
}

function sameSecret(a: CertSecret, b: CertSecret): boolean {
  return sameRecord(a.data, b.data) && sameRecord(a.annotations, b.annotations);
}

function sameRecord(a: Readonly<Record<string, string>>, b: Readonly<Record<string, string>>): boolean {
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((k) => a[k] === b[k]);
}

function sameSet(a: readonly string[], b: readonly string[]): boolean {
  const set = new Set(a);
  return set.size === new Set(b).size && b.every((x) => set.has(x));
}

/** One spelling per address: certificates print IPv6 in full, operators write it short. */
function canonicalIp(ip: string): string {
  return new SocketAddress({ address: ip, family: isIP(ip) === 6 ? 'ipv6' : 'ipv4' }).address;
}

function cnOf(pair: Pair): string {
  return pair.info.subjectCN ?? '(no CN)';
}

function plural(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`;
}
