#!/usr/bin/env bash
# The sidecar's footprint, in one run, all against the real zeroscale-sidecar streaming to a
# real zeroscale-scaler and redis-server on loopback:
#   (a) proxy overhead: direct vs sidecar vs nginx (keep-alive, one worker) at ~1,000 req/s
#       and at saturation (bench/proxy_bench.sh with SIDECAR_BIN);
#   (b) RSS (VmRSS, and its peak VmHWM) idle, after 20 proxied 1 MiB downloads and a scaler
#       restart, and after the saturation run;
#   (c) CPU time of the idle sidecar sampling at a 1 s interval (utime+stime / wall time);
#   (d) CPU time per proxied request at saturation (from (a)).
#
#   bench/sidecar_bench.sh [BUILD_DIR]          (default: build/ of this repo)
# Env: IDLE_SECONDS (default 30), DURATION (wrk seconds per run, default 10).
# Needs wrk, nginx, redis-server, curl, python3. Binds 127.0.0.1 only (the sidecar's
# proxy listens on all addresses, as in a pod).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BUILD="${1:-$ROOT/build}"
IDLE_SECONDS="${IDLE_SECONDS:-30}"
find_bin() {
  local f
  f=$(find "$BUILD" -type f -name "$1" -perm -u+x 2>/dev/null | head -1)
  [[ -n $f ]] || { echo "no $1 in $BUILD (build it first)" >&2; exit 1; }
  echo "$f"
}
SIDECAR=$(find_bin zeroscale-sidecar)
SCALER=$(find_bin zeroscale-scaler)
for tool in wrk redis-server redis-cli curl python3; do
  command -v "$tool" >/dev/null || { echo "missing: $tool" >&2; exit 1; }
done

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

status_kib() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status"; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
samples() { redis-cli -p "$REDIS_PORT" zcard "podmetric:$1"; }

REDIS_PORT=$(free_port)
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no \
  >"$TMP/redis.log" 2>&1 &
PIDS+=($!)
GRPC_PORT=$(free_port); HTTP_PORT=$(free_port); HOOK_PORT=$(free_port)
start_scaler() {
  "$SCALER" --redis=127.0.0.1:$REDIS_PORT --grpc-listen=127.0.0.1:$GRPC_PORT \
    --http-listen=127.0.0.1:$HTTP_PORT --webhook-listen=127.0.0.1:$HOOK_PORT --backend=none \
    --insecure >>"$TMP/scaler.log" 2>&1 &  # measures the sidecar, whose data path has no auth
  SCALER_PID=$!
  PIDS+=($SCALER_PID)
  wait_http "http://127.0.0.1:$HTTP_PORT/healthz" 20
}
start_scaler

# The app: a static file server with a 1 MiB blob, as in the acceptance check.
mkdir -p "$TMP/site"
head -c 1048576 /dev/urandom >"$TMP/site/blob"
APP_PORT=$(free_port); PROXY_PORT=$(free_port); ADMIN_PORT=$(free_port)
python3 -m http.server "$APP_PORT" --bind 127.0.0.1 --directory "$TMP/site" \
  >"$TMP/app.log" 2>&1 &
PIDS+=($!)
wait_http "http://127.0.0.1:$APP_PORT/blob" 10

POD=bench/side-1
"$SIDECAR" --scaler=127.0.0.1:$GRPC_PORT --app-port=$APP_PORT --proxy-port=$PROXY_PORT \
  --admin-listen=127.0.0.1:$ADMIN_PORT --pod=$POD --workload=bench/Deployment/side \
  --sample-interval=1s >"$TMP/sidecar.log" 2>&1 &
SIDE=$!
PIDS+=($SIDE)
wait_http "http://127.0.0.1:$ADMIN_PORT/healthz" 10
for _ in $(seq 100); do [[ $(samples $POD) -ge 2 ]] && break; sleep 0.1; done
[[ $(samples $POD) -ge 2 ]] || { echo "no samples reach Redis" >&2; exit 1; }

