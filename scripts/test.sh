#!/usr/bin/env bash
# Set up (first time) and run every test: unit, integration against localstripe, Chromium end to end.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --dev
export PYTHONDONTWRITEBYTECODE=1
# The lint first (pyproject.toml [tool.ruff]): a finding fails the run before any test.
.venv/bin/ruff check .
exec .venv/bin/python -m pytest "$@"
