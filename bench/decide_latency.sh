#!/usr/bin/env bash
# Decision latency of the real scaler with the Kubernetes backend: from the sample that
# makes a rule hold to the scale PATCH reaching the API server (a fake one in the
# benchmark's process, on 127.0.0.1), over independent trials. zeroscale-decide-latency
# starts redis-server and zeroscale-scaler itself and prints RESULT lines, with the
# documented polling intervals of HPA, KEDA and Knative as the reference.
# Usage: bench/decide_latency.sh [build-dir] [extra flags, e.g. --trials=200]
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
shift || true
SCALER=$BUILD/scaler/zeroscale-scaler
BENCH=$BUILD/bench/zeroscale-decide-latency
[ -x "$SCALER" ] && [ -x "$BENCH" ] || { echo "build first: scripts/build.sh" >&2; exit 2; }
command -v redis-server >/dev/null || { echo "redis-server is needed" >&2; exit 2; }
echo "host: $(nproc) cores, $(uname -r)"
exec "$BENCH" --scaler="$SCALER" "$@"
