{{/*
Chart name, overridable with nameOverride.
*/}}
{{- define "milvusops.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name used for every resource: fullnameOverride, or <release>-<name> (just <release> when it
already contains the name).
*/}}
{{- define "milvusops.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Name of a shard's Deployment: the full name for the default shard (""), else <fullname>-<shard>.
Called with (list $root $shard).
*/}}
{{- define "milvusops.shardFullname" -}}
{{- $root := index . 0 }}
{{- $shard := index . 1 }}
{{- if $shard }}
{{- $name := printf "%s-%s" (include "milvusops.fullname" $root) $shard }}
{{- if le (len $name) 63 }}
{{- $name }}
{{- else }}
{{- /* cut to fit, with a hash of the shard: two long shard names must not cut to the same name */}}
{{- printf "%s-%s" ($name | trunc 54 | trimSuffix "-") (sha256sum $shard | trunc 8) }}
{{- end }}
{{- else }}
{{- include "milvusops.fullname" $root }}
{{- end }}
{{- end }}

{{/*
Kopf peering name of a shard: "default" for the default shard; each other shard has its own, so
shards never pause each other while the replicas of one shard still do. Called with (list $root $shard).
*/}}
{{- define "milvusops.peeringName" -}}
{{- if index . 1 }}
{{- include "milvusops.shardFullname" . }}
{{- else }}
{{- print "default" }}
{{- end }}
{{- end }}

{{/*
Chart label value: <name>-<version>.
*/}}
{{- define "milvusops.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Selector labels (stable across upgrades: never add version-dependent labels here).
*/}}
{{- define "milvusops.selectorLabels" -}}
app.kubernetes.io/name: {{ include "milvusops.name" . | quote }}
app.kubernetes.io/instance: {{ .Release.Name | quote }}
{{- end }}

{{/*
Standard labels of every resource.
*/}}
{{- define "milvusops.labels" -}}
helm.sh/chart: {{ include "milvusops.chart" . | quote }}
{{ include "milvusops.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: operator
app.kubernetes.io/part-of: milvusops
app.kubernetes.io/managed-by: {{ .Release.Service | quote }}
{{- end }}

{{/*
Image tag: image.tag, or the chart's appVersion.
*/}}
{{- define "milvusops.imageTag" -}}
{{- default .Chart.AppVersion .Values.image.tag }}
{{- end }}

{{/*
ServiceAccount name.
*/}}
{{- define "milvusops.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "milvusops.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
Checks of value combinations that the schema alone cannot explain well. Included by the Deployment,
so that `helm template` and `helm install` fail early with a clear message.
*/}}
{{- define "milvusops.validate" -}}
{{- if eq .Values.rbac.scope "namespaces" }}
{{- if not .Values.watchNamespaces }}
{{- fail "rbac.scope=namespaces needs at least one namespace in watchNamespaces (e.g. --set watchNamespaces={team-a,team-b})" }}
{{- end }}
{{- else if .Values.watchNamespaces }}
{{- fail "watchNamespaces is only used with rbac.scope=namespaces; with rbac.scope=cluster every namespace is watched (leave watchNamespaces empty)" }}
{{- end }}
{{- if and .Values.metrics.serviceMonitor.enabled (not .Values.metrics.enabled) }}
{{- fail "metrics.serviceMonitor.enabled needs metrics.enabled=true: without the metrics port and Service there is nothing to scrape" }}
{{- end }}
{{- if and (gt (int .Values.replicaCount) 1) (not .Values.peering.enabled) }}
{{- fail "replicaCount > 1 needs peering.enabled=true: without Kopf peering every replica would act on every resource" }}
{{- end }}
{{- end }}

{{/*
The rules an operator instance needs in every namespace it serves (cluster-wide in the cluster
scope), and no more: docs/security.md has one line per rule and tests/e2e/test_security.py runs the
operator with exactly these. Kopf watches both kinds (list, watch) and only ever merge-patches them
(finalizer, annotations), never updates; the operator reads MilvusConnections and Secrets by name
(get), patches status through the /status subresource, and posts core v1 Events (create only: Kopf
never patches an Event, nor uses events.k8s.io).
*/}}
{{- define "milvusops.namespacedRules" -}}
- apiGroups: ["milvusops.dev"]
  resources: ["milvuscollections", "milvusaliases"]
  verbs: ["list", "watch", "patch"]
- apiGroups: ["milvusops.dev"]
  resources: ["milvusconnections"]
  verbs: ["get", "list", "watch", "patch"]
- apiGroups: ["milvusops.dev"]
  resources: ["milvuscollections/status", "milvusconnections/status", "milvusaliases/status"]
  verbs: ["patch"]
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get"]
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create"]
{{- end }}

{{/*
Cluster-wide rules, all for Kopf itself: it lists and watches CustomResourceDefinitions to notice
ours being (re)installed, and, only when it serves a list of namespaces (rbac.scope=namespaces),
Namespaces to follow them appearing and going (a cluster-wide Kopf never looks at Namespaces).
*/}}
{{- define "milvusops.clusterRules" -}}
- apiGroups: ["apiextensions.k8s.io"]
  resources: ["customresourcedefinitions"]
  verbs: ["list", "watch"]
{{- if eq .Values.rbac.scope "namespaces" }}
- apiGroups: [""]
  resources: ["namespaces"]
  verbs: ["list", "watch"]
{{- end }}
{{- end }}

{{/*
Whether this release renders a peering object: "true" when it is absent (and in `helm template`, where
lookup finds nothing) or was made by this release; "false" when it already exists for someone else (another
release, another Kopf operator, or a hook of an earlier chart), which then stays as it is. Rendered, it
is part of the release, so an upgrade never deletes and re-creates it (that would pause every replica
and restart every resource's daemon); `helm.sh/resource-policy: keep` leaves it at uninstall, as
another release may share it. Called with (list $root <the lookup's result>).
*/}}
{{- define "milvusops.peeringOwned" -}}
{{- $root := index . 0 }}
{{- $existing := index . 1 }}
{{- if not $existing }}
{{- print "true" }}
{{- else }}
{{- $annotations := dig "metadata" "annotations" (dict) $existing }}
{{- $release := index $annotations "meta.helm.sh/release-name" | default "" }}
{{- $namespace := index $annotations "meta.helm.sh/release-namespace" | default "" }}
{{- print (and (eq $release $root.Release.Name) (eq $namespace $root.Release.Namespace)) }}
{{- end }}
{{- end }}
