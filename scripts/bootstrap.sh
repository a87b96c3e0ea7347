#!/usr/bin/env bash
# Installs what the tests and the demo need, and nothing twice: Debian packages (PostgreSQL 15
# with PostGIS, Redis, PgBouncer, Chromium, nginx for the front), a .venv with this project,
# and the pinned npm packages used by the tests. Safe to run again: each step checks first.
set -euo pipefail
cd "$(dirname "$0")/.."

# gcc: builds the driver's optional C loops (driver/_speedups.c), which the suite tests
APT_PKGS=(postgresql-15 postgresql-15-postgis-3 redis-server pgbouncer chromium iproute2 nginx-light gcc)
missing=()
for p in "${APT_PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "bootstrap: installing Debian packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "bootstrap: creating .venv"
  "$PY" -m venv .venv
fi
stamp=.venv/.pgws-installed
want=$(cat pyproject.toml setup.py driver/_speedups.c | sha256sum | cut -c1-64)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "bootstrap: installing the project into .venv"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e '.[test]'
  echo "$want" > "$stamp"
fi

# npm packages pinned by lock files (the Neon JS driver for proxy compatibility, Pyodide).
for lock in $(git ls-files '*package-lock.json' 2>/dev/null || true); do
  dir=$(dirname "$lock")
  lstamp="$dir/node_modules/.pgws-installed"
  lwant=$(sha256sum "$lock" | cut -c1-64)
  if [ ! -f "$lstamp" ] || [ "$(cat "$lstamp")" != "$lwant" ]; then
    echo "bootstrap: npm ci in $dir"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
    echo "$lwant" > "$lstamp"
  fi
done

# gzip copies of the front-end files (Pyodide, Leaflet, CodeMirror, outlines) in var/assets/,
# named by content hash; files already compressed are skipped, so this is quick when done.
.venv/bin/python -m app.assets > /dev/null
