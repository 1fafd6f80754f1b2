{{/*
The portal.yaml the ConfigMap holds: `config`, plus the Redis URL when redis.enabled and the
database (database.url, or SQLite's data_dir on the volume).
Refuses the demo identity unless allowDemoAuth is set.
*/}}
{{- define "portal.config" -}}
{{- $config := deepCopy .Values.config }}
{{- /* The chart's own keys for these: it opens the NetworkPolicy, mounts the volume, passes
    the password. Given in config, they would be used without any of that. */}}
{{- if (default dict $config.cache).redis_url }}
{{- fail "config.cache.redis_url: set redis.enabled=true and redis.url instead (the chart then opens the NetworkPolicy to Redis and passes PORTAL_REDIS_PASSWORD)" }}
{{- end }}
{{- $given := default dict $config.database }}
{{- if or $given.url $given.data_dir }}
{{- fail "config.database.url and config.database.data_dir: set database.url (PostgreSQL) or database.sqlite instead (the chart then opens the NetworkPolicy, or mounts the SQLite volume, and runs one pod or several accordingly)" }}
{{- end }}
{{- $auth := default dict $config.auth }}
{{- if and (eq (default "demo" $auth.mode) "demo") (not .Values.allowDemoAuth) }}
{{- fail "config.auth.mode is \"demo\" (or missing): everyone would be signed in as the demo user. Configure single sign-on, or set allowDemoAuth=true for a throw-away demo." }}
{{- end }}
{{- $oidc := default dict $auth.oidc }}
{{- if and (eq (default "" $auth.mode) "oidc") .Values.ingress.enabled .Values.ingress.host (not $oidc.public_url) (not $oidc.allowed_hosts) }}
{{- /* Where browsers reach the portal: the Ingress host (the redirect URIs are built from it).
    Only with the Ingress: without it, ingress.host is a placeholder nobody reaches. */}}
{{- $scheme := ternary "https" "http" .Values.ingress.tls.enabled }}
{{- $_ := set $oidc "public_url" (printf "%s://%s" $scheme .Values.ingress.host) }}
{{- end }}
{{- if and (eq (default "" $auth.mode) "oidc") (not $oidc.server_url) }}
{{- fail "config.auth.oidc.server_url is required: Keycloak's base URL, with its scheme, e.g. https://sso.example.org/ (Keycloak 16 and older: https://sso.example.org/auth/); the chart has no default, a placeholder would install a portal nobody can sign in to" }}
{{- end }}
{{- if and (eq (default "" $auth.mode) "oidc") (not $oidc.public_url) (not $oidc.allowed_hosts) }}
{{- fail "config.auth.oidc.public_url is required without an Ingress (ingress.enabled=false): the portal's address as browsers reach it, from which its Keycloak redirect URIs are built (http://127.0.0.1:8080 to try it through kubectl port-forward; or set ingress.enabled=true and ingress.host)" }}
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
The portal's address as browsers reach it (public_url, else from ingress.host), or "".
*/}}
{{- define "portal.publicUrl" -}}
{{- $oidc := (include "portal.config" . | fromYaml).auth.oidc }}
{{- if $oidc }}{{ trimSuffix "/" (default "" $oidc.public_url) }}{{ end }}
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
The secrets each upstream cannot start without (the `required` Secrets the portal's widgets
declare; tests/test_helm_chart.py checks this list against the widget registry).
*/}}
{{- define "portal.requiredSecrets" -}}
taiga: [PORTAL_TAIGA_USERNAME, PORTAL_TAIGA_PASSWORD]
gitlab: [PORTAL_GITLAB_TOKEN]
{{- end }}

