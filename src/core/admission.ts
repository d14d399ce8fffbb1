/**
 * The admission decision for a workload, as a pure function of the request and the configuration it
 * consumes: which patch to answer with, why, and which Events to record. Every well-formed request is
 * allowed; nothing here throws on odd input.
 *
 * The edge calls planAdmission() once: it either decides already, or names the children to fetch (fresh
 * from the API, in parallel) before decideFromPlan() with a lookup over them. needsFreshChildren() and
 * decideAdmission() are the same two steps for callers that hold only the facts.
 */
import jsonPatch from 'fast-json-patch';
import { onlyAnnotatedValue, optInAnnotation, optInNearMissValues, optInValue } from './annotations.ts';
import { decideOptIn, defaultCounting, waveOptIn } from './counting.ts';
import type { CountingOptions, OptIn } from './counting.ts';
import { computeConfigHash, summarizeMissing } from './hash.ts';
import type { Hasher, MissingConfig } from './hash.ts';
import { asRecord, asStringMap } from './json.ts';
import type { JsonRecord } from './json.ts';
import { kindByName } from './kinds.ts';
import type { ChildLookup, ChildRef, Workload } from './objects.ts';
import { parseWorkload, templateReferrer, valueAt } from './objects.ts';
import { consumedConfig } from './refs.ts';
import type { ConsumedConfig } from './refs.ts';
import { isHeld, sameTemplateApartFromWave, setHeld, setTemplateHash, templateHash } from './template.ts';

/** One RFC 6902 operation (fast-json-patch's own type adds its private `_get`). */
export type JsonPatchOperation =
  | { readonly op: 'add' | 'replace' | 'test'; readonly path: string; readonly value: unknown }
  | { readonly op: 'remove'; readonly path: string }
  | { readonly op: 'move' | 'copy'; readonly from: string; readonly path: string };

/** What the edge reads off an AdmissionReview request. */
export interface AdmissionFacts {
  /** CREATE, UPDATE, DELETE or CONNECT; only the first two are acted on. */
  readonly operation: string;
  readonly object: unknown;
  readonly oldObject?: unknown;
  /** The request's namespace, used when the object carries none. */
  readonly namespace?: string;
  /** Set for a subresource (status, scale): those are passed through. */
  readonly subResource?: string;
  readonly dryRun: boolean;
  /** The request comes from wave itself (its service account, or the loop's field manager): it passes untouched. */
  readonly fromOwnServiceAccount: boolean;
  /** The flags that change what counts; the defaults when absent. */
  readonly counting?: CountingOptions;
}

export interface AdmissionInput extends AdmissionFacts {
  /** The current ConfigMaps and Secrets, as the edge fetched them for needsFreshChildren(). */
  readonly children: ChildLookup;
  readonly hasher: Hasher;
}

/**
 * - stamp: the hash was computed and is (now) on the template.
 * - hold: required configuration is missing and the pods are gated.
 * - keep: the template keeps the hash it had; no new hash was computed or stamped.
 * - skip: not wave's business (not opted in, own service account, not a workload, ...).
 */
export type AdmissionDecisionKind = 'stamp' | 'hold' | 'keep' | 'skip';

export interface AdmissionEvent {
  readonly type: 'Normal' | 'Warning';
  readonly reason: 'ConfigMissing' | 'OptInNearMiss' | 'ReloaderPatternInvalid' | 'TemplateElsewhere';
  /** Names objects and keys only, never a value. */
  readonly message: string;
}

export interface AdmissionDecision {
  readonly allowed: true;
  /** Minimal RFC 6902 patch against the request's object; empty for no change. */
  readonly patch: readonly JsonPatchOperation[];
  readonly decision: AdmissionDecisionKind;
  /** One readable line for the log. */
  readonly reason: string;
  /** Events to record on the workload; always empty for a dryRun request. */
  readonly events: readonly AdmissionEvent[];
}

export type FreshChildren =
  { readonly needed: false } | { readonly needed: true; readonly children: readonly ChildRef[] };

/**
 * Whether deciding this request needs the consumed children read fresh, and which: only for CREATE and
 * template-changing UPDATE of an opted-in workload. Everything else is decided without them.
 */
export function needsFreshChildren(facts: AdmissionFacts): FreshChildren {
  return freshChildrenOf(planAdmission(facts));
}

/** The children a plan needs read before decideFromPlan(), if any. */
export function freshChildrenOf(plan: AdmissionPlan): FreshChildren {
  if ('decision' in plan) return { needed: false };
  return {
    needed: true,
    children: plan.consumed.children.map(({ kind, namespace, name }) => ({ kind, namespace, name })),
  };
}

export function decideAdmission(input: AdmissionInput): AdmissionDecision {
  return decideFromPlan(planAdmission(input), input.children, input.hasher);
}

