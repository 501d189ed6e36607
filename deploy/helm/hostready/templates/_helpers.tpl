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
