#!/usr/bin/env bash
# Ingest benchmark. In one run, on 127.0.0.1 only:
#   1. reference: redis-benchmark, pipelined ZADD of members as large as a real sample,
#      spread over 10,000 keys (one per simulated pod);
#   2. zeroscale: sustained acknowledged samples/s through the scaler's gRPC stream into
#      the same Redis (zeroscale-loadgen, streams of simulated pods);
#   3. the same with identity checks on: each simulated pod's stream presents its own
#      credential (a zeroscale:pods token from --auth-tokens) and every sample is checked
#      against it; alternating off / on rounds (ROUNDS, default 3), medians;
#   4. the scaler's RSS with 10,000 simulated pods streaming one sample per second.
# Prints both rates and their ratio. Usage: bench/ingest_bench.sh [build-dir]
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$(dirname "$0")/.."
BUILD=${1:-build}
SCALER=$BUILD/scaler/zeroscale-scaler
LOADGEN=$BUILD/bench/zeroscale-loadgen
DURATION=${DURATION:-15s}
[ -x "$SCALER" ] && [ -x "$LOADGEN" ] || { echo "build first: scripts/build.sh" >&2; exit 2; }

start_redis

SAMPLE=$("$LOADGEN" --print-sample)
SIZE=${#SAMPLE}
# A member of the same size whose random part makes every member distinct.
# (No quotes in it: redis-benchmark's CSV output does not escape them.)
MEMBER=$(python3 -c "import sys; n=int(sys.argv[1]); p='member-__rand_int__-'; print(p + 'x'*(n-len(p)))" "$SIZE")
echo "sample member: $SIZE bytes"

ref_best=0
for cfg in "1 64" "4 64" "8 128"; do
  set -- $cfg
  rps=$(redis-benchmark -p "$REDIS_PORT" -c "$1" -P "$2" -n 2000000 -r 10000 --csv \
          ZADD podmetric:bench/pod-__rand_int__ __rand_int__ "$MEMBER" 2>/dev/null |
        python3 -c 'import csv,sys; rows=list(csv.reader(sys.stdin)); print(rows[-1][1])')
  printf 'redis-benchmark ZADD -c %s -P %s: %.0f/s\n' "$1" "$2" "$rps"
  ref_best=$(python3 -c "print(max($ref_best, $rps))")
  redis-cli -p "$REDIS_PORT" flushall >/dev/null
done

# Pod credentials for the simulated pods bench/pod-0..99 (loadgen --token-prefix).
TOKENS=$TMP/tokens.csv
(umask 077; for i in $(seq 0 99); do echo "bench-pod-token-$i,bench/pod-$i,zeroscale:pods"; done >"$TOKENS")

# start_scaler [auth]: with "auth", identity checks on (static pod tokens); else --insecure.
start_scaler() {
  HTTP=$(free_port); GRPC=$(free_port)
  local auth_flag=--insecure
  [ "${1:-}" = auth ] && auth_flag=--auth-tokens=$TOKENS
  "$SCALER" --redis=127.0.0.1:$REDIS_PORT --http-listen=127.0.0.1:$HTTP \
    --grpc-listen=127.0.0.1:$GRPC --webhook-listen=127.0.0.1:$(free_port) --log-level=warning \
    "$auth_flag" >"$TMP/scaler.log" 2>&1 &
  SCALER_PID=$!; PIDS+=($SCALER_PID)
  for _ in $(seq 100); do curl -fs "http://127.0.0.1:$HTTP/readyz" >/dev/null 2>&1 && return; sleep 0.1; done
  echo "scaler did not become ready" >&2; cat "$TMP/scaler.log" >&2; exit 1
}

# One measured run: prints the acknowledged rate.
ingest_run() {  # ingest_run off|auth
  start_scaler "$1"
  local prefix=()
  [ "$1" = auth ] && prefix=(--token-prefix=bench-pod-token-)
  local out
  out=$("$LOADGEN" --scaler=127.0.0.1:$GRPC --pods=100 --batch=32 --window=1024 \
          --duration="$DURATION" --warmup=3s --quiet "${prefix[@]}")
  echo "[$1] $out" >&2
  local stored
  stored=$(redis-cli -p "$REDIS_PORT" eval "local n=0 for _,k in ipairs(redis.call('keys','podmetric:*')) do n=n+redis.call('zcard',k) end return n" 0)
  echo "[$1] samples in Redis after the run: $stored" >&2
  if [ "$1" = auth ]; then
    curl -fs "http://127.0.0.1:$HTTP/metrics" | grep '^zeroscale_ingest_refused_total' | grep -v ' 0$' >&2 || true
  fi
  kill "$SCALER_PID"; wait "$SCALER_PID" 2>/dev/null || true
  redis-cli -p "$REDIS_PORT" flushall >/dev/null
  echo "$out" | sed -n 's/.*acked_per_s=\([0-9.]*\).*/\1/p'
}
ROUNDS=${ROUNDS:-3}
off_rates=(); auth_rates=()
for _ in $(seq "$ROUNDS"); do
  off_rates+=("$(ingest_run off)")
  auth_rates+=("$(ingest_run auth)")
done
median() { python3 -c 'import statistics,sys; print(statistics.median(float(x) for x in sys.argv[1:]))' "$@"; }
zs=$(median "${off_rates[@]}")
zs_auth=$(median "${auth_rates[@]}")
echo "identity checks off: ${off_rates[*]}; on: ${auth_rates[*]}"

start_scaler
"$LOADGEN" --scaler=127.0.0.1:$GRPC --pods=10000 --rate=1 --channels=8 --duration=20s \
  --warmup=5s --quiet >"$TMP/rss-load.out" &
LG=$!
sleep 18
rss=$(awk '/VmRSS/{print $2}' /proc/$SCALER_PID/status)
streams=$(curl -fs "http://127.0.0.1:$HTTP/metrics" | awk '/^zeroscale_ingest_active_streams/{print $2}')
wait $LG || true
cat "$TMP/rss-load.out"

python3 - "$ref_best" "$zs" "$rss" "$streams" "$zs_auth" <<'PY'
import sys
ref, zs, rss, streams = float(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
zs_auth = float(sys.argv[5])
print(f"RESULT reference redis-benchmark ZADD (best config): {ref:,.0f} samples/s")
print(f"RESULT zeroscale acknowledged through gRPC:        {zs:,.0f} samples/s")
print(f"RESULT ratio zeroscale / redis-benchmark:          {zs/ref:.2f}")
print(f"RESULT with identity checks (pod credentials):      {zs_auth:,.0f} samples/s")
print(f"RESULT ratio checks on / off (same run):           {zs_auth/zs:.2f}")
print(f"RESULT scaler RSS with {streams} active pod streams: {rss/1024:.1f} MiB")
PY
