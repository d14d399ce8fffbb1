/** The names wave reads and writes on Kubernetes objects: the user-facing contract (see README). */

/** On the workload: opts it in. Only the exact value `"true"` counts. */
export const optInAnnotation = 'wave.pusher.com/update-on-config-change';

/** On the pod template: lowercase hex SHA-256 of the consumed configuration, written by wave. */
export const configHashAnnotation = 'wave.pusher.com/config-hash';

/** On the workload: comma list of `name` or `namespace/name`, watched although not referenced. */
export const extraConfigMapsAnnotation = 'wave.pusher.com/extra-configmaps';
export const extraSecretsAnnotation = 'wave.pusher.com/extra-secrets';

/** Scheduling gate on the pod template that holds pods while required configuration is missing. */
export const configMissingGate = 'wave.pusher.com/config-missing';
