#!/usr/bin/env bash
# Set up (first time) and run every test: unit, integration against localstripe, Chromium end to end.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --dev
export PYTHONDONTWRITEBYTECODE=1
# The lint first (pyproject.toml [tool.ruff]): a finding fails the run before any test.
.venv/bin/ruff check .
# Stripe's own definitions before any test runs: the gateway's requests against the pinned stripe-python's typed
# params (mypy, pyproject.toml [tool.mypy]), and the checkout page's Stripe.js calls against @stripe/stripe-js's
# published types for the release train it loads (tests/node/tsconfig.json).
.venv/bin/mypy
(cd tests/node && npm run --silent typecheck)
exec .venv/bin/python -m pytest "$@"
