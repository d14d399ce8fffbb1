/** The names wave reads and writes on Kubernetes objects: the user-facing contract (see README). */

/** The field manager of every write of the sync loop; the webhook lets writes by it through unchanged. */
export const fieldManager = 'wave';

/** On the workload: opts it in. Only the exact values optInValue and onlyAnnotatedValue count. */
export const optInAnnotation = 'wave.pusher.com/update-on-config-change';
export const optInValue = 'true';
/**
 * optInAnnotation's selective opt-in (Wave #113, option 1): only the consumed ConfigMaps and Secrets that
 * carry childOptInAnnotation "true" count.
 */
export const onlyAnnotatedValue = 'only-annotated';

/** On a ConfigMap or Secret: it counts for a workload opted in with onlyAnnotatedValue. */
export const childOptInAnnotation = 'wave.pusher.com/update-deployment-on-config-change';

/** On a ConfigMap or Secret: "true" removes it from every workload's hash. */
export const childIgnoreAnnotation = 'wave.pusher.com/ignore';

/**
 * On the workload's metadata, written by wave when it adopts a running workload without rolling it: the
 * hash its configuration had then. On the metadata, not the template, so writing it rolls nothing; the
 * first change of configuration after it stamps the template (and rolls) as usual.
 */
export const baselineHashAnnotation = 'wave.pusher.com/config-hash-baseline';

/** Stakater Reloader's annotations, read with `--reloader-annotations` (see README, "Migrating from Reloader"). */
export const reloader = {
  auto: 'reloader.stakater.com/auto',
  configMapAuto: 'configmap.reloader.stakater.com/auto',
  secretAuto: 'secret.reloader.stakater.com/auto',
  configMapReload: 'configmap.reloader.stakater.com/reload',
  secretReload: 'secret.reloader.stakater.com/reload',
  search: 'reloader.stakater.com/search',
  /** On a ConfigMap or Secret. */
  match: 'reloader.stakater.com/match',
  /** On a ConfigMap or Secret. */
  ignore: 'reloader.stakater.com/ignore',
  configMapExclude: 'configmaps.exclude.reloader.stakater.com/reload',
  secretExclude: 'secrets.exclude.reloader.stakater.com/reload',
} as const;

/**
 * The annotations of a ConfigMap or Secret that decide whether it counts. Only these are kept of a child's
 * annotations: a client-side `kubectl apply` copies the whole data into another one.
 */
export const childCountingAnnotations: readonly string[] = [
  childOptInAnnotation,
  childIgnoreAnnotation,
  reloader.match,
  reloader.ignore,
];

/**
 * Values of optInAnnotation a person plausibly meant as yes, compared trimmed of Unicode whitespace and
 * with ASCII letters lower-cased: apart from exactly optInValue or onlyAnnotatedValue, each is a near miss that gets a warning
 * Event. The webhook's matchCondition is rendered from this list, so the apiserver sends wave every value
 * that deserves the warning (and only those, besides optInValue itself).
 */
export const optInNearMissValues: readonly string[] = [
  'true',
  't',
  'yes',
  'y',
  '1',
  'on',
  'enable',
  'enabled',
  'only-annotated',
];

/**
 * On the workload's metadata, written by wave with each rollout it paces: when it last rolled the workload
 * and how many rollouts in a row came soon after each other. On the workload, not in memory, so a
 * restarted or new leader keeps the pace; on its metadata, not the template, so writing it rolls nothing.
 */
export const rolloutPacingAnnotation = 'wave.pusher.com/rollout-pacing';

/** On the pod template: lowercase hex SHA-256 of the consumed configuration, written by wave. */
export const configHashAnnotation = 'wave.pusher.com/config-hash';

/** On the workload: comma list of `name` or `namespace/name`, watched although not referenced. */
export const extraConfigMapsAnnotation = 'wave.pusher.com/extra-configmaps';
export const extraSecretsAnnotation = 'wave.pusher.com/extra-secrets';

/** Scheduling gate on the pod template that holds pods while required configuration is missing. */
export const configMissingGate = 'wave.pusher.com/config-missing';

/**
 * What Wave (the Go controller) wrote and wave never writes; wave removes them when it meets them, so a
 * cluster migrating from Wave is left with nothing of Wave's (see README, "Migrating from Wave").
 */
/** Older Wave versions: a finalizer on every workload they managed. */
export const waveFinalizer = 'wave.pusher.com/finalizer';
/** On a workload Wave held (required configuration missing): the scheduler to restore, possibly empty. */
export const waveSchedulingDisabledAnnotation = 'wave.pusher.com/scheduling-disabled';
/** The scheduler names Wave set to hold pods: newer versions, and the oldest ones. */
export const waveInvalidSchedulers: readonly string[] = ['wave.pusher.com/invalid', 'invalid'];