{{/*
Mistakes refused at `helm install` rather than found in a crash-looping pod; each message names
the value to change. Rendered by the ConfigMap.
*/}}
{{- define "portal.checks" -}}
{{- include "portal.secretChecks" . }}
{{- include "portal.addressChecks" . }}
{{- include "portal.podChecks" . }}
{{- $config := include "portal.config" . | fromYaml }}
{{- $secrets := .Values.secrets }}
{{- /* Secrets: only the chart's own Secret can be checked (extraEnvFrom may bring any name). */}}
{{- if and (not $secrets.existingSecret) (not .Values.extraEnvFrom) }}
{{- $given := dict }}
{{- range $key, $value := $secrets.env }}
{{- if $value }}{{ $_ := set $given (trimSuffix "_FILE" $key) true }}{{ end }}
{{- end }}
{{- range .Values.extraEnv }}
{{- $_ := set $given (trimSuffix "_FILE" .name) true }}
{{- end }}
{{- if and (eq $config.auth.mode "oidc") (not $given.PORTAL_OIDC_CLIENT_SECRET) }}
{{- fail "secrets.env.PORTAL_OIDC_CLIENT_SECRET is empty while config.auth.mode is oidc: the portal would refuse to start. Give the Keycloak client's secret there, or name a Secret holding it (and the other keys) in secrets.existingSecret." }}
{{- end }}
{{- range $upstream, $keys := include "portal.requiredSecrets" . | fromYaml }}
{{- if index (default dict $config.upstreams) $upstream }}
{{- range $keys }}
{{- if not (index $given .) }}
{{- fail (printf "secrets.env.%s is empty while config.upstreams.%s is set: the portal would refuse to start. Give it there, or use secrets.existingSecret." . $upstream) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- range $upstream := list "prometheus" "alertmanager" }}
{{- $section := index (default dict $config.upstreams) $upstream }}
{{- $env := printf "PORTAL_%s" (upper $upstream) }}
{{- $password := index $given (printf "%s_PASSWORD" $env) }}
{{- $token := index $given (printf "%s_TOKEN" $env) }}
{{- if and $section $password $token }}
{{- fail (printf "secrets.env.%s_PASSWORD and %s_TOKEN are both set: config.upstreams.%s takes a password (with its username) or a token, not both." $env $env $upstream) }}
{{- end }}
{{- if and $section $section.username (not $password) (not $token) }}
{{- fail (printf "config.upstreams.%s.username is set but secrets.env.%s_PASSWORD is empty: basic auth needs both." $upstream $env) }}
{{- end }}
{{- if and $section $password (not $section.username) }}
{{- fail (printf "secrets.env.%s_PASSWORD is set but config.upstreams.%s.username is not: basic auth needs both." $env $upstream) }}
{{- end }}
{{- end }}
{{- end }}
{{- /* Files: the ConfigMap's directory holds portal.yaml only; a CA bundle is mounted elsewhere. */}}
{{- $mounts := list }}
{{- range .Values.extraVolumeMounts }}
{{- if or (eq (trimSuffix "/" .mountPath) "/etc/portal") (hasPrefix "/etc/portal/" .mountPath) }}
{{- fail (printf "extraVolumeMounts: %s is inside /etc/portal, the configuration's ConfigMap: mount it elsewhere, e.g. /etc/portal-ca" .mountPath) }}
{{- end }}
{{- $mounts = append $mounts (printf "%s/" (trimSuffix "/" .mountPath)) }}
{{- end }}
{{- $bundles := dict }}
{{- with ($config.auth.oidc | default dict).ca_bundle }}{{ $_ := set $bundles "config.auth.oidc.ca_bundle" . }}{{ end }}
{{- range $name, $section := default dict $config.upstreams }}
{{- with ($section | default dict).ca_bundle }}{{ $_ := set $bundles (printf "config.upstreams.%s.ca_bundle" $name) . }}{{ end }}
{{- end }}
{{- range $key, $path := $bundles }}
{{- $mounted := false }}
{{- range $mounts }}{{ if hasPrefix . $path }}{{ $mounted = true }}{{ end }}{{ end }}
{{- if not $mounted }}
{{- fail (printf "%s: %s is not in a volume of extraVolumeMounts, so the pod has no such file (/etc/portal/ holds portal.yaml only). Mount the CA from a ConfigMap or Secret with extraVolumes and extraVolumeMounts (e.g. at /etc/portal-ca) and point ca_bundle into it." $key $path) }}
{{- end }}
{{- end }}
{{- end }}

