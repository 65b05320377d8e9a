#!/usr/bin/env bash
# Install webhookkit with its runtime dependencies only (no extras, no dev tools: what a user
# gets from `pip install webhookkit`) into .venv/runtime, pinned by constraints.txt, and run
# the quickstart with it. Re-installs only when pyproject.toml or constraints.txt changed.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    echo "webhookkit needs Python >= 3.11; found $("$PYTHON" --version)" >&2
    exit 1
fi

venv=.venv/runtime
if [ ! -x "$venv/bin/python" ]; then
    mkdir -p .venv
    "$PYTHON" -m venv "$venv"
fi
stamp="$venv/.webhookkit-installed"
want="$(cat pyproject.toml constraints.txt | sha256sum | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -c constraints.txt -e .
    echo "$want" > "$stamp"
fi
exec "$venv/bin/python" examples/quickstart.py
