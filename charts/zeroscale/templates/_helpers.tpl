{{/* Names and labels shared by every object of the release. */}}
{{- define "zeroscale.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "zeroscale.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
app.kubernetes.io/part-of: zeroscale
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* Selector labels of one component: include with (list $ "scaler"). */}}
{{- define "zeroscale.selectorLabels" -}}
app.kubernetes.io/name: {{ index . 1 }}
app.kubernetes.io/instance: {{ (index . 0).Release.Name }}
{{- end -}}

{{- define "zeroscale.image" -}}
{{- $root := index . 0 -}}
{{- printf "%s/zeroscale-%s:%s" $root.Values.image.registry (index . 1) ($root.Values.image.tag | default $root.Chart.AppVersion) -}}
{{- end -}}

{{- define "zeroscale.redisAddress" -}}
{{- if .Values.redis.enabled -}}
{{- printf "%s-redis:6379" (include "zeroscale.fullname" .) -}}
{{- else -}}
{{- required "redis.externalAddress is required when redis.enabled is false" .Values.redis.externalAddress -}}
{{- end -}}
{{- end -}}

{{- define "zeroscale.scalerService" -}}
{{- printf "%s-scaler" (include "zeroscale.fullname" .) -}}
{{- end -}}

{{- define "zeroscale.webhookCertSecret" -}}
{{- printf "%s-webhook-tls" (include "zeroscale.fullname" .) -}}
{{- end -}}

{{- define "zeroscale.podAnnotations" -}}
{{- if .root.Values.metrics.podAnnotations }}
prometheus.io/scrape: "true"
prometheus.io/port: {{ .port | quote }}
prometheus.io/path: /metrics
{{- end }}
{{- end -}}
