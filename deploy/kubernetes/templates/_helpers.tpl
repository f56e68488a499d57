{{/*
Names. Every object is named after the release, so two releases share a namespace only
when their names differ; the NATS chart, a dependency, names its objects <release>-nats.
*/}}
{{- define "loudly.name" -}}
{{- printf "%s-%s" .root.Release.Name .name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The NATS chart's full name (its nats.fullname): the release name when it contains "nats". */}}
{{- define "loudly.nats" -}}
{{- if contains "nats" .Release.Name -}}{{ .Release.Name | trunc 63 | trimSuffix "-" }}{{- else -}}{{ printf "%s-nats" .Release.Name | trunc 63 | trimSuffix "-" }}{{- end -}}
{{- end -}}
{{- define "loudly.postgres" -}}{{ printf "%s-pg" .Release.Name }}{{- end -}}
{{- define "loudly.collector" -}}{{ .Release.Name }}{{- end -}}

{{/*
Labels: selectorLabels pick one program's pods (name: the program, instance: the
release); labels add what every object carries.
*/}}
{{- define "loudly.selectorLabels" -}}
app.kubernetes.io/name: {{ .name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
{{- end -}}

{{- define "loudly.labels" -}}
{{ include "loudly.selectorLabels" . }}
app.kubernetes.io/part-of: loudly
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/version: {{ include "loudly.imageTag" .root | quote }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version }}
{{- end -}}

{{- define "loudly.imageTag" -}}
{{- $tag := .Values.image.tag | default .Chart.AppVersion | toString -}}
{{- if eq $tag "latest" -}}
{{- fail "image.tag: \"latest\" is refused; give the tag of the image you built (docs/kubernetes.md)" -}}
{{- end -}}
{{- $tag -}}
{{- end -}}

{{- define "loudly.image" -}}
{{ printf "%s:%s" .Values.image.repository (include "loudly.imageTag" .) }}
{{- end -}}

{{/*
GOMEMLIMIT: 90% of the container's memory limit, in bytes, so the Go runtime collects
harder before the kernel kills the container. The limit must be given in Mi or Gi.
*/}}
{{- define "loudly.gomemlimit" -}}
{{- $mem := toString .limits.memory -}}
{{- $bytes := 0 -}}
{{- if hasSuffix "Gi" $mem -}}
{{- $bytes = mul (trimSuffix "Gi" $mem | atoi) 1073741824 -}}
{{- else if hasSuffix "Mi" $mem -}}
{{- $bytes = mul (trimSuffix "Mi" $mem | atoi) 1048576 -}}
{{- end -}}
{{- if le $bytes 0 -}}
{{- fail (printf "resources.limits.memory %q: give the memory limit in Mi or Gi (GOMEMLIMIT is 90%% of it)" $mem) -}}
{{- end -}}
{{- div (mul $bytes 9) 10 -}}
{{- end -}}

{{/*
The security context of every Loudly container: the image's non-root user (65532, the
distroless nonroot user of the Dockerfile), no privilege escalation, no capabilities, a
read-only root filesystem (the programs write nothing to disk).
*/}}
{{- define "loudly.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "loudly.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop: ["ALL"]
{{- end -}}

{{/*
A Secret's password: the one already in the cluster (so an upgrade keeps it), or a new
random one. Called with the root context, the Secret's name and its key.
*/}}
{{- define "loudly.password" -}}
{{- $existing := lookup "v1" "Secret" .root.Release.Namespace .secret -}}
{{- if and $existing (hasKey $existing.data .key) -}}
{{- index $existing.data .key -}}
{{- else -}}
{{- randAlphaNum 32 | b64enc -}}
{{- end -}}
{{- end -}}

{{/* The NATS user of a program and the key of its password in the <release>-nats-users Secret. */}}
{{- define "loudly.natsPasswordKey" -}}{{ printf "%s_NATS_PASSWORD" (upper .) }}{{- end -}}

{{/* The environment every Loudly program needs to reach NATS as its own user. */}}
{{- define "loudly.natsEnv" -}}
- name: NATS_URL
  value: {{ printf "nats://%s:4222" (include "loudly.nats" .root) | quote }}
- name: NATS_USER
  value: {{ .user | quote }}
- name: NATS_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "loudly.name" (dict "root" .root "name" "nats-users") }}
      key: {{ include "loudly.natsPasswordKey" .user }}
{{- end -}}

{{/* OTEL_EXPORTER_OTLP_ENDPOINT: the release's collector, or an existing one. */}}
{{- define "loudly.otlpEndpoint" -}}
{{- if .Values.telemetry.collector.enabled -}}
{{ printf "http://%s-collector:4318" (include "loudly.collector" .) }}
{{- else -}}
{{ required "telemetry.otlpEndpoint: an OTLP/HTTP endpoint when telemetry.collector.enabled is false" .Values.telemetry.otlpEndpoint }}
{{- end -}}
{{- end -}}

{{/* The telemetry environment of every Loudly program: OTLP for traces, metrics and logs. */}}
{{- define "loudly.telemetryEnv" -}}
- name: OTEL_SERVICE_NAME
  value: {{ .name | quote }}
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ include "loudly.otlpEndpoint" .root | quote }}
- name: DEPLOYMENT_ENVIRONMENT
  value: {{ .root.Values.environment | quote }}
- name: LOG_LEVEL
  value: {{ .root.Values.serviceDefaults.logLevel | quote }}
{{- end -}}

{{/* The pods of this release that a program or policy refers to, by role. */}}
{{- define "loudly.natsPods" -}}
app.kubernetes.io/name: nats
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: nats
{{- end -}}

{{- define "loudly.postgresPods" -}}
cnpg.io/cluster: {{ include "loudly.postgres" . }}
{{- end -}}

{{- define "loudly.collectorPods" -}}
app.kubernetes.io/component: opentelemetry-collector
app.kubernetes.io/instance: {{ printf "%s.%s" .Release.Namespace (include "loudly.collector" .) }}
{{- end -}}
