#!/usr/bin/env bash
# Proxy overhead, in one run: direct to a backend vs through the sidecar proxy vs through
# nginx (one worker, keep-alive upstream), at a paced ~1,000 req/s and at saturation;
# prints throughput, p50/p99, the ratios and each proxy's CPU time per request.
#
#   bench/proxy_bench.sh [BUILD_DIR]     (default: build/ of this repo)
# Env: DURATION (s, default 10), CONNS_SAT (default 50), THREADS (proxy threads, default 1).
#   SIDECAR_BIN: measure this real zeroscale-sidecar instead of the proxy alone
#     (zeroscale-proxy-bench); SIDECAR_ARGS: its further flags (--scaler=..., --pod=...).
#   SUMMARY_FILE: also write the figures there as key=value lines (bench/sidecar_bench.sh).
# Needs wrk and nginx (apt-get install -y wrk nginx-light). Binds 127.0.0.1 only.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BUILD="${1:-$ROOT/build}"
PROXY_BIN="$BUILD/sidecar/proxy/zeroscale-proxy-bench"
DURATION="${DURATION:-10}"
CONNS_SAT="${CONNS_SAT:-50}"
THREADS="${THREADS:-1}"
SIDECAR_BIN="${SIDECAR_BIN:-}"
SIDECAR_ARGS="${SIDECAR_ARGS:-}"
SUMMARY_FILE="${SUMMARY_FILE:-}"
[[ -n $SIDECAR_BIN ]] && PROXY_BIN="$SIDECAR_BIN"
NGINX="$(command -v nginx || echo /usr/sbin/nginx)"
for tool in wrk "$NGINX" "$PROXY_BIN"; do
  command -v "$tool" >/dev/null 2>&1 || [[ -x "$tool" ]] || { echo "missing: $tool" >&2; exit 1; }
done

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"


BACKEND_PORT=$(free_port); NGINX_PORT=$(free_port); SIDECAR_PORT=$(free_port)


start_nginx_pair

if [[ -n $SIDECAR_BIN ]]; then
  # The whole sidecar: its sampler, readiness prober and stream run alongside the proxy,
  # and their CPU is counted in the sidecar's CPU per request.
  # shellcheck disable=SC2086  # SIDECAR_ARGS is a list of flags
  "$SIDECAR_BIN" --proxy-port=$SIDECAR_PORT --app-port=$BACKEND_PORT $SIDECAR_ARGS \
    >"$TMP/sidecar.log" 2>&1 &
else
  "$PROXY_BIN" --listen=127.0.0.1:$SIDECAR_PORT --upstream=127.0.0.1:$BACKEND_PORT \
    --threads="$THREADS" 2>"$TMP/sidecar.log" &
fi
SIDECAR_PID=$!
PIDS+=($SIDECAR_PID)
wait_port "$BACKEND_PORT"; wait_port "$NGINX_PORT"; wait_port "$SIDECAR_PORT"

compare_proxies sidecar "$SIDECAR_PORT" "$SIDECAR_PID" "$BACKEND_PORT" "$NGINX_PORT" \
  "$NGINX_MASTER" targets
echo "measured as the sidecar: $PROXY_BIN"
echo "sidecar RSS after the run: $(awk '/VmRSS/{print $2, $3}' /proc/$SIDECAR_PID/status)" \
  "(peak $(awk '/VmHWM/{print $2, $3}' /proc/$SIDECAR_PID/status))"
if [[ -n $SUMMARY_FILE ]]; then
  {
    for mode in paced sat; do
      for t in direct sidecar nginx; do
        read -r rps p50 p99 reqs cpu <<<"${R[$t-$mode]}"
        echo "$t.$mode.rps=$rps"; echo "$t.$mode.p50_ms=$p50"; echo "$t.$mode.p99_ms=$p99"
        echo "$t.$mode.cpu_us_per_req=$cpu"
      done
    done
    echo "sidecar.sat.vmrss_kib=$(awk '/VmRSS/{print $2}' /proc/$SIDECAR_PID/status)"
    echo "sidecar.sat.vmhwm_kib=$(awk '/VmHWM/{print $2}' /proc/$SIDECAR_PID/status)"
  } >"$SUMMARY_FILE"
fi
