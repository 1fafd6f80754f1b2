#!/usr/bin/env bash
# Prepares the real taiga-back for the tests, once, under the project's .tools/taiga-back/ (gitignored):
#   src/taiga-back-6.10.0/   the tarball beside this script, extracted
#   venv/                    a virtualenv with taiga-back's pinned requirements from PyPI (~2 min cold)
#   pgdata-template/         a stopped PostgreSQL cluster whose `taiga` database is migrated and
#                            seeded (~1 min), with that day's seed.json as taiga-seed.json;
#                            tests/support/taiga.py has setup.sh copy it at each run
# Run by `make test-deps`. Safe to run again: does nothing when all of it matches the tarball,
# setup.sh and seed.py. `install.sh --check` only says whether it is ready (exit 0) or not (1).
# Needs postgresql, libpq-dev, a C compiler and the Python headers (psycopg2 builds from source),
# curl: scripts/install-test-deps.sh installs them.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
tools=${TAIGA_TOOLS:-$root/.tools/taiga-back}
name=taiga-back-6.10.0
tarball=$here/$name.tar.gz
src=$tools/src/$name
venv=$tools/venv
template=$tools/pgdata-template
export PYTHON=${PYTHON:-python3}

source_stamp=$(sha256sum "$tarball" | cut -c1-16)
# What the cluster was made from: the source, the database and settings setup.sh makes, the seed.
stamp=$(cat "$tarball" "$here/setup.sh" "$here/seed.py" | sha256sum | cut -c1-16)
ready() {
  [ "$(cat "$tools/src/.stamp" 2>/dev/null)" = "$source_stamp" ] \
    && [ -f "$venv/.req-$(sha256sum "$src/requirements.txt" 2>/dev/null | cut -c1-16)" ] \
    && [ "$(cat "$tools/pgdata-template.stamp" 2>/dev/null)" = "$stamp" ] \
    && [ -f "$template/PG_VERSION" ] && [ -f "$template/taiga-seed.json" ]
}
if [ "${1:-}" = --check ]; then
  ready && exit 0
  echo "$tools is missing or out of date"
  exit 1
fi
ready && exit 0

if [ "$(cat "$tools/src/.stamp" 2>/dev/null)" != "$source_stamp" ]; then
  echo "taiga-back: extracting $name into $tools/src"
  rm -rf "$tools/src"
  mkdir -p "$tools/src"
  tar -xzf "$tarball" -C "$tools/src"
  echo "$source_stamp" >"$tools/src/.stamp"
fi

# A whole run of setup.sh (venv, cluster, migrations, seed, the API answering) in a short path
# under /tmp, which the `postgres` user can reach and where the socket path stays short.
base=$(mktemp -d /tmp/taiga-build.XXXXXX)
cleanup() { RT_BASE=$base "$here/stop.sh" >/dev/null 2>&1 || true; rm -rf "$base"; }
trap cleanup EXIT
free_port() { "$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
echo "taiga-back: building $venv if needed (about 2 minutes cold) and a migrated, seeded cluster (about 1 minute)"
RT_BASE=$base VENV=$venv PG_PORT=$(free_port) API_PORT=$(free_port) "$here/setup.sh" "$src" \
  | sed 's/^/taiga-back: /'
RT_BASE=$base "$here/stop.sh" | sed 's/^/taiga-back: /'
[ ! -f "$base/pgdata/postmaster.pid" ] || { echo "taiga-back: PostgreSQL did not stop" >&2; exit 1; }

rm -rf "$template" "$template.new"
cp -a "$base/pgdata" "$template.new"
cp "$base/seed.json" "$template.new/taiga-seed.json"
mv "$template.new" "$template"
echo "$stamp" >"$tools/pgdata-template.stamp"
echo "taiga-back: ready ($tools)"
