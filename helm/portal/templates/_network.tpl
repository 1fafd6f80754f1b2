{{/*
The TCP port of a URL: its explicit port, else the scheme's (call with (dict "url" ... "default" "443")).
*/}}
{{- define "portal.urlPort" -}}
{{- $host := (urlParse .url).host }}
{{- $explicit := regexFind ":[0-9]+$" $host }}
{{- if $explicit }}{{ trimPrefix ":" $explicit }}{{ else }}{{ .default }}{{ end }}
{{- end }}

{{/*
The destinations the pods call, by name, with their URL's port: each config.upstreams entry,
keycloak (server_url), redis (redis.url) and database (database.url).
*/}}
{{- define "portal.urlPorts" -}}
{{- $ports := dict }}
{{- range $name, $upstream := (default dict .Values.config.upstreams) }}
{{- if and $upstream $upstream.url }}
{{- $default := ternary "443" "80" (hasPrefix "https://" $upstream.url) }}
{{- $_ := set $ports $name (include "portal.urlPort" (dict "url" $upstream.url "default" $default)) }}
{{- end }}
{{- end }}
{{- $oidc := (default dict (default dict .Values.config.auth).oidc) }}
{{- if $oidc.server_url }}
{{- $default := ternary "443" "80" (hasPrefix "https://" $oidc.server_url) }}
{{- $_ := set $ports "keycloak" (include "portal.urlPort" (dict "url" $oidc.server_url "default" $default)) }}
{{- end }}
{{- if .Values.redis.enabled }}
{{- $_ := set $ports "redis" (include "portal.urlPort" (dict "url" .Values.redis.url "default" "6379")) }}
{{- end }}
{{- if .Values.database.url }}
{{- $_ := set $ports "database" (include "portal.urlPort" (dict "url" .Values.database.url "default" "5432")) }}
{{- end }}
{{- toYaml $ports }}
{{- end }}

{{/*
The TCP ports open toward networkPolicy.egressTo: those of the URLs not given an inCluster entry
of their name, and extraEgressPorts. Empty when there is none (the rule is then left out: a rule
without ports would open every port).
*/}}
{{- define "portal.egressPorts" -}}
{{- $inCluster := default dict .Values.networkPolicy.inCluster }}
{{- $ports := dict }}
{{- range $name, $port := include "portal.urlPorts" . | fromYaml }}
{{- if not (index $inCluster $name) }}
{{- $_ := set $ports (toString $port) true }}
{{- end }}
{{- end }}
{{- range .Values.networkPolicy.extraEgressPorts }}
{{- $_ := set $ports (toString .) true }}
{{- end }}
{{- range $port := keys $ports | sortAlpha }}
- protocol: TCP
  port: {{ atoi $port }}
{{- end }}
{{- end }}

{{/*
Hosts of the URLs that look like in-cluster Services (*.svc, *.cluster.local, or a bare name)
and have no inCluster entry: their Service port may not be their pods' (install notes).
*/}}
{{- define "portal.unmappedServices" -}}
{{- $inCluster := default dict .Values.networkPolicy.inCluster }}
{{- $urls := dict }}
{{- range $name, $upstream := (default dict .Values.config.upstreams) }}
{{- if and $upstream $upstream.url }}{{ $_ := set $urls $name $upstream.url }}{{ end }}
{{- end }}
{{- with (default dict (default dict .Values.config.auth).oidc).server_url }}{{ $_ := set $urls "keycloak" . }}{{ end }}
{{- if .Values.redis.enabled }}{{ $_ := set $urls "redis" .Values.redis.url }}{{ end }}
{{- if .Values.database.url }}{{ $_ := set $urls "database" .Values.database.url }}{{ end }}
{{- $found := dict }}
{{- range $name, $url := $urls }}
{{- $host := regexReplaceAll ":[0-9]+$" (urlParse $url).host "" }}
{{- $host = regexReplaceAll "^.*@" $host "" }}
{{- if and (not (index $inCluster $name)) (or (hasSuffix ".svc" $host) (hasSuffix ".cluster.local" $host) (not (contains "." $host))) }}
{{- $_ := set $found $name $host }}
{{- end }}
{{- end }}
{{- toYaml $found }}
{{- end }}
