{{- define "hostready.labels" -}}
app.kubernetes.io/name: hostready-agent
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}
{{- define "hostready.selector" -}}
app.kubernetes.io/name: hostready-agent
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}
