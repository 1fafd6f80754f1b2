#!/usr/bin/env bash
# Installs the real peers the tests run against (Debian packages), only those missing.
# Used by `make test`; safe to run again. Needs root or sudo.
set -euo pipefail

packages=(redis-server prometheus prometheus-alertmanager chromium chromium-driver fonts-liberation wrk)
# PostgreSQL: the portal's own database in tests, and the real taiga-back's (tests/peers/taiga-back);
# taiga-back's virtualenv builds psycopg2 from source (libpq-dev, a C compiler, the Python headers).
packages+=(postgresql libpq-dev build-essential python3-dev python3-venv curl)
# gettext's msgfmt compiles taiga-back's French catalogue, as Taiga's own image does.
packages+=(gettext)
# Node and npm run the Keycloak-shaped provider (tests/peers/keycloak-sim); a node already on the PATH will do.
command -v node >/dev/null && command -v npm >/dev/null || packages+=(nodejs npm)
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
# npm installs the browser suite's axe-core (and Lighthouse for `make audit`); any Node.js will do.
command -v npm >/dev/null 2>&1 || missing+=(nodejs npm)
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ]; then sudo=(); else sudo=(sudo); fi
echo "Installing test peers: ${missing[*]}"
"${sudo[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
