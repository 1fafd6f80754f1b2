#!/usr/bin/env bash
# `make helm-lint`: lint the chart strictly, then render every values scenario and validate the
# manifests against the Kubernetes 1.30 schemas, unknown fields refused. Installs helm if missing.
# Scenarios: the defaults, and each helm/portal/ci/*-values.yaml.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
chart="$root/helm/portal"
kube_version="1.30.0"
helm="$("$root/scripts/install-helm.sh")"
validate="${KUBERNETES_VALIDATE:-$root/.venv/bin/kubernetes-validate}"
export HELM_CACHE_HOME="$root/.tools/helm/home/cache" HELM_CONFIG_HOME="$root/.tools/helm/home/config" HELM_DATA_HOME="$root/.tools/helm/home/data"

scenarios=("")
for file in "$chart"/ci/*-values.yaml; do scenarios+=("$file"); done

for scenario in "${scenarios[@]}"; do
  name="${scenario:+$(basename "$scenario")}"
  echo "== ${name:-default values}"
  args=()
  [ -n "$scenario" ] && args=(--values "$scenario")
  "$helm" lint --strict --quiet "$chart" "${args[@]}"
  "$helm" template portal "$chart" --namespace portal --kube-version "$kube_version" "${args[@]}" \
    | "$validate" --strict --quiet --kubernetes-version "$kube_version" -
done
echo "helm-lint: ${#scenarios[@]} scenarios linted and valid for Kubernetes $kube_version"