{{/*
The addresses' forms, said in words: the values schema would answer with its regular
expression. A value is never quoted back (a URL may carry a password).
*/}}
{{- define "portal.addressChecks" -}}
{{- $http := "^https?://[^/?#:@\\s]+(:[0-9]{1,5})?([/?#]\\S*)?$" }}
{{- $urls := dict }}
{{- $oidc := (default dict (default dict .Values.config.auth).oidc) }}
{{- range $key := list "server_url" "public_url" }}
{{- with index $oidc $key }}{{ $_ := set $urls (printf "config.auth.oidc.%s" $key) . }}{{ end }}
{{- end }}
{{- range $name, $upstream := (default dict .Values.config.upstreams) }}
{{- range $key := list "url" "public_url" "front_url" }}
{{- with index (default dict $upstream) $key }}{{ $_ := set $urls (printf "config.upstreams.%s.%s" $name $key) . }}{{ end }}
{{- end }}
{{- end }}
{{- /* A tile's link reaches every signed-in browser (and the ConfigMaps): no credentials either. */}}
{{- range $index, $tile := (default list .Values.config.tiles) }}
{{- with index (default dict $tile) "url" }}{{ $_ := set $urls (printf "config.tiles[%d].url" $index) . }}{{ end }}
{{- end }}
{{- range $key, $url := $urls }}
{{- if not (kindIs "string" $url) }}
{{- fail (printf "%s: expected a URL such as https://host.example.org, got a %s" $key (kindOf $url)) }}
{{- end }}
{{- if not (regexMatch $http $url) }}
{{- if not (regexMatch "^https?://" $url) }}
{{- fail (printf "%s: not an http:// or https:// URL: the scheme is required (e.g. https://host.example.org)" $key) }}
{{- else if regexMatch "^https?://[^/?#]*@" $url }}
{{- fail (printf "%s: a user or password in the URL is not taken: give the credentials in secrets.env (see values.yaml)" $key) }}
{{- else }}
{{- fail (printf "%s: not a URL of the form http(s)://HOST[:PORT][/PATH], without spaces" $key) }}
{{- end }}
{{- end }}
{{- /* The names portal/url_credentials.py takes for a credential in a query or fragment. */}}
{{- if regexMatch "(?i)[?&#]([^=&#]*[_-])?(token|secret|password|passwd|pass|key|apikey|sig|signature|auth|credentials?)=" $url }}
{{- fail (printf "%s: a credential in the URL's query or fragment is not taken: give it in secrets.env (see values.yaml); a tile's link reaches every browser" $key) }}
{{- end }}
{{- end }}
{{- with .Values.database.url }}
{{- $parameters := "sslmode|sslrootcert|sslcert|sslkey|sslcrl|target_session_attrs|application_name|options" }}
{{- $form := printf "^postgresql(\\+psycopg)?://[^:@/]+@[^:@/]+(:[0-9]+)?/[A-Za-z0-9_.-]+(\\?(%s)=[^&#\\s]*(&(%s)=[^&#\\s]*)*)?$" $parameters $parameters }}
{{- if or (regexMatch "^[a-z+]+://[^@/]*:[^@/]*@" .) (regexMatch "[?&]password=" .) }}
{{- fail "database.url holds a password: write it without (postgresql+psycopg://USER@HOST:5432/DATABASE) and give the password in secrets.env.PORTAL_DATABASE_PASSWORD (or the existing Secret's key)" }}
{{- else if not (regexMatch "^postgresql(\\+psycopg)?://" .) }}
{{- fail "database.url: the portal's shared database is PostgreSQL, postgresql+psycopg://USER@HOST:5432/DATABASE; leave it empty for SQLite on a volume (database.sqlite)" }}
{{- else if not (regexMatch $form .) }}
{{- fail (printf "database.url: expected postgresql+psycopg://USER@HOST[:PORT]/DATABASE, the user required, optionally followed by ?PARAMETER=VALUE&... among libpq's %s" (replace "|" ", " $parameters)) }}
{{- end }}
{{- end }}
{{- $host := "[a-z0-9]([-a-z0-9.]*[a-z0-9])?" }}
{{- $words := "a host name without scheme or path, e.g. portal.example.org (lower-case letters, digits, dots and dashes; the scheme follows ingress.tls.enabled)" }}
{{- if and .Values.ingress.enabled (not .Values.ingress.host) }}
{{- fail (printf "ingress.host is required with ingress.enabled: the portal's host name, %s" $words) }}
{{- end }}
{{- if and .Values.ingress.host (not (regexMatch (printf "^%s$" $host) (toString .Values.ingress.host))) }}
{{- fail (printf "ingress.host: expected %s" $words) }}
{{- end }}
{{- range $i, $alias := .Values.ingress.extraHosts }}
{{- if not (regexMatch (printf "^(\\*\\.)?%s$" $host) $alias) }}
{{- fail (printf "ingress.extraHosts[%d]: expected %s, or a wildcard *.example.org" $i $words) }}
{{- end }}
{{- end }}
{{- if .Values.redis.enabled }}
{{- if regexMatch "^[a-z]+://[^@/]*@" .Values.redis.url }}
{{- fail "redis.url holds a user or password: write it without (redis://HOST:6379/0) and give the password in secrets.env.PORTAL_REDIS_PASSWORD (or the existing Secret's key)" }}
{{- else if not (regexMatch "^rediss?://[^:@/]+(:[0-9]+)?(/[0-9]*)?$" .Values.redis.url) }}
{{- fail "redis.url: expected redis://HOST[:PORT][/DB] (rediss:// for TLS), the database a number" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Settings the pods would break on at run time, said before anything is installed.
*/}}
{{- define "portal.podChecks" -}}
{{- if include "portal.sqlite" . }}
{{- $postgresql := "set database.url to a PostgreSQL (postgresql+psycopg://USER@HOST:5432/DATABASE), which every pod shares (README, \"Several replicas\")" }}
{{- if .Values.autoscaling.enabled }}
{{- fail (printf "autoscaling.enabled is true but the database is SQLite (database.url is empty), a file one pod only may open: set autoscaling.enabled=false, or %s." $postgresql) }}
{{- else if gt (int .Values.replicaCount) 1 }}
{{- fail (printf "replicaCount is %d but the database is SQLite (database.url is empty), a file one pod only may open: set replicaCount=1, or %s." (int .Values.replicaCount) $postgresql) }}
{{- end }}
{{- end }}
{{- if eq (int .Values.metrics.port) 8000 }}
{{- fail "metrics.port is 8000, the portal's own container port (8000, its pages and probes): the metrics server could not bind it, so /metrics would never answer and PortalDown would fire. Choose another port, e.g. 9100 (the default)." }}
{{- end }}
{{- $monitor := .Values.metrics.serviceMonitor }}
{{- $every := dict }}
{{- range $key := list "interval" "scrapeTimeout" }}
{{- $milliseconds := include "portal.milliseconds" (toString (index $monitor $key)) }}
{{- if not $milliseconds }}
{{- fail (printf "metrics.serviceMonitor.%s: expected a Prometheus duration above zero such as 10s, 1m or 1m30s (units ms, s, m, h, d, w, y, the largest first)" $key) }}
{{- end }}
{{- $_ := set $every $key (atoi $milliseconds) }}
{{- end }}
{{- if gt $every.scrapeTimeout $every.interval }}
{{- fail (printf "metrics.serviceMonitor.scrapeTimeout %s is longer than metrics.serviceMonitor.interval %s: Prometheus refuses a scrape that may outlast its interval, so the portal would not be scraped. Lower scrapeTimeout or raise interval." $monitor.scrapeTimeout $monitor.interval) }}
{{- end }}
{{- if ge (int .Values.preStopSleepSeconds) (int .Values.terminationGracePeriodSeconds) }}
{{- fail (printf "preStopSleepSeconds (%d) is not below terminationGracePeriodSeconds (%d): Kubernetes would kill the pod before gunicorn is sent SIGTERM, cutting the requests in flight. Lower preStopSleepSeconds or raise terminationGracePeriodSeconds, leaving gunicorn its graceful timeout of 20 s after the sleep (the defaults: 5 and 30)." (int .Values.preStopSleepSeconds) (int .Values.terminationGracePeriodSeconds)) }}
{{- end }}
{{- end }}

