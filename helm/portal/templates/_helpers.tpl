{{/*
Expand the name of the chart.
*/}}
{{- define "portal.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Create a default fully qualified app name.
We truncate at 63 chars because some Kubernetes name fields are limited to this (by the DNS naming spec).
If release name contains chart name it will be used as a full name.
*/}}
{{- define "portal.fullname" -}}
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
Create chart name and version as used by the chart label.
*/}}
{{- define "portal.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Common labels (commonLabels first: the chart's own labels win on a clash).
*/}}
{{- define "portal.labels" -}}
{{- $own := dict "helm.sh/chart" (include "portal.chart" .) "app.kubernetes.io/managed-by" .Release.Service "app.kubernetes.io/part-of" "devsecops-portal" }}
{{- if .Chart.AppVersion }}
{{- $_ := set $own "app.kubernetes.io/version" .Chart.AppVersion }}
{{- end }}
{{- $own = merge $own (include "portal.selectorLabels" . | fromYaml) }}
{{- toYaml (merge $own (deepCopy (default dict .Values.commonLabels))) }}
{{- end }}

{{/*
An object's metadata: name, the common labels plus `labels`, commonAnnotations plus `annotations`
(the object's own win). Call with (dict "ctx" $ "name" ... "labels" ... "annotations" ...).
*/}}
{{- define "portal.metadata" -}}
name: {{ .name }}
labels:
  {{- merge (deepCopy (default dict .labels)) (include "portal.labels" .ctx | fromYaml) | toYaml | nindent 2 }}
{{- with merge (deepCopy (default dict .annotations)) (deepCopy (default dict .ctx.Values.commonAnnotations)) }}
annotations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/*
Selector labels
*/}}
{{- define "portal.selectorLabels" -}}
app.kubernetes.io/name: {{ include "portal.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
Create the name of the service account to use
*/}}
{{- define "portal.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "portal.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The image reference: [registry/]repository, with the digest when set, else the tag (appVersion
by default). global.imageRegistry wins over image.registry.
*/}}
{{- define "portal.image" -}}
{{- $registry := coalesce (default dict .Values.global).imageRegistry .Values.image.registry }}
{{- $repository := .Values.image.repository }}
{{- if $registry }}
{{- $repository = printf "%s/%s" (trimSuffix "/" $registry) $repository }}
{{- end }}
{{- if .Values.image.digest }}
{{- printf "%s@%s" $repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" $repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/*
The pods' pull secrets: imagePullSecrets and global.imagePullSecrets (names or {name: ...}), once each.
*/}}
{{- define "portal.imagePullSecrets" -}}
{{- $names := list }}
{{- range concat (default list .Values.imagePullSecrets) (default list (default dict .Values.global).imagePullSecrets) }}
{{- if kindIs "map" . }}
{{- $names = append $names .name }}
{{- else }}
{{- $names = append $names . }}
{{- end }}
{{- end }}
{{- range $names | uniq }}
- name: {{ . }}
{{- end }}
{{- end }}

{{/*
The name of the Secret the pods read their secrets from.
*/}}
{{- define "portal.secretName" -}}
{{- default (include "portal.fullname" .) .Values.secrets.existingSecret }}
{{- end }}

{{/*
The chart's Secret's keys (base64): secrets.env, with PORTAL_SECRET_KEY generated at install and
kept on upgrades. The configuration check's copy renders the same keys.
*/}}
{{- define "portal.secretData" -}}
{{- $existing := lookup "v1" "Secret" .Release.Namespace (include "portal.fullname" .) }}
{{- range $key, $value := .Values.secrets.env }}
{{- if $value }}
{{ $key }}: {{ $value | toString | b64enc | quote }}
{{- else if and (eq $key "PORTAL_SECRET_KEY") $existing (index $existing.data $key) }}
{{ $key }}: {{ index $existing.data $key | quote }}
{{- else if eq $key "PORTAL_SECRET_KEY" }}
{{ $key }}: {{ randAlphaNum 48 | b64enc | quote }}
{{- end }}
{{- end }}
{{- end }}
