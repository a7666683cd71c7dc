#!/usr/bin/env bash
# Set up .venv from nothing but python3.
#
#   scripts/setup.sh demo   what `make demo` needs and nothing more: the package with its
#                           runtime dependencies, the simulator and the map (extra `demo`)
#   scripts/setup.sh test   everything the test suite needs (the default): the dev extra,
#                           Debian's chromium and npm, the map assets for the browser tests
set -euo pipefail
cd "$(dirname "$0")/.."
MODE=${1:-test}
case "$MODE" in
    demo | test) ;;
    *)
        echo "usage: scripts/setup.sh [demo|test]" >&2
        exit 2
        ;;
esac
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi

if [ "$MODE" = demo ]; then
    # The venv's own pip is recent enough for an editable install; no upgrade, and no
    # byte-compiling at install time (Python compiles what the demo imports as it runs).
    echo "setup: installing the demo's packages into .venv (runtime, simulator, map)..."
    .venv/bin/python -m pip install --quiet --no-compile -e ".[demo]"
    exit 0
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
