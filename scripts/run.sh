#!/usr/bin/env bash
# Set up (first time) and run the kiosk on the bundled sample catalog. Extra arguments go to `python -m kiosk`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/python -m kiosk "$@"
