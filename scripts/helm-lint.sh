#!/usr/bin/env bash
# `make helm-lint`: lint the chart strictly, then render every values scenario and validate the
# manifests against the Kubernetes 1.30 schemas, unknown fields refused. Installs helm if missing.
# Scenarios: the defaults (which `helm install` must refuse: the portal's address and the Keycloak
# client's secret have no default), each helm/portal/ci/*-values.yaml, and the chart as a subchart of a parent chart
# (tests/fixtures/helm/parent) that sets `global`.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
chart="$root/helm/portal"
kube_version="1.30.0"
helm="$("$root/scripts/install-helm.sh")"
validate="${KUBERNETES_VALIDATE:-$root/.venv/bin/kubernetes-validate}"
export HELM_CACHE_HOME="$root/.tools/helm/home/cache" HELM_CONFIG_HOME="$root/.tools/helm/home/config" HELM_DATA_HOME="$root/.tools/helm/home/data"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

check() {  # check NAME CHART [helm arguments...]: strict lint, then the rendered manifests validated
  local name="$1" dir="$2"
  shift 2
  echo "== $name"
  "$helm" lint --strict --quiet "$dir" "$@"
  "$helm" template portal "$dir" --namespace portal --kube-version "$kube_version" "$@" \
    | "$validate" --strict --quiet --no-warn --kubernetes-version "$kube_version" -
}

# The defaults lint (helm lint reports a template's `fail` as information) but never install.
echo "== default values (refused)"
"$helm" lint --strict --quiet "$chart" 2>"$work/lint" || { cat "$work/lint" >&2; exit 1; }
if "$helm" template portal "$chart" >/dev/null 2>"$work/refused"; then
  echo "the chart renders with its default values: it must refuse them (no Keycloak, no address, no client secret)" >&2
  exit 1
fi
grep -q -e "config.auth.oidc.server_url is required" -e "config.auth.oidc.public_url is required" \
  -e "secrets.env.PORTAL_OIDC_CLIENT_SECRET" "$work/refused" \
  || { cat "$work/refused" >&2; exit 1; }

count=0
for file in "$chart"/ci/*-values.yaml; do
  check "$(basename "$file")" "$chart" --values "$file"
  count=$((count + 1))
done

cp -r "$root/tests/fixtures/helm/parent" "$work/parent"
mkdir -p "$work/parent/charts"
cp -r "$chart" "$work/parent/charts/portal"
check "subchart of tests/fixtures/helm/parent (global)" "$work/parent"
count=$((count + 1))

echo "helm-lint: defaults refused; $count scenarios linted and valid for Kubernetes $kube_version"
