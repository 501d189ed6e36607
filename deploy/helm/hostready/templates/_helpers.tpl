{{- define "hostready.labels" -}}
app.kubernetes.io/name: hostready-agent
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end }}
{{- define "hostready.selector" -}}
app.kubernetes.io/name: hostready-agent
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}
{{- /* The ServiceAccount the agent runs as, created or not. */}}
{{- define "hostready.serviceAccountName" -}}
{{- default (printf "%s-agent" .Release.Name) .Values.serviceAccount.name }}
{{- end }}
{{- /* registry/repository:tag, the registry left out when empty. */}}
{{- define "hostready.image" -}}
{{- $repo := .Values.image.repository }}
{{- with .Values.image.registry }}{{ $repo = printf "%s/%s" . $repo }}{{ end }}
{{- printf "%s:%s" $repo .Values.image.tag }}
{{- end }}
{{- /* "true" when a Prometheus Operator object of kind `kind` is to be rendered: `enabled`
  true or false as set, or "auto" (the default): when the cluster serves that kind in
  monitoring.coreos.com/v1 — by kind, not only the group version, because clusters often carry
  the ServiceMonitor CRD alone. `helm template` sees no cluster: pass
  --api-versions monitoring.coreos.com/v1/<kind>. Empty otherwise. */}}
{{- define "hostready.monitoringEnabled" -}}
{{- if eq (toString .enabled) "auto" }}
{{- if .root.Capabilities.APIVersions.Has (printf "monitoring.coreos.com/v1/%s" .kind) }}true{{ end }}
{{- else if .enabled }}true{{ end }}
{{- end }}
{{- /* The Prometheus job of the agent's targets: the PodMonitor's (<namespace>/<name>, what
  the Prometheus Operator names a PodMonitor's job) unless monitoring.prometheusRule.job says. */}}
{{- define "hostready.job" -}}
{{- default (printf "%s/%s-agent" .Release.Namespace .Release.Name) .Values.monitoring.prometheusRule.job }}
{{- end }}
