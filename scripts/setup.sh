#!/usr/bin/env bash
# Set up (or refresh) the project's virtualenv: Python 3.11, the locked dependencies,
# and smsxml itself in editable mode. Safe to run again; works on a fresh Debian machine
# with nothing but Python 3.11 (it installs python3.11-venv with apt when it is missing).
set -euo pipefail
cd "$(dirname "$0")/.."

python=""
for candidate in ${PYTHON:-} python3.11 python3; do
  if command -v "$candidate" >/dev/null 2>&1 &&
     "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; then
    python=$candidate
    break
  fi
done
if [ -z "$python" ]; then
  echo "smsxml needs Python 3.11 (spyne 2.14 does not import on 3.12+)." >&2
  exit 1
fi

if ! "$python" -c 'import ensurepip, venv' >/dev/null 2>&1; then
  echo "installing python3.11-venv with apt" >&2
  apt-get update -qq && apt-get install -y -qq python3.11-venv >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade "pip>=24"
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements.lock
.venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
