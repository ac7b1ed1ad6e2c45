#!/usr/bin/env bash
# What TLS costs, in one run, on 127.0.0.1 only (a throwaway certificate from the openssl
# CLI, for localhost and 127.0.0.1):
#   1. ingest: acknowledged samples/s through the scaler's gRPC stream (zeroscale-loadgen,
#      100 simulated pods, the settings of bench/ingest_bench.sh) with TLS off and on,
#      alternating, ROUNDS times each; the best of each and their ratio;
#   2. the sidecar's data path: bench/proxy_bench.sh with the real zeroscale-sidecar, once
#      streaming to a plain-text scaler, once to the TLS scaler (--scaler-ca, and its admin
#      port on TLS); the proxy itself carries no TLS, so the p50 difference is what the
#      TLS metrics stream and admin port cost the requests.
# Extra flags for the TLS-on side (e.g. the bearer tokens of authentication) can be given
# in ON_SCALER_ARGS (the scaler) and ON_CLIENT_ARGS (the loadgen and the sidecar).
#
#   bench/tls_bench.sh [BUILD_DIR]    Env: DURATION (loadgen, default 10s), ROUNDS (3),
#                                     PROXY_DURATION (wrk seconds per run, default 5)
# Needs openssl, wrk, nginx, redis-server, curl, python3.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$(dirname "$0")/.."
BUILD=${1:-build}
BUILD=$(cd "$BUILD" && pwd)
SCALER=$BUILD/scaler/zeroscale-scaler
SIDECAR=$BUILD/sidecar/zeroscale-sidecar
LOADGEN=$BUILD/bench/zeroscale-loadgen
DURATION=${DURATION:-10s}
ROUNDS=${ROUNDS:-3}
PROXY_DURATION=${PROXY_DURATION:-5}
ON_SCALER_ARGS=${ON_SCALER_ARGS:-}
ON_CLIENT_ARGS=${ON_CLIENT_ARGS:-}
for f in "$SCALER" "$SIDECAR" "$LOADGEN"; do
  [ -x "$f" ] || { echo "build first: missing $f" >&2; exit 2; }
done

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
  -subj /CN=zeroscale-bench -addext subjectAltName=DNS:localhost,IP:127.0.0.1 \
  -keyout "$TMP/tls.key" -out "$TMP/tls.crt" 2>/dev/null
# The "on" side is what the chart ships: TLS and identity checks. Pod credentials
# (zeroscale:pods, static tokens) for loadgen's simulated pods bench/pod-0..99 and for the
# sidecar of each proxy round; the "off" side runs --insecure in plain text.
TOKENS=$TMP/tokens.csv
(umask 077
 for i in $(seq 0 99); do echo "bench-pod-token-$i,bench/pod-$i,zeroscale:pods"; done
 for r in $(seq "$ROUNDS"); do
   echo "bench-sidecar-token-on$r,bench/tls-on$r,zeroscale:pods"
   echo "bench-sidecar-token-on$r" >"$TMP/sidecar-on$r.token"
 done) >"$TOKENS"
TLS_SCALER="--tls-cert=$TMP/tls.crt --tls-key=$TMP/tls.key --auth-tokens=$TOKENS $ON_SCALER_ARGS"
TLS_CLIENT="--scaler-ca=$TMP/tls.crt $ON_CLIENT_ARGS"
OFF_SCALER="--insecure"

start_redis

start_scaler() {  # extra scaler flags; sets HTTP GRPC SCALER_PID
  HTTP=$(free_port); GRPC=$(free_port)
  # shellcheck disable=SC2086  # a list of flags
  "$SCALER" --redis=127.0.0.1:$REDIS_PORT --http-listen=127.0.0.1:$HTTP \
    --grpc-listen=127.0.0.1:$GRPC --webhook-listen=127.0.0.1:$(free_port) --backend=none \
    --log-level=warning $1 >>"$TMP/scaler.log" 2>&1 &
  SCALER_PID=$!; PIDS+=($SCALER_PID)
  wait_port "$GRPC"
}
stop_scaler() { kill "$SCALER_PID"; wait "$SCALER_PID" 2>/dev/null || true; }

