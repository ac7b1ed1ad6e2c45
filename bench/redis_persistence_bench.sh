#!/usr/bin/env bash
# What Redis persistence costs ingest. In one run, on 127.0.0.1 only, three redis-servers
# whose files live on the same disk:
#   none      --appendonly no (the reference: nothing survives a restart)
#   everysec  charts/zeroscale/files/redis.conf with --appendfsync everysec
#   always    charts/zeroscale/files/redis.conf as shipped (fsync before every reply)
# For each, the real scaler and zeroscale-loadgen (100 simulated pods, batches of 32, as
# fast as acknowledgements allow): acknowledged (= stored) samples/s and the mean time of
# one Redis write (a MULTI/EXEC of up to --ingest-batch samples). Rounds alternate the
# three so drift hits all alike; the median of the rounds is reported, with ratios to
# `none`. Also: the disk's fsync latency for a small append, measured the same way Redis
# does it (write + fdatasync).
# Usage: bench/redis_persistence_bench.sh [build-dir]   (ROUNDS=3 DURATION=10s)
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$(dirname "$0")/.."
BUILD=${1:-build}
SCALER=$BUILD/scaler/zeroscale-scaler
LOADGEN=$BUILD/bench/zeroscale-loadgen
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10s}
CONF=charts/zeroscale/files/redis.conf
[ -x "$SCALER" ] && [ -x "$LOADGEN" ] || { echo "build first: scripts/build.sh" >&2; exit 2; }

# A directory on the disk (not tmpfs): where the AOFs go.
DATA=$(mktemp -d "${BENCH_DATA_DIR:-$PWD/build}/redis-persistence.XXXXXX")
trap 'cleanup; rm -rf "$DATA"' EXIT
echo "AOF directory: $DATA ($(df -T "$DATA" | awk 'NR==2{print $2}'))"

fsync_us=$(python3 - "$DATA" <<'PY'
import os, sys, time
path = os.path.join(sys.argv[1], "fsync-probe")
fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
times = []
for _ in range(200):
    t = time.perf_counter()
    os.write(fd, b"x" * 4096)
    os.fdatasync(fd)
    times.append(time.perf_counter() - t)
os.close(fd)
os.unlink(path)
times.sort()
print(f"{times[len(times)//2]*1e6:.0f} {times[int(len(times)*0.99)]*1e6:.0f}")
PY
)
echo "disk: 4 KiB append + fdatasync p50 ${fsync_us% *} us, p99 ${fsync_us#* } us"

start_redis_policy() {  # policy -> REDIS_PORT
  local policy=$1 dir=$DATA/$1
  REDIS_PORT=$(free_port)
  rm -rf "$dir"; mkdir -p "$dir"
  case $policy in
    none) redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no \
            --dir "$dir" >"$TMP/redis-$policy.log" 2>&1 & ;;
    everysec) redis-server "$CONF" --appendfsync everysec --port "$REDIS_PORT" \
            --bind 127.0.0.1 --dir "$dir" >"$TMP/redis-$policy.log" 2>&1 & ;;
    always) redis-server "$CONF" --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$dir" \
            >"$TMP/redis-$policy.log" 2>&1 & ;;
  esac
  REDIS_PID=$!; PIDS+=($REDIS_PID)
  for _ in $(seq 100); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && return 0; sleep 0.05; done
  echo "redis-server ($policy) did not start" >&2; cat "$TMP/redis-$policy.log" >&2; exit 1
}

run_policy() {  # policy -> sets RATE (acknowledged samples/s) and WRITE (ms per write)
  local policy=$1
  start_redis_policy "$policy"
  local http grpc
  http=$(free_port); grpc=$(free_port)
  "$SCALER" --redis=127.0.0.1:$REDIS_PORT --http-listen=127.0.0.1:$http \
    --grpc-listen=127.0.0.1:$grpc --webhook-listen=127.0.0.1:$(free_port) --backend=none \
    --insecure --log-level=warning >"$TMP/scaler-$policy.log" 2>&1 &  # measures persistence
  local scaler=$!; PIDS+=($scaler)
  wait_http "http://127.0.0.1:$http/readyz" 10
  local out
  out=$("$LOADGEN" --scaler=127.0.0.1:$grpc --pods=100 --batch=32 --window=1024 \
          --duration="$DURATION" --warmup=2s --quiet)
  RATE=$(echo "$out" | sed -n 's/.*acked_per_s=\([0-9.]*\).*/\1/p')
  WRITE=$(curl -fs "http://127.0.0.1:$http/metrics" | awk '
    /^zeroscale_redis_write_seconds_sum/ {s=$2} /^zeroscale_redis_write_seconds_count/ {c=$2}
    END {printf "%.2f", (c > 0 ? s / c * 1000 : 0)}')
  kill "$scaler" "$REDIS_PID"; wait "$scaler" "$REDIS_PID" 2>/dev/null || true
}

declare -A RATES WRITES
for round in $(seq "$ROUNDS"); do
  for policy in none everysec always; do
    run_policy "$policy"
    printf 'round %s %-8s %10.0f samples/s acknowledged, %6s ms per Redis write\n' \
      "$round" "$policy" "$RATE" "$WRITE"
    RATES[$policy]+="$RATE "; WRITES[$policy]+="$WRITE "
  done
done

python3 - "${RATES[none]}" "${RATES[everysec]}" "${RATES[always]}" \
  "${WRITES[none]}" "${WRITES[everysec]}" "${WRITES[always]}" <<'PY'
import statistics, sys
names = ["none", "everysec", "always"]
rates = [statistics.median(map(float, a.split())) for a in sys.argv[1:4]]
writes = [statistics.median(map(float, a.split())) for a in sys.argv[4:7]]
for n, r, w in zip(names, rates, writes):
    print(f"RESULT {n:8s} {r:10,.0f} samples/s acknowledged ({r / rates[0]:.2f} of none), "
          f"{w:.2f} ms per Redis write (median of rounds)")
PY
