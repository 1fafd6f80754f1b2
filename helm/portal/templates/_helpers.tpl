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
Common labels
*/}}
{{- define "portal.labels" -}}
helm.sh/chart: {{ include "portal.chart" . }}
{{ include "portal.selectorLabels" . }}
{{- if .Chart.AppVersion }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: devsecops-portal
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
The image reference: repository with the digest when set, else the tag (appVersion by default).
*/}}
{{- define "portal.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/*
The name of the Secret the pods read their secrets from.
*/}}
{{- define "portal.secretName" -}}
{{- default (include "portal.fullname" .) .Values.secrets.existingSecret }}
{{- end }}

{{/*
The portal.yaml the ConfigMap holds: `config`, plus the Redis URL when redis.enabled and the
database (database.url, or SQLite's data_dir on the volume).
Refuses the demo identity unless allowDemoAuth is set.
*/}}
{{- define "portal.config" -}}
{{- $config := deepCopy .Values.config }}
{{- $auth := default dict $config.auth }}
{{- if and (eq (default "demo" $auth.mode) "demo") (not .Values.allowDemoAuth) }}
{{- fail "config.auth.mode is \"demo\" (or missing): everyone would be signed in as the demo user. Configure single sign-on, or set allowDemoAuth=true for a throw-away demo." }}
{{- end }}
{{- $oidc := default dict $auth.oidc }}
{{- if and (eq (default "" $auth.mode) "oidc") .Values.ingress.host (not $oidc.public_url) }}
{{- /* Where browsers reach the portal: the Ingress host (the redirect URIs are built from it). */}}
{{- $scheme := ternary "https" "http" .Values.ingress.tls.enabled }}
{{- $_ := set $oidc "public_url" (printf "%s://%s" $scheme .Values.ingress.host) }}
{{- end }}
{{- if and (eq (default "" $auth.mode) "oidc") (not $oidc.public_url) (not $oidc.allowed_hosts) }}
{{- fail "config.auth.oidc.public_url (or ingress.host) is required: the portal's address as browsers reach it, from which its Keycloak redirect URIs are built" }}
{{- end }}
{{- if $oidc }}
{{- $_ := set $auth "oidc" (omit $oidc "public_url" | merge (ternary (dict "public_url" $oidc.public_url) dict (not (empty $oidc.public_url)))) }}
{{- end }}
{{- if .Values.redis.enabled }}
{{- $cache := default dict $config.cache }}
{{- $_ := set $cache "redis_url" .Values.redis.url }}
{{- $_ := set $config "cache" $cache }}
{{- end }}
{{- $database := default dict $config.database }}
{{- if .Values.database.url }}
{{- $_ := set $database "url" .Values.database.url }}
{{- else }}
{{- $_ := set $database "data_dir" .Values.database.sqlite.mountPath }}
{{- end }}
{{- $_ := set $config "database" $database }}
{{- toYaml $config }}
{{- end }}

{{/*
Whether the database is SQLite (database.url empty): one pod, a volume, pods replaced not rolled.
*/}}
{{- define "portal.sqlite" -}}
{{- if not .Values.database.url }}true{{ end }}
{{- end }}

{{/*
The SQLite file's claim: an existing one, or the chart's.
*/}}
{{- define "portal.dataClaim" -}}
{{- default (printf "%s-data" (include "portal.fullname" .)) .Values.database.sqlite.persistence.existingClaim }}
{{- end }}

{{/*
The TCP ports the pods call out to: those of the upstream URLs, Redis, PostgreSQL, Keycloak and extraEgressPorts.
*/}}
{{- define "portal.egressPorts" -}}
{{- $ports := dict }}
{{- range $name, $upstream := (default dict .Values.config.upstreams) }}
{{- if and $upstream $upstream.url }}
{{- $url := urlParse $upstream.url }}
{{- $port := ternary "443" "80" (eq $url.scheme "https") }}
{{- if contains ":" $url.host }}
{{- $port = last (splitList ":" $url.host) }}
{{- end }}
{{- $_ := set $ports $port true }}
{{- end }}
{{- end }}
{{- if .Values.redis.enabled }}
{{- $url := urlParse .Values.redis.url }}
{{- $port := "6379" }}
{{- if contains ":" $url.host }}
{{- $port = last (splitList ":" $url.host) }}
{{- end }}
{{- $_ := set $ports $port true }}
{{- end }}
{{- if .Values.database.url }}
{{- $url := urlParse .Values.database.url }}
{{- $port := "5432" }}
{{- if contains ":" $url.host }}
{{- $port = last (splitList ":" $url.host) }}
{{- end }}
{{- $_ := set $ports $port true }}
{{- end }}
{{- $oidc := (default dict (default dict .Values.config.auth).oidc) }}
{{- if $oidc.server_url }}
{{- $url := urlParse $oidc.server_url }}
{{- $port := ternary "443" "80" (eq $url.scheme "https") }}
{{- if contains ":" $url.host }}
{{- $port = last (splitList ":" $url.host) }}
{{- end }}
{{- $_ := set $ports $port true }}
{{- end }}
{{- range .Values.networkPolicy.extraEgressPorts }}
{{- $_ := set $ports (toString .) true }}
{{- end }}
{{- range $port := keys $ports | sortAlpha }}
- protocol: TCP
  port: {{ atoi $port }}
{{- end }}
{{- end }}
