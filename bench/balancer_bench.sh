#!/usr/bin/env bash
# Balancer benchmarks, in one run:
#  1. overhead: direct to a backend vs through zeroscale-balancer (routing by Host, policy
#     pick, request logs to Redis) vs through nginx (one worker, keep-alive upstream), at a
#     paced ~1,000 req/s and at saturation; throughput, p50/p99, CPU per request.
#  2. wake: N (default 1,000) concurrent requests arrive for a workload at zero and are
#     held; the fake scaler then announces a ready pod. Prints the time from that
#     announcement to the first held request reaching the pod and to the last answer, and
#     checks every request was answered once and reached the pod exactly once.
#
#   bench/balancer_bench.sh [BUILD_DIR]     (default: build/ of this repo)
# Env: DURATION (s, default 10), CONNS_SAT (default 50), THREADS (balancer threads,
# default 1), WAKE_REQUESTS (default 1000). Needs wrk, nginx and redis-server. Binds
# 127.0.0.1 only.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BUILD="${1:-$ROOT/build}"
BAL_BIN="$BUILD/balancer/zeroscale-balancer"
HELPER="$BUILD/balancer/bench/zeroscale-balancer-bench"
DURATION="${DURATION:-10}"
CONNS_SAT="${CONNS_SAT:-50}"
THREADS="${THREADS:-1}"
WAKE_REQUESTS="${WAKE_REQUESTS:-1000}"
NGINX="$(command -v nginx || echo /usr/sbin/nginx)"
for tool in wrk redis-server "$NGINX" "$BAL_BIN" "$HELPER"; do
  command -v "$tool" >/dev/null 2>&1 || [[ -x "$tool" ]] || { echo "missing: $tool" >&2; exit 1; }
done
ulimit -n 16384 2>/dev/null || true

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"


BACKEND_PORT=$(free_port); NGINX_PORT=$(free_port)
SCALER_PORT=$(free_port); BAL_PORT=$(free_port); ADMIN_PORT=$(free_port)


start_redis
start_nginx_pair

# The routes file is a workloads file (SPEC section 9); the balancer reads only routes.
cat > "$TMP/routes.yaml" <<Y
workloads:
  - name: bench
    command: ["sleep", "{port}"]
    minReplicas: 0
    maxReplicas: 1
    route: {host: bench.local}
  - name: wake
    command: ["sleep", "{port}"]
    minReplicas: 0
    maxReplicas: 1
    activationTimeoutSeconds: 120
    route: {host: wake.local}
Y

# ---- 1. overhead -------------------------------------------------------------------
"$HELPER" fake-scaler --listen=127.0.0.1:$SCALER_PORT --workload=local/Deployment/bench \
  --endpoint=127.0.0.1:$BACKEND_PORT 2>"$TMP/fake-scaler.log" &
PIDS+=($!)
wait_port "$SCALER_PORT"
"$BAL_BIN" --scaler=127.0.0.1:$SCALER_PORT --redis=127.0.0.1:$REDIS_PORT \
  --listen=127.0.0.1:$BAL_PORT --admin-listen=127.0.0.1:$ADMIN_PORT --routes="$TMP/routes.yaml" \
  --threads="$THREADS" --log-level=warning 2>"$TMP/balancer.log" &
BAL_PID=$!
PIDS+=($BAL_PID)
wait_port "$BACKEND_PORT"; wait_port "$NGINX_PORT"; wait_port "$BAL_PORT"
for _ in $(seq 100); do  # until the Watch announced the pod
  [[ $(curl -s -o /dev/null -w '%{http_code}' -H 'Host: bench.local' "http://127.0.0.1:$BAL_PORT/") == 200 ]] && break
  sleep 0.05
done

WRK_EXTRA=(-H "Host: bench.local")
compare_proxies balancer "$BAL_PORT" "$BAL_PID" "$BACKEND_PORT" "$NGINX_PORT" "$NGINX_MASTER"
logs=$(redis-cli -p "$REDIS_PORT" XLEN zeroscale:balancer:logs)
echo "request log entries in Redis after the run: $logs (capped at 100,000)"
echo "balancer RSS after the run: $(awk '/VmRSS/{print $2, $3}' /proc/$BAL_PID/status)"
kill "$BAL_PID"; wait "$BAL_PID" 2>/dev/null || true

# ---- 2. wake from zero ---------------------------------------------------------------
SCALER2=$(free_port); POD_PORT=$(free_port); BAL2=$(free_port); ADMIN2=$(free_port)
echo
"$HELPER" wake --listen=127.0.0.1:$SCALER2 --backend=127.0.0.1:$POD_PORT \
  --balancer=127.0.0.1:$BAL2 --admin=127.0.0.1:$ADMIN2 --workload=local/Deployment/wake \
  --host=wake.local --requests="$WAKE_REQUESTS" 2>"$TMP/wake.log" &
WAKE_PID=$!
wait_port "$SCALER2"
"$BAL_BIN" --scaler=127.0.0.1:$SCALER2 --redis=127.0.0.1:$REDIS_PORT \
  --listen=127.0.0.1:$BAL2 --admin-listen=127.0.0.1:$ADMIN2 --routes="$TMP/routes.yaml" \
  --threads=2 --log-level=warning 2>"$TMP/balancer-wake.log" &
PIDS+=($!)
wait "$WAKE_PID"
