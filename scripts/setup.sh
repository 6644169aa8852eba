#!/usr/bin/env bash
# Install what the kiosk needs on a fresh Debian/Ubuntu machine: system packages, then a virtualenv.
#   scripts/setup.sh          runtime only
#   scripts/setup.sh --dev    plus the test and build tools, and Debian's Chromium for browser tests
set -euo pipefail
cd "$(dirname "$0")/.."
DEV=0
[ "${1:-}" = "--dev" ] && DEV=1

# What the kiosk computer needs to run the kiosk, the executable included: the system's web view (WebKitGTK 2.42 or
# newer with GTK 3; glib-networking gives it TLS) and a font. README: "For staff: building the kiosk executable".
APT_PKGS="gir1.2-webkit2-4.1 libwebkit2gtk-4.1-0 glib-networking fonts-dejavu-core"
# Running from source: Python, and what pip needs to build PyGObject in .venv (requirements.txt says why).
APT_PKGS="$APT_PKGS python3 python3-venv python3-pip python3-dev gcc pkg-config libgirepository1.0-dev libcairo2-dev"
[ "$DEV" = 1 ] && APT_PKGS="$APT_PKGS chromium binutils"
# The multi-counter tests run a throw-away PostgreSQL cluster of Debian's server (tests/support/pgcluster.py).
[ "$DEV" = 1 ] && APT_PKGS="$APT_PKGS postgresql"
# Building the executable: binutils (PyInstaller reads and strips libraries), Tcl/Tk for its start-up splash;
# Xvfb and xwininfo give the window tests and bench/bench_executable.py a virtual screen.
[ "$DEV" = 1 ] && APT_PKGS="$APT_PKGS libtcl8.6 libtk8.6 xvfb x11-utils"
# Linux single file (packaging/pack.py): a C compiler and libzstd for the launcher stub, the zstd program to pack.
[ "$DEV" = 1 ] && APT_PKGS="$APT_PKGS gcc libc6-dev libzstd-dev zstd"
# The accessibility audit injects axe-core from npm (tests/node): Debian's Node.js where there is none.
[ "$DEV" = 1 ] && ! command -v npm >/dev/null && APT_PKGS="$APT_PKGS nodejs npm"

missing=""
for p in $APT_PKGS; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ] && command -v apt-get >/dev/null; then
  SUDO=""; [ "$(id -u)" != 0 ] && SUDO="sudo"
  echo "[setup] installing system packages:$missing"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
if [ "$DEV" = 1 ]; then
  .venv/bin/python -m pip install -q --disable-pip-version-check -r requirements-dev.txt
  (cd tests/node && npm ci --no-audit --no-fund --loglevel=error)
else
  .venv/bin/python -m pip install -q --disable-pip-version-check -r requirements.txt
fi
# The shipped languages' catalogs (translations/<lang>/LC_MESSAGES/messages.po), compiled to the .mo files the
# kiosk reads; .mo files are built, never committed (translations/README.md).
if ls translations/*/LC_MESSAGES/messages.po >/dev/null 2>&1; then
  .venv/bin/pybabel -q compile -d translations
fi
echo "[setup] ready: .venv"
