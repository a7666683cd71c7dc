#!/usr/bin/env bash
# Set up everything the demo and the test suite need, from nothing but python3.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e ".[dev]"

# Browser tests (tests/browser): Debian's Chromium, driven by Playwright from the dev
# extra (never `playwright install`: no browser downloads), and the web assets folium
# maps load from CDNs, installed from the npm registry (there is no internet in tests).
if [ ! -x /usr/bin/chromium ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
if [ ! -x "$(command -v npm || true)" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm >/dev/null
fi
if command -v npm >/dev/null; then
    assets=tests/browser/assets
    if [ ! -f "$assets/node_modules/.package-lock.json" ] \
        || [ "$assets/package-lock.json" -nt "$assets/node_modules/.package-lock.json" ]; then
        (cd "$assets" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
    fi
fi
