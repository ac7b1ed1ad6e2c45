{{/* Names and labels shared by every object of the release. */}}
{{- define "zeroscale.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Selector labels of one component (scaler, balancer, redis): what Services, PDBs,
     NetworkPolicies and workload selectors match on. Include with (list $ "scaler").
     They never change for a release: a workload's selector is immutable. */}}
{{- define "zeroscale.selectorLabels" -}}
app.kubernetes.io/name: {{ index . 1 }}
app.kubernetes.io/instance: {{ (index . 0).Release.Name }}
{{- end -}}

{{/* Every label of an object belonging to one component: the selector labels once, and
     the release's own. Include with (list $ "scaler"). */}}
{{- define "zeroscale.labels" -}}
{{- $root := index . 0 -}}
{{ include "zeroscale.selectorLabels" . }}
helm.sh/chart: {{ printf "%s-%s" $root.Chart.Name $root.Chart.Version | replace "+" "_" }}
app.kubernetes.io/part-of: zeroscale
app.kubernetes.io/version: {{ $root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ $root.Release.Service }}
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

{{/* The scaler's leader-election Lease, in the release's namespace (the scaler's
     default name: it has no flag for it). The balancer follows it to reach the leader. */}}
{{- define "zeroscale.scalerLease" -}}
zeroscale-scaler
{{- end -}}

{{- define "zeroscale.webhookCertSecret" -}}
{{- printf "%s-webhook-tls" (include "zeroscale.fullname" .) -}}
{{- end -}}

{{- define "zeroscale.balancerAdminCertSecret" -}}
{{- printf "%s-balancer-admin-tls" (include "zeroscale.fullname" .) -}}
{{- end -}}

{{/* "true" when the scaler's gRPC and HTTP ports and the balancer's admin port serve TLS:
     tls.enabled, with certificates that share one CA (Helm's, or cert-manager's issuerRef;
     a self-signed Issuer per certificate would give each its own). "" otherwise. */}}
{{- define "zeroscale.tlsEnabled" -}}
{{- if and .Values.tls.enabled (or (not .Values.webhook.certManager.enabled) .Values.webhook.certManager.issuerRef) -}}
true
{{- end -}}
{{- end -}}

{{/* The scheme of the scaler's HTTP port and the balancer's admin port. */}}
{{- define "zeroscale.scheme" -}}
{{- if include "zeroscale.tlsEnabled" . }}HTTPS{{ else }}HTTP{{ end -}}
{{- end -}}

{{/* Prometheus scrape annotations of a pod, when metrics.podAnnotations: a mapping
     (possibly empty). Include with (dict "root" $ "port" 8080). */}}
{{- define "zeroscale.podAnnotations" -}}
{{- if .root.Values.metrics.podAnnotations }}
prometheus.io/scrape: "true"
prometheus.io/port: {{ .port | quote }}
prometheus.io/path: /metrics
prometheus.io/scheme: {{ include "zeroscale.scheme" .root | lower | quote }}
{{- end }}
{{- end -}}

{{/* The default affinity of a component with several replicas: spread over nodes when
     the scheduler can, so one node going away never takes every replica. A component's
     own affinity value replaces it. Include with (list $ "scaler" .Values.scaler.affinity). */}}
{{- define "zeroscale.affinity" -}}
{{- $affinity := index . 2 -}}
{{- if $affinity -}}
{{- toYaml $affinity -}}
{{- else -}}
podAntiAffinity:
  preferredDuringSchedulingIgnoredDuringExecution:
    - weight: 100
      podAffinityTerm:
        topologyKey: kubernetes.io/hostname
        labelSelector:
          matchLabels:
            {{- include "zeroscale.selectorLabels" (list (index . 0) (index . 1)) | nindent 12 }}
{{- end -}}
{{- end -}}
