{{/*
What the portal's container and the `helm test` pods share: pull secrets, environment, the
Secret, the configuration and the extra volumes.
*/}}

{{/* The pod-level settings every pod of the chart has. */}}
{{- define "portal.podCommon" -}}
serviceAccountName: {{ include "portal.serviceAccountName" . }}
automountServiceAccountToken: false
{{- with include "portal.imagePullSecrets" . | trim }}
imagePullSecrets:
  {{- . | nindent 2 }}
{{- end }}
enableServiceLinks: false
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- with .Values.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- with .Values.runtimeClassName }}
runtimeClassName: {{ . }}
{{- end }}
{{- with .Values.hostAliases }}
hostAliases:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.dnsConfig }}
dnsConfig:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/* The portal container's environment: its settings, then extraEnv. */}}
{{- define "portal.env" -}}
- name: PORTAL_CONFIG
  value: /etc/portal/portal.yaml
- name: PORTAL_BIND
  value: "0.0.0.0:8000"
- name: PORTAL_METRICS_BIND
  value: "0.0.0.0:{{ .Values.metrics.port }}"
- name: PROMETHEUS_MULTIPROC_DIR
  value: {{ .Values.metrics.multiprocDir | quote }}
- name: PORTAL_WORKERS
  value: {{ .Values.gunicorn.workers | quote }}
- name: PORTAL_THREADS
  value: {{ .Values.gunicorn.threads | quote }}
- name: PORTAL_ACCESS_LOG
  value: {{ ternary "1" "0" .Values.gunicorn.accessLog | quote }}
- name: PORTAL_FORWARDED_ALLOW_IPS
  value: {{ .Values.gunicorn.forwardedAllowIps | quote }}
- name: PORTAL_LOG_LEVEL
  value: {{ .Values.logLevel | quote }}
{{- with .Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Every key of the Secret becomes a variable of the same name; then extraEnvFrom. */}}
{{- define "portal.envFrom" -}}
- secretRef:
    name: {{ include "portal.secretName" . }}
{{- with .Values.extraEnvFrom }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* The configuration, /tmp and the extra volumes, as the container mounts them. */}}
{{- define "portal.configMounts" -}}
- name: config
  mountPath: /etc/portal
  readOnly: true
- name: tmp
  mountPath: /tmp
{{- with .Values.extraVolumeMounts }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* The volumes behind them. The root filesystem is read-only: /tmp is an emptyDir. */}}
{{- define "portal.configVolumes" -}}
- name: config
  configMap:
    name: {{ include "portal.fullname" . }}
- name: tmp
  emptyDir:
    sizeLimit: 64Mi
{{- with .Values.extraVolumes }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* The `helm test` pods' own labels: never the portal's selector (the Service, the policy). */}}
{{- define "portal.testLabels" -}}
app.kubernetes.io/name: {{ printf "%s-test" (include "portal.name" .) }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: helm-test
{{- end }}