/** The decision of a plan, given the children freshChildrenOf() named. */
export function decideFromPlan(
  plan: AdmissionPlan,
  children: ChildLookup,
  hasher: Hasher,
): AdmissionDecision {
  if ('decision' in plan) return plan.decision;
  const { facts, workload, consumed, template: original, templatePath, creating, oldHash, oldHeld } = plan;
  const result = computeConfigHash(consumed, children, hasher);
  const template = structuredClone(original);
  const respondPlain = responder(original, template, templatePath);
  const respond: typeof respondPlain = (decision, reason, events) =>
    respondPlain(decision, reason, [...plan.warnings, ...events]);

  if (result.complete) {
    const wasHeld = isHeld(template);
    const wasCurrent = templateHash(template) === result.hash;
    setTemplateHash(template, result.hash);
    setHeld(template, false);
    const hash = short(result.hash);
    const reason = wasHeld
      ? `released the config-missing gate and stamped hash ${hash}`
      : wasCurrent
        ? `hash ${hash} already current`
        : `stamped hash ${hash}`;
    return respond('stamp', reason, []);
  }

  const summary = summarizeMissing(result.missing);
  if (creating) {
    // Pods wait visibly as SchedulingGated rather than crash-loop; a hash could only be partial.
    setTemplateHash(template, undefined);
    setHeld(template, true);
    const event = configMissing(facts, result.missing, `the ${workload.kind} is held`);
    return respond('hold', `held: ${summary}`, event);
  }
  // Never roll with a partial hash, and never gate a running workload: keep what the template had.
  setTemplateHash(template, oldHash);
  setHeld(template, oldHeld);
  const kept = oldHeld
    ? `the ${workload.kind} stays held`
    : oldHash === undefined
      ? `the ${workload.kind} gets no config hash until then`
      : `the ${workload.kind} keeps config hash ${short(oldHash)}`;
  const event = configMissing(facts, result.missing, kept);
  return respond(oldHeld ? 'hold' : 'keep', `${summary}: ${kept}`, event);
}

const nearMissValues = new Set(optInNearMissValues);

/**
 * The value as the webhook's matchCondition compares it: CEL's trim() strips Unicode White_Space (Go's
 * unicode.IsSpace) and lowerAscii() folds only A-Z. JavaScript's trim() and toLowerCase() differ (U+FEFF,
 * U+0085, the Kelvin sign), and where they differ wave would wait for a near miss the apiserver never sends.
 */
export function optInComparable(value: string): string {
  return value.replace(/^\p{White_Space}+|\p{White_Space}+$/gu, '').replace(/[A-Z]/g, (c) => c.toLowerCase());
}

/**
 * Opt-in is exactly optInValue (or onlyAnnotatedValue) in the workload's annotation (on its metadata,
 * else on its pod template: see waveOptIn), or, with `--reloader-annotations`, one of Reloader's (see
 * counting.ts). Values a person plausibly meant as yes are near misses worth a warning.
 */
export function optInStatus(workload: Workload, options: CountingOptions = defaultCounting): OptIn {
  return decideOptIn(workload, options, waveNearMiss(workload));
}

function waveNearMiss(workload: Workload): string | undefined {
  const found = waveOptIn(workload);
  if (found === undefined) return undefined;
  const { value, on } = found;
  if (value === optInValue || value === onlyAnnotatedValue) return undefined;
  const comparable = optInComparable(value);
  if (!nearMissValues.has(comparable)) return undefined;
  const meant = comparable === onlyAnnotatedValue ? onlyAnnotatedValue : optInValue;
  const where = on === 'metadata' ? '' : ` on the pod template`;
  return `${optInAnnotation} is ${JSON.stringify(value)}${where}; wave opts in only on exactly ${JSON.stringify(meant)}`;
}

interface Computation {
  readonly facts: AdmissionFacts;
  readonly workload: Workload;
  readonly consumed: ConsumedConfig;
  /** The request object's pod template: the only part a patch ever touches. */
  readonly template: JsonRecord;
  readonly templatePath: readonly string[];
  readonly creating: boolean;
  readonly oldHash: string | undefined;
  readonly oldHeld: boolean;
  /** Warning Events owed whatever the decision (a bad reload list entry). */
  readonly warnings: readonly AdmissionEvent[];
}

export type AdmissionPlan = { readonly decision: AdmissionDecision } | Computation;

/**
 * An opted-in object that takes its pod template from another workload (an Argo Rollout with
 * `spec.workloadRef`) is never stamped: a Warning Event on it says which workload to opt in instead.
 */
function templateElsewhereWarning(object: unknown): readonly AdmissionEvent[] {
  const kindName = asRecord(object)?.['kind'];
  const kind = typeof kindName === 'string' ? kindByName(kindName) : undefined;
  const referrer = kind === undefined ? undefined : templateReferrer(object, kind);
  const annotations = asStringMap(asRecord(asRecord(object)?.['metadata'])?.['annotations']);
  if (referrer === undefined || annotations?.[optInAnnotation] !== optInValue) return [];
  const { source, via } = referrer;
  const self = referrer.referrer.kind;
  const message =
    `its pod template is that of ${source.kind} ${source.name}, which its ${via} names, so wave never ` +
    `stamps this ${self}: opt ${source.kind} ${source.name} in instead; its ConfigChanged Events reach ` +
    `this ${self} too`;
  return [{ type: 'Warning', reason: 'TemplateElsewhere', message }];
}

