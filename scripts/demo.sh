#!/usr/bin/env bash
# The local end-to-end demo: Redis + zeroscale-scaler (local backend) + zeroscale-balancer
# + a demo model server whose replicas run behind real zeroscale-sidecars. A client sends
# requests through the balancer and prints the timeline: cold start from zero, scale-up
# under load, scale-down, scale to zero after idle, and a second wake. The timeline is also
# written as CSV ($ZEROSCALE_DEMO_CSV, default <logs>/timeline.csv) for scripts/demo-plot.sh.
# Everything listens on 127.0.0.1 and stops when the demo ends.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "building zeroscale (log: build/demo-build.log; the first build takes ~10 minutes on 2 cores)"
mkdir -p build
# Only the three programs the demo runs (scripts/build.sh builds everything).
{ bash scripts/deps.sh && cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null &&
  cmake --build build -j"$(nproc)" --target zeroscale-scaler zeroscale-balancer zeroscale-sidecar
} >build/demo-build.log 2>&1 || { tail -30 build/demo-build.log; exit 1; }
B=build
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
LOGS=$(mktemp -d /tmp/zeroscale-demo.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true
            echo "logs: $LOGS"; }
trap cleanup EXIT

REDIS=$(free_port); GRPC=$(free_port); HTTP=$(free_port); BAL=$(free_port); ADMIN=$(free_port)
# The persistence the chart ships (append-only file, fsynced before every reply).
mkdir -p "$LOGS/redis"
redis-server charts/zeroscale/files/redis.conf --port "$REDIS" --bind 127.0.0.1 \
  --dir "$LOGS/redis" >"$LOGS/redis.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 50); do redis-cli -p "$REDIS" ping >/dev/null 2>&1 && break; sleep 0.1; done

# Credentials (README: Security), generated for this run in the private $LOGS (0700): an
# operator token for the demo's client (/workloads, /decisions) and the balancer's token
# for the scaler's ActivationService. Each replica's sidecar gets its own from the scaler.
token() { head -c 32 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n'; }
OPERATOR_TOKEN=$(token); BALANCER_TOKEN=$(token)
(umask 077
 printf '%s,demo-operator,zeroscale:operators\n%s,demo-balancer,zeroscale:balancers\n' \
   "$OPERATOR_TOKEN" "$BALANCER_TOKEN" >"$LOGS/tokens.csv"
 printf '%s' "$BALANCER_TOKEN" >"$LOGS/balancer.token"
 printf '%s' "$OPERATOR_TOKEN" >"$LOGS/operator.token")

"$B/scaler/zeroscale-scaler" --redis=127.0.0.1:$REDIS --grpc-listen=127.0.0.1:$GRPC \
  --http-listen=127.0.0.1:$HTTP --webhook-listen=127.0.0.1:$(free_port) \
  --backend=local --workloads=demo/workloads.yaml --sidecar-bin="$B/sidecar/zeroscale-sidecar" \
  --auth-tokens="$LOGS/tokens.csv" --replica-log-dir="$LOGS" >"$LOGS/scaler.log" 2>&1 &
PIDS+=($!)
"$B/balancer/zeroscale-balancer" --scaler=127.0.0.1:$GRPC --redis=127.0.0.1:$REDIS \
  --listen=127.0.0.1:$BAL --admin-listen=127.0.0.1:$ADMIN --routes=demo/workloads.yaml \
  --token-file="$LOGS/balancer.token" --auth-tokens="$LOGS/tokens.csv" \
  >"$LOGS/balancer.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$ADMIN/healthz" >/dev/null 2>&1 && break; sleep 0.1; done

echo "zeroscale demo: scaler http://127.0.0.1:$HTTP (/workloads, /decisions, /metrics),"
echo "balancer http://127.0.0.1:$BAL (admin http://127.0.0.1:$ADMIN), redis 127.0.0.1:$REDIS"
echo "token for both APIs: curl -H \"Authorization: Bearer \$(cat $LOGS/operator.token)\" ..."
python3 demo/client.py --balancer=127.0.0.1:$BAL --scaler-http=127.0.0.1:$HTTP \
  --token-file="$LOGS/operator.token" --balancer-admin=127.0.0.1:$ADMIN \
  --csv="${ZEROSCALE_DEMO_CSV:-$LOGS/timeline.csv}" "$@"
echo
echo "samples in Redis for the demo's pods:"
for k in $(redis-cli -p "$REDIS" --scan --pattern 'podmetric:local/*'); do
  echo "  $k: $(redis-cli -p "$REDIS" zcard "$k") samples"
done
# A sample taken under load: its appMetrics are the series the sidecar scraped from the
# model server's /metrics (the vllm preset), which the rule 'queue' reads.
sample=$(for k in $(redis-cli -p "$REDIS" --scan --pattern 'podmetric:local/*'); do
           redis-cli -p "$REDIS" zrange "$k" 0 -1; done | grep '"vllm:num_requests_waiting":[1-9]' | tail -1)
echo "one of them, under load: ${sample:-$(redis-cli -p "$REDIS" zrange "$(redis-cli -p "$REDIS" --scan --pattern 'podmetric:local/*' | head -1)" -1 -1)}"