ingest() {  # scaler flags, client flags -> acked samples/s
  start_scaler "$1"
  # shellcheck disable=SC2086
  out=$("$LOADGEN" --scaler=127.0.0.1:$GRPC --pods=100 --batch=32 --window=1024 \
          --duration="$DURATION" --warmup=3s --quiet $2)
  stop_scaler
  redis-cli -p "$REDIS_PORT" flushall >/dev/null
  echo "$out" | sed -n 's/.*acked_per_s=\([0-9.]*\).*/\1/p'
}

echo "== ingest, TLS and identity checks off and on alternating, $ROUNDS rounds of $DURATION"
off_best=0; on_best=0
for r in $(seq "$ROUNDS"); do
  off=$(ingest "$OFF_SCALER" ""); on=$(ingest "$TLS_SCALER" "$TLS_CLIENT --token-prefix=bench-pod-token-")
  printf 'round %s: off %.0f/s, on %.0f/s\n' "$r" "$off" "$on"
  off_best=$(python3 -c "print(max($off_best, $off))"); on_best=$(python3 -c "print(max($on_best, $on))")
done

echo "== the sidecar's data path with its metrics stream off TLS and on TLS"
proxy_run() {  # name, scaler flags, sidecar flags
  start_scaler "$2"
  # shellcheck disable=SC2086
  DURATION=$PROXY_DURATION SUMMARY_FILE="$TMP/proxy.$1" SIDECAR_BIN="$SIDECAR" \
    SIDECAR_ARGS="--scaler=127.0.0.1:$GRPC --admin-listen=127.0.0.1:$(free_port) --pod=bench/tls-$1 --workload=bench/Deployment/tls --sample-interval=1s $3" \
    bash bench/proxy_bench.sh "$BUILD" >"$TMP/proxy.$1.out" 2>&1 ||
    { cat "$TMP/proxy.$1.out" >&2; exit 1; }
  # The stream really ran (over TLS in the second run): its samples are in Redis.
  [[ $(redis-cli -p "$REDIS_PORT" zcard "podmetric:bench/tls-$1") -gt 0 ]] ||
    { echo "the sidecar's samples ($1) did not reach the scaler" >&2; cat "$TMP/scaler.log" >&2; exit 1; }
  stop_scaler
}
for r in $(seq "$ROUNDS"); do
  proxy_run "off$r" "$OFF_SCALER" ""
  proxy_run "on$r" "$TLS_SCALER" "$TLS_CLIENT --token-file=$TMP/sidecar-on$r.token --admin-tls-cert=$TMP/tls.crt --admin-tls-key=$TMP/tls.key"
done

python3 - "$off_best" "$on_best" "$ROUNDS" "$TMP" <<'PY'
import sys
off, on, rounds, tmp = float(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
def load(p):
    return {k: float(v) for k, v in (l.strip().split("=", 1) for l in open(p) if "=" in l)}
runs = {m: [load(f"{tmp}/proxy.{m}{r}") for r in range(1, rounds + 1)] for m in ("off", "on")}
ov = lambda r: r["sidecar.paced.p50_ms"] - r["direct.paced.p50_ms"]
for m in ("off", "on"):
    print(f"sidecar p50 overhead, stream {m:3} TLS, by round: " +
          ", ".join(f"{ov(r):.3f} ms" for r in runs[m]))
# The least disturbed round of each: the machine's other load only ever adds latency.
a, b = min(runs["off"], key=ov), min(runs["on"], key=ov)
print(f"RESULT ingest, TLS+auth off: {off:,.0f} samples/s; TLS+auth on: {on:,.0f} samples/s; "
      f"on/off {on/off:.3f} (cost {100*(1-on/off):.1f}%, target <= 15%)")
print(f"RESULT sidecar p50 at ~1,000 req/s, overhead over direct (best of {rounds}): "
      f"{ov(a):.3f} ms with the stream in plain text, {ov(b):.3f} ms with it on TLS "
      f"(difference {ov(b)-ov(a):+.3f} ms, target <= +0.1)")
sat = lambda m: max(r["sidecar.sat.rps"] for r in runs[m])
print(f"RESULT sidecar saturation (best of {rounds}): {sat('off'):,.0f} req/s off, "
      f"{sat('on'):,.0f} req/s on (on/off {sat('on')/sat('off'):.3f})")
PY
