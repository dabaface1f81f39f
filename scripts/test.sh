#!/usr/bin/env bash
# The test command: set up .venv, make sure the services and tools the tests talk to are
# there (PostgreSQL on 127.0.0.1:5432; PHP, Mono and JAX-WS for the interop tests, from
# Debian's packages), then run pytest with any arguments given (e.g. -m slow).
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/setup.sh
./scripts/ensure-postgres.sh
if [ -x scripts/install-interop.sh ]; then
  ./scripts/install-interop.sh
fi
exec .venv/bin/python -m pytest "$@"
