#!/usr/bin/env bash
# Install (once) and run the quickstart: a real signed delivery pipeline on loopback.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
exec .venv/bin/python examples/quickstart.py