{{/*
A Prometheus duration (1m30s) in milliseconds, or "" when it is not one.
*/}}
{{- define "portal.milliseconds" -}}
{{- if regexMatch "^([0-9]+y)?([0-9]+w)?([0-9]+d)?([0-9]+h)?([0-9]+m)?([0-9]+s)?([0-9]+ms)?$" . }}
{{- $units := dict "ms" 1 "s" 1000 "m" 60000 "h" 3600000 "d" 86400000 "w" 604800000 "y" 31536000000 }}
{{- $total := 0 }}
{{- range regexFindAll "[0-9]+(ms|[ywdhms])" . -1 }}
{{- $number := regexFind "^[0-9]+" . }}
{{- $total = add $total (mul (atoi $number) (index $units (trimPrefix $number .))) }}
{{- end }}
{{- if $total }}{{ $total }}{{ end }}
{{- end }}
{{- end }}

{{/*
The secrets' names and places: secrets.env takes only the keys the portal reads (another would
reach the pods unread), and a secret under `config` (at any depth) would be written into the
ConfigMaps, while the portal reads none from portal.yaml. Never quotes a value.
*/}}
{{- define "portal.secretChecks" -}}
{{- $names := include "portal.secretNames" . | fromYamlArray }}
{{- $fromValues := include "portal.envFromValues" . | fromYaml }}
{{- range $key, $_ := .Values.secrets.env }}
{{- $wanted := trimSuffix "_FILE" $key }}
{{- if has $wanted $names }}{{ continue }}{{ end }}
{{- $others := "other environment variables go in extraEnv or extraEnvFrom" }}
{{- $suggestion := include "portal.closestSecretName" (dict "name" $wanted "names" $names) }}
{{- if hasKey $fromValues $key }}
{{- fail (printf "secrets.env.%s is not a secret the portal reads: the chart sets %s from %s (its value would win over the Secret's); set that instead." $key $key (index $fromValues $key)) }}
{{- else if $suggestion }}
{{- fail (printf "secrets.env.%s is not a key the portal reads: did you mean %s%s? (%s)" $key $suggestion (ternary "_FILE" "" (hasSuffix "_FILE" $key)) $others) }}
{{- else }}
{{- fail (printf "secrets.env.%s is not a key the portal reads, which are %s (each also as NAME_FILE, the path of a mounted file); %s." $key (join ", " $names) $others) }}
{{- end }}
{{- end }}
{{- $homes := include "portal.configSecretHomes" . | fromYaml }}
{{- range include "portal.secretsInConfig" (dict "path" "config" "value" .Values.config) | splitList "\n" | compact }}
{{- $found := fromJson . }}
{{- $env := index (default dict (index $homes $found.parent)) (ternary "password" $found.kind (eq $found.kind "passwd")) }}
{{- $written := "a secret under config would be written into the ConfigMap, readable by whoever may read ConfigMaps" }}
{{- if $env }}
{{- fail (printf "%s: %s, and the portal does not read it there. Remove it and give the value as secrets.env.%s (or the key %s of the Secret named in secrets.existingSecret)." $found.path $written $env $env) }}
{{- else }}
{{- fail (printf "%s: %s, and the portal reads no secret from portal.yaml. Remove it: secrets go in secrets.env / secrets.existingSecret, under the PORTAL_* names values.yaml lists there." $found.path $written) }}
{{- end }}
{{- end }}
{{- end }}

