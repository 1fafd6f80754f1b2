{{/*
What the portal's container and the `helm test` pods share: pull secrets, environment, the
Secret, the configuration and the extra volumes.
*/}}

{{/* The pod-level settings every pod of the chart has. */}}
{{- define "portal.podCommon" -}}
serviceAccountName: {{ include "portal.serviceAccountName" . }}
{{ include "portal.podSettings" . }}
{{- end }}

{{/* The same but the ServiceAccount (the configuration check runs before the chart makes it). */}}
{{- define "portal.podSettings" -}}
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
{{- include "portal.envFromSecret" (dict "ctx" . "secret" (include "portal.secretName" .)) }}
{{- end }}

{{/* The same, from the Secret named `secret` (the configuration check's own copy). */}}
{{- define "portal.envFromSecret" -}}
- secretRef:
    name: {{ .secret }}
{{- with .ctx.Values.extraEnvFrom }}
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
{{- include "portal.configVolumesFrom" (dict "ctx" . "configMap" (include "portal.fullname" .)) }}
{{- end }}

{{/* The same, with the configuration from the ConfigMap named `configMap`. */}}
{{- define "portal.configVolumesFrom" -}}
- name: config
  configMap:
    name: {{ .configMap }}
- name: tmp
  emptyDir:
    sizeLimit: 64Mi
{{- with .ctx.Values.extraVolumes }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* The `helm test` pods' own labels: never the portal's selector (the Service, the policy). */}}
{{- define "portal.testLabels" -}}
app.kubernetes.io/name: {{ printf "%s-test" (include "portal.name" .) }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: helm-test
{{- end }}

{{/*
The container that runs the portal's check-config on /etc/portal/portal.yaml with the Secret
named `secret` and `resources`: in the configuration check before installs and upgrades, and in
`helm test`. Call with (dict "ctx" $ "secret" ... "resources" ...).
*/}}
{{- define "portal.checkConfigContainer" -}}
- name: check-config
  image: {{ include "portal.image" .ctx | quote }}
  imagePullPolicy: {{ .ctx.Values.image.pullPolicy }}
  command: ["python", "-m", "portal", "check-config", "--helm", "/etc/portal/portal.yaml"]
  securityContext:
    {{- toYaml .ctx.Values.securityContext | nindent 4 }}
  env:
    {{- include "portal.env" .ctx | nindent 4 }}
  envFrom:
    {{- include "portal.envFromSecret" (dict "ctx" .ctx "secret" .secret) | nindent 4 }}
  resources:
    {{- toYaml .resources | nindent 4 }}
  volumeMounts:
    {{- include "portal.configMounts" .ctx | nindent 4 }}
{{- end }}