/** Either the decision already, or what is needed to compute it: one chain of readable reasons to stop. */
export function planAdmission(facts: AdmissionFacts): AdmissionPlan {
  const skip = (reason: string, events: readonly AdmissionEvent[] = []) => ({
    decision: {
      allowed: true as const,
      patch: [],
      decision: 'skip' as const,
      reason,
      events: facts.dryRun ? [] : events,
    },
  });
  if (facts.fromOwnServiceAccount) return skip('request from wave itself: its write passes unchanged');
  if (facts.subResource !== undefined && facts.subResource !== '') {
    return skip(`subresource ${facts.subResource} is not handled`);
  }
  if (facts.operation !== 'CREATE' && facts.operation !== 'UPDATE') {
    return skip(`operation ${facts.operation} is not handled`);
  }
  const parsed = parseWorkload(
    facts.object,
    facts.namespace === undefined ? {} : { namespace: facts.namespace },
  );
  if (!parsed.ok) return skip(parsed.reason, templateElsewhereWarning(facts.object));
  const workload = parsed.value;
  const optIn = optInStatus(workload, facts.counting);
  if (!optIn.optedIn) {
    const why = optIn.reason === undefined ? '' : `: ${optIn.reason}`;
    if (optIn.nearMiss === undefined) return skip(`not opted in${why}`);
    return skip(`not opted in${why}: ${optIn.nearMiss}`, [
      { type: 'Warning', reason: 'OptInNearMiss', message: optIn.nearMiss },
    ]);
  }
  const warnings: readonly AdmissionEvent[] = facts.dryRun
    ? []
    : optIn.warnings.map((message) => ({ type: 'Warning', reason: 'ReloaderPatternInvalid', message }));
  // parseWorkload found the template, so the kind is known and its template an object.
  const templatePath = kindByName(workload.kind)?.templatePath ?? [];
  const template = valueAt(facts.object, templatePath) as JsonRecord;
  const oldTemplate = facts.operation === 'UPDATE' ? valueAt(facts.oldObject, templatePath) : undefined;
  const oldHash = templateHash(oldTemplate);
  const oldHeld = isHeld(oldTemplate);

  if (oldTemplate !== undefined && sameTemplateApartFromWave(oldTemplate, template)) {
    // Scale, labels, a re-apply without the hash: no rollout starts here, and a stale cache undoes nothing.
    const mutatedTemplate = structuredClone(template);
    setTemplateHash(mutatedTemplate, oldHash);
    setHeld(mutatedTemplate, oldHeld);
    const newHash = templateHash(template);
    const kept =
      oldHash !== undefined
        ? `${newHash === oldHash ? 'kept' : 'restored'} hash ${short(oldHash)}`
        : newHash === undefined
          ? 'no hash to keep'
          : 'removed the hash the request set, the template had none';
    const gate =
      isHeld(template) === oldHeld
        ? ''
        : oldHeld
          ? ' and restored the config-missing gate'
          : ' and removed the config-missing gate the request set';
    const respond = responder(template, mutatedTemplate, templatePath);
    return { decision: respond('keep', `pod template unchanged: ${kept}${gate}`, []) };
  }
  return {
    facts,
    workload,
    consumed: consumedConfig(workload, optIn.policy),
    warnings,
    template,
    templatePath,
    creating: facts.operation === 'CREATE',
    oldHash,
    oldHeld,
  };
}

/**
 * Answers with the patch from the request's pod template to the mutated copy. Only the template is ever
 * changed, so it alone is compared (not the whole object with its status and managedFields) and the
 * operations are rooted at its path.
 */
function responder(original: JsonRecord, mutated: JsonRecord, templatePath: readonly string[]) {
  return (
    decision: AdmissionDecisionKind,
    reason: string,
    events: readonly AdmissionEvent[],
  ): AdmissionDecision => {
    const root = templatePath.map((segment) => `/${jsonPatch.escapePathComponent(segment)}`).join('');
    // compare() only ever emits add, remove and replace.
    const patch = (jsonPatch.compare(original, mutated) as JsonPatchOperation[]).map((op) => ({
      ...op,
      path: `${root}${op.path}`,
    }));
    return { allowed: true, patch, decision, reason, events };
  };
}

function configMissing(
  facts: AdmissionFacts,
  missing: readonly MissingConfig[],
  consequence: string,
): readonly AdmissionEvent[] {
  if (facts.dryRun) return [];
  return [
    { type: 'Warning', reason: 'ConfigMissing', message: `${summarizeMissing(missing)}; ${consequence}` },
  ];
}

function short(hash: string): string {
  return `${hash.slice(0, 12)}…`;
}