{{/*
The keys under `config` named like a secret (token, password, client_secret, apiKey, ...), one
JSON object a line: its path (config.tiles[0].token), its parent's and its kind (token). Call
with (dict "path" "config" "value" .Values.config).
*/}}
{{- define "portal.secretsInConfig" -}}
{{- if kindIs "map" .value }}
{{- range $key, $child := .value }}
{{- $path := printf "%s.%s" $.path $key }}
{{- $kind := regexFind "(password|passwd|token|secretkey|secret|apikey|privatekey)$" (regexReplaceAll "[-_]" (lower $key) "") }}
{{- if $kind }}
{{ dict "path" $path "parent" $.path "kind" $kind | toJson }}
{{- else }}
{{ include "portal.secretsInConfig" (dict "path" $path "value" $child) }}
{{- end }}
{{- end }}
{{- else if kindIs "slice" .value }}
{{- range $i, $child := .value }}
{{ include "portal.secretsInConfig" (dict "path" (printf "%s[%d]" $.path $i) "value" $child) }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Where each secret the portal knows goes instead, by the section it was put in and its kind.
*/}}
{{- define "portal.configSecretHomes" -}}
config: {secretkey: PORTAL_SECRET_KEY}
config.portal: {secretkey: PORTAL_SECRET_KEY}
config.auth: {secret: PORTAL_OIDC_CLIENT_SECRET}
config.auth.oidc: {secret: PORTAL_OIDC_CLIENT_SECRET}
config.cache: {password: PORTAL_REDIS_PASSWORD}
config.database: {password: PORTAL_DATABASE_PASSWORD}
config.upstreams.gitlab: {token: PORTAL_GITLAB_TOKEN}
config.upstreams.taiga: {password: PORTAL_TAIGA_PASSWORD, secret: PORTAL_TAIGA_WEBHOOK_SECRET}
config.upstreams.prometheus: {password: PORTAL_PROMETHEUS_PASSWORD, token: PORTAL_PROMETHEUS_TOKEN}
config.upstreams.alertmanager: {password: PORTAL_ALERTMANAGER_PASSWORD, token: PORTAL_ALERTMANAGER_TOKEN}
{{- end }}

