{{/*
Names. With a release named wave (or containing "wave") every object is called as in manifests/base:
wave, wave-certs, wave-tls, ...; otherwise <release>-wave.
*/}}
{{- define "wave.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
wave's own user, the ServiceAccount its Deployment runs as: the webhook's not-from-wave matchCondition
leaves its requests out (notFromWaveCondition in src/webhook/registration.ts).
*/}}
{{- define "wave.ownUsername" -}}
system:serviceaccount:{{ .Release.Namespace }}:{{ include "wave.fullname" . }}
{{- end }}

{{- define "wave.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 52 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* The ServiceAccount, Secret and RBAC names of `wave certs rotate`, and the TLS Secret. */}}
{{- define "wave.certsName" -}}{{ include "wave.fullname" . }}-certs{{- end }}
{{- define "wave.tlsSecret" -}}{{ include "wave.fullname" . }}-tls{{- end }}

{{- define "wave.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* Labels of every object: those of manifests/base plus Helm's. */}}
{{- define "wave.labels" -}}
app.kubernetes.io/name: {{ include "wave.name" .root }}
app.kubernetes.io/component: {{ .component }}
app.kubernetes.io/part-of: wave
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" }}
{{- end }}

{{/* Selector labels; pod template labels are these (plus podLabels). */}}
{{- define "wave.selectorLabels" -}}
app.kubernetes.io/name: {{ include "wave.name" .root }}
app.kubernetes.io/component: {{ .component }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
{{- end }}

{{/* Namespaces the webhook never sees: the release's own and excludedNamespaces, each once. */}}
{{- define "wave.excludedNamespaces" -}}
{{- $list := list }}
{{- range .Values.excludedNamespaces }}{{ $list = append $list . }}{{ end }}
{{- $list = append $list .Release.Namespace }}
{{- toJson (uniq $list) }}
{{- end }}

{{/* workloadKinds as `--workload-kinds` takes them: GROUP/VERSION/KIND:/pointer, comma-separated. */}}
{{- define "wave.workloadKindsFlag" -}}
{{- $entries := list }}
{{- range .Values.workloadKinds }}{{ $entries = append $entries (printf "%s/%s/%s:%s" .group .version .kind .templatePath) }}{{ end }}
{{- join "," $entries }}
{{- end }}

{{/* Rules of `wave serve`, for the ClusterRole or each namespace's Role (src/: every API call it makes). */}}
{{- define "wave.controllerRules" -}}
# Metadata-only list/watch of every ConfigMap and Secret (the config cache), and a GET of the ones an
# opted-in workload consumes (the cache's data reads, and the webhook's fresh reads at admission).
- apiGroups: ['']
  resources: [configmaps, secrets]
  verbs: [get, list, watch]
# Informers over the workloads; the loop's only write is a merge patch of the pod template annotation
# (and the scheduling gate).
- apiGroups: [apps]
  resources: [deployments, statefulsets, daemonsets]
  verbs: [list, watch, patch]
- apiGroups: [batch]
  resources: [cronjobs]
  verbs: [list, watch, patch]
# A StatefulSet's pods held by the config-missing gate are deleted so they are recreated released (never
# a Job's: wave deletes no pod of a CronJob), and adoption reads when a workload's pods started.
- apiGroups: ['']
  resources: [pods]
  verbs: [list, delete]
# ConfigChanged, ConfigMissing and ConfigReleased Events (core/v1) on the workloads.
- apiGroups: ['']
  resources: [events]
  verbs: [create]
{{- end }}

{{/* Rules of `wave serve` for the kinds the values add (argoRollouts, workloadKinds): kept apart from
wave.controllerRules, which test/unit/manifests-kinds.test.ts compares with the built-in kinds. */}}
{{- define "wave.extraKindRules" -}}
{{- if .Values.argoRollouts.enabled }}
# Argo Rollouts (--argo-rollouts).
- apiGroups: [argoproj.io]
  resources: [rollouts]
  verbs: [list, watch, patch]
{{- end }}
{{- range .Values.workloadKinds }}
# Declared with workloadKinds (--workload-kinds).
- apiGroups: [{{ .group }}]
  resources: [{{ .plural }}]
  verbs: [list, watch, patch]
{{- end }}
{{- end }}

{{/* The webhook's rules for the kinds the values add (argoRollouts, workloadKinds), after the built-in
kinds' rules that test/unit/manifests-kinds.test.ts compares with the table. */}}
{{- define "wave.extraKindWebhookRules" -}}
{{- if .Values.argoRollouts.enabled }}
- apiGroups: [argoproj.io]
  apiVersions: [v1alpha1]
  operations: [CREATE, UPDATE]
  resources: [rollouts]
  scope: Namespaced
{{- end }}
{{- range .Values.workloadKinds }}
- apiGroups: [{{ .group }}]
  apiVersions: [{{ .version }}]
  operations: [CREATE, UPDATE]
  resources: [{{ .plural }}]
  scope: Namespaced
{{- end }}
{{- end }}

{{/* Rules of `wave migrate from-wave` (src/cli/migrate.ts): metadata lists, JSON patches of ownerReferences
and finalizers. */}}
{{- define "wave.migrateRules" -}}
- apiGroups: ['']
  resources: [configmaps, secrets]
  verbs: [list, patch]
- apiGroups: [apps]
  resources: [deployments, statefulsets, daemonsets]
  verbs: [list, patch]
{{- end }}

{{/* The restricted-profile security context of every wave container. */}}
{{- define "wave.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/* No runAsUser/runAsGroup/fsGroup: the image's numeric USER applies, and OpenShift's restricted SCC may
assign its own UID. */}}
{{- define "wave.podSecurityContext" -}}
runAsNonRoot: true
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/* Checks that no schema can express. */}}
{{- define "wave.validate" -}}
{{- if and (gt (int .Values.replicas) 1) (not .Values.leaderElection.enabled) }}
{{- fail (printf "replicas is %d but leaderElection.enabled is false: every replica would patch workloads; set replicas: 1 or enable leader election" (int .Values.replicas)) }}
{{- end }}
{{- if has .Release.Namespace .Values.namespaces }}
{{- fail (printf "namespaces lists %q, the release namespace: wave never acts on its own namespace" .Release.Namespace) }}
{{- end }}
{{- range .Values.namespaces }}
{{- if has . $.Values.excludedNamespaces }}
{{- fail (printf "namespaces lists %q, which excludedNamespaces also lists" .) }}
{{- end }}
{{- end }}
{{- end }}

{{/* The pod spec of `wave certs rotate`, for the install Job and the CronJob. */}}
{{- define "wave.certsPodSpec" -}}
serviceAccountName: {{ include "wave.certsName" . }}
restartPolicy: OnFailure
securityContext:
  {{- include "wave.podSecurityContext" . | nindent 2 }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
containers:
  - name: rotate
    image: {{ include "wave.image" . }}
    imagePullPolicy: {{ .Values.image.pullPolicy }}
    args: [certs, rotate, --secret={{ include "wave.tlsSecret" . }}, --webhook-configuration={{ include "wave.fullname" . }}, --service={{ include "wave.fullname" . }}]
    env:
      - name: POD_NAMESPACE
        valueFrom:
          fieldRef:
            fieldPath: metadata.namespace
    resources:
      {{- toYaml .Values.certs.resources | nindent 6 }}
    securityContext:
      {{- include "wave.containerSecurityContext" . | nindent 6 }}
{{- end }}