echo "== (b) RSS idle, (c) CPU of sampling at 1 s: idle sidecar for ${IDLE_SECONDS}s"
IDLE_RSS=$(status_kib $SIDE VmRSS); IDLE_HWM=$(status_kib $SIDE VmHWM)
IDLE_ANON=$(status_kib $SIDE RssAnon); IDLE_FILE=$(status_kib $SIDE RssFile)
THREADS=$(awk '$1 == "Threads:" {print $2}' /proc/$SIDE/status)
HZ=$(getconf CLK_TCK)
n0=$(samples $POD); t0=$(cpu_ticks $SIDE); w0=$(date +%s.%N)
sleep "$IDLE_SECONDS"  # measuring an idle process over a fixed window: nothing to await
n1=$(samples $POD); t1=$(cpu_ticks $SIDE); w1=$(date +%s.%N)
read -r SAMPLE_CPU_PCT SAMPLE_CPU_MS SAMPLES_SENT < <(python3 -c "
t=($t1-$t0)/$HZ; w=$w1-$w0; n=$n1-$n0
print(f'{100*t/w:.3f} {1000*t/max(n,1):.2f} {n}')")
echo "idle: VmRSS $IDLE_RSS KiB (anon $IDLE_ANON, file $IDLE_FILE), VmHWM $IDLE_HWM KiB," \
  "$THREADS threads; CPU $SAMPLE_CPU_PCT% of a core, $SAMPLE_CPU_MS ms per sample," \
  "$SAMPLES_SENT samples"

echo "== (b) RSS after 20 proxied 1 MiB downloads and a scaler restart"
want=$(sha256sum <"$TMP/site/blob" | cut -d' ' -f1)
for _ in $(seq 20); do
  got=$(curl -fsS "http://127.0.0.1:$PROXY_PORT/blob" | sha256sum | cut -d' ' -f1)
  [[ $got == "$want" ]] || { echo "body through the proxy differs" >&2; exit 1; }
done
kill -9 "$SCALER_PID"; wait "$SCALER_PID" 2>/dev/null || true
n_down=$(samples $POD)
sleep 3  # let samples pile up in the sidecar's buffer while the scaler is down
start_scaler
for _ in $(seq 200); do [[ $(samples $POD) -ge $((n_down + 4)) ]] && break; sleep 0.1; done
LOAD_RSS=$(status_kib $SIDE VmRSS); LOAD_HWM=$(status_kib $SIDE VmHWM)
echo "after downloads + restart: VmRSS $LOAD_RSS KiB, VmHWM $LOAD_HWM KiB"
kill "$SIDE"; wait "$SIDE" 2>/dev/null || true

echo "== (a) proxy overhead, (d) CPU per request: the real sidecar, with its scaler stream"
SUMMARY="$TMP/proxy.summary"
SUMMARY_FILE="$SUMMARY" SIDECAR_BIN="$SIDECAR" \
  SIDECAR_ARGS="--scaler=127.0.0.1:$GRPC_PORT --admin-listen=127.0.0.1:$(free_port) --pod=bench/side-2 --workload=bench/Deployment/side --sample-interval=1s" \
  bash "$ROOT/bench/proxy_bench.sh" "$BUILD"

python3 - "$SUMMARY" <<PY
import sys
r = dict(l.strip().split("=", 1) for l in open(sys.argv[1]) if "=" in l)
f = lambda k: float(r[k])
print()
print("RESULT (zeroscale-sidecar, $(nproc) cores, $(uname -r))")
print(f"  (a) ~1,000 req/s  p50: direct {f('direct.paced.p50_ms'):.3f} ms, sidecar "
      f"{f('sidecar.paced.p50_ms'):.3f} ms (+{f('sidecar.paced.p50_ms')-f('direct.paced.p50_ms'):.3f},"
      f" target <= +0.2), nginx {f('nginx.paced.p50_ms'):.3f} ms")
print(f"                    p99: direct {f('direct.paced.p99_ms'):.3f} ms, sidecar "
      f"{f('sidecar.paced.p99_ms'):.3f} ms (+{f('sidecar.paced.p99_ms')-f('direct.paced.p99_ms'):.3f},"
      f" target <= +1), nginx {f('nginx.paced.p99_ms'):.3f} ms")
print(f"      saturation req/s: direct {f('direct.sat.rps'):.0f}, sidecar {f('sidecar.sat.rps'):.0f},"
      f" nginx {f('nginx.sat.rps'):.0f}; sidecar/nginx {f('sidecar.sat.rps')/f('nginx.sat.rps'):.2f}"
      f" (target >= 1)")
print(f"  (b) RSS idle: VmRSS $IDLE_RSS KiB ({$IDLE_RSS/1024:.1f} MiB), VmHWM $IDLE_HWM KiB;"
      f" anon $IDLE_ANON KiB, file $IDLE_FILE KiB, $THREADS threads (target < 16384 KiB)")
print(f"      RSS after 20 x 1 MiB downloads + scaler restart: VmRSS $LOAD_RSS KiB,"
      f" VmHWM $LOAD_HWM KiB")
print(f"      RSS after the saturation run: VmRSS {r['sidecar.sat.vmrss_kib']} KiB,"
      f" VmHWM {r['sidecar.sat.vmhwm_kib']} KiB")
print(f"  (c) CPU of sampling at 1 s, idle: $SAMPLE_CPU_PCT% of one core"
      f" ($SAMPLE_CPU_MS ms per sample, $SAMPLES_SENT samples in ${IDLE_SECONDS} s; target < 0.5%)")
print(f"  (d) CPU per request at saturation: sidecar {f('sidecar.sat.cpu_us_per_req'):.1f} us,"
      f" nginx {f('nginx.sat.cpu_us_per_req'):.1f} us (target <= 25 us)")
PY
