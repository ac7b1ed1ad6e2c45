#!/usr/bin/env bash
# Builds zeroscale and runs every test: unit, integration (real redis-server on a free
# loopback port) and end-to-end (the real binaries). Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
cd build
ctest --output-on-failure --timeout 600 "$@"