{{/*
The secrets the portal reads from its environment: its own and its upstreams' (tests check this
list against the portal's code).
*/}}
{{- define "portal.secretNames" -}}
- PORTAL_SECRET_KEY
- PORTAL_OIDC_CLIENT_SECRET
- PORTAL_REDIS_PASSWORD
- PORTAL_DATABASE_PASSWORD
- PORTAL_TAIGA_USERNAME
- PORTAL_TAIGA_PASSWORD
- PORTAL_TAIGA_WEBHOOK_SECRET
- PORTAL_GITLAB_TOKEN
- PORTAL_PROMETHEUS_PASSWORD
- PORTAL_PROMETHEUS_TOKEN
- PORTAL_ALERTMANAGER_PASSWORD
- PORTAL_ALERTMANAGER_TOKEN
{{- end }}

{{/* The portal's variables the chart sets from its values (portal.env), by the value. */}}
{{- define "portal.envFromValues" -}}
PORTAL_METRICS_BIND: metrics.port
PROMETHEUS_MULTIPROC_DIR: metrics.multiprocDir
PORTAL_WORKERS: gunicorn.workers
PORTAL_THREADS: gunicorn.threads
PORTAL_ACCESS_LOG: gunicorn.accessLog
PORTAL_FORWARDED_ALLOW_IPS: gunicorn.forwardedAllowIps
PORTAL_LOG_LEVEL: logLevel
{{- end }}

{{/*
Among `names`, the one `name` was most likely meant to be, or "": the nearest by edit distance
(case and a missing PORTAL_ aside) when it is within 3 edits, else the only one of its section
(PORTAL_REDIS_PASS: PORTAL_REDIS_PASSWORD).
*/}}
{{- define "portal.closestSecretName" -}}
{{- $name := upper .name }}
{{- if not (hasPrefix "PORTAL_" $name) }}{{ $name = printf "PORTAL_%s" $name }}{{ end }}
{{- $closest := "" }}
{{- $fewest := 4 }}
{{- range .names }}
{{- $edits := include "portal.editDistance" (list $name .) | atoi }}
{{- if lt $edits $fewest }}{{ $closest = . }}{{ $fewest = $edits }}{{ end }}
{{- end }}
{{- if not $closest }}
{{- $section := printf "PORTAL_%s_" (index (splitList "_" $name) 1) }}
{{- $same := list }}
{{- range .names }}{{ if hasPrefix $section . }}{{ $same = append $same . }}{{ end }}{{ end }}
{{- if eq (len $same) 1 }}{{ $closest = first $same }}{{ end }}
{{- end }}
{{- $closest }}
{{- end }}

{{/* The Levenshtein distance of two strings. Call with (list A B). */}}
{{- define "portal.editDistance" -}}
{{- $b := splitList "" (index . 1) }}
{{- $previous := until (int (add1 (len $b))) }}
{{- range $i, $x := splitList "" (index . 0) }}
{{- $row := list (add1 $i) }}
{{- range $j, $y := $b }}
{{- $row = append $row (min (add1 (index $previous (add1 $j))) (add1 (index $row $j)) (add (index $previous $j) (ternary 0 1 (eq $x $y)))) }}
{{- end }}
{{- $previous = $row }}
{{- end }}
{{- last $previous }}
{{- end }}
