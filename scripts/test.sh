#!/usr/bin/env bash
# The whole check: install, lint, type-check, then every test (helper servers are started
# by the tests themselves on free loopback ports).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
# The dashboard's browser test drives Debian's chromium (never a downloaded browser).
if [ ! -x /usr/bin/chromium ]; then
    apt-get update -qq && apt-get install -y -qq chromium
fi
if [ -f tests/node/package.json ]; then
    (cd tests/node && npm ci --silent --no-audit --no-fund)
fi
echo "== ruff format --check"; .venv/bin/ruff format --check .
echo "== ruff check";          .venv/bin/ruff check .
echo "== mypy --strict";       .venv/bin/mypy --strict
echo "== pytest";              .venv/bin/python -m pytest "$@"
