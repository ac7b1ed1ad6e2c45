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


# Backend: nginx answering a small fixed body, with its own worker.
nginx_conf backend "server { listen 127.0.0.1:$BACKEND_PORT; location / { return 200 'hello from the backend\n'; } }"
"$NGINX" -c "$TMP/backend/nginx.conf" -p "$TMP/backend" 2>"$TMP/backend/stderr" &
PIDS+=($!)

# nginx as a keep-alive reverse proxy, one worker.
nginx_conf proxy "upstream app { server 127.0.0.1:$BACKEND_PORT; keepalive 64; }
  server { listen 127.0.0.1:$NGINX_PORT;
    location / { proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection '';
                 proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for; proxy_buffering off; } }"
"$NGINX" -c "$TMP/proxy/nginx.conf" -p "$TMP/proxy" 2>"$TMP/proxy/stderr" &
NGINX_MASTER=$!
PIDS+=($NGINX_MASTER)

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

# ~1,000 req/s: 10 connections, each pacing one request per 10 ms.
cat > "$TMP/pace.lua" <<'LUA'
function delay() return 10 end
LUA

cpu_ticks() {  # utime+stime of the given pids and their children
  local total=0 p
  for p in "$@" $(for q in "$@"; do pgrep -P "$q" || true; done); do
    [[ -r /proc/$p/stat ]] || continue
    total=$((total + $(awk '{print $14 + $15}' "/proc/$p/stat")))
  done
  echo "$total"
}

# run NAME PORT MODE(paced|sat) PIDS... -> "rps p50_ms p99_ms requests cpu_us_per_req"
run() {
  local name=$1 port=$2 mode=$3; shift 3
  local args=(-t1 -d"${DURATION}s" --latency)
  if [[ $mode == paced ]]; then args+=(-c10 -s "$TMP/pace.lua"); else args+=(-c"$CONNS_SAT"); fi
  wrk -t1 -c4 -d1s "http://127.0.0.1:$port/" >/dev/null  # warm up connections and pools
  local before after out
  before=$(cpu_ticks "$@")
  out=$(wrk "${args[@]}" "http://127.0.0.1:$port/")
  after=$(cpu_ticks "$@")
  echo "$out" > "$TMP/$name-$mode.txt"
  wrk_summary "$out" "$before" "$after"
}

declare -A R
for mode in paced sat; do
  R[direct-$mode]=$(run direct "$BACKEND_PORT" "$mode")
  R[sidecar-$mode]=$(run sidecar "$SIDECAR_PORT" "$mode" "$SIDECAR_PID")
  R[nginx-$mode]=$(run nginx "$NGINX_PORT" "$mode" "$NGINX_MASTER")
done

printf '\n%-8s %-7s %10s %9s %9s %14s\n' target load "req/s" "p50 ms" "p99 ms" "CPU us/req"
for mode in paced sat; do
  for t in direct sidecar nginx; do
    read -r rps p50 p99 reqs cpu <<<"${R[$t-$mode]}"
    [[ $t == direct ]] && cpu="-"
    printf '%-8s %-7s %10s %9s %9s %14s\n' "$t" "$mode" "$rps" "$p50" "$p99" "$cpu"
  done
done

python3 - "${R[direct-paced]}" "${R[sidecar-paced]}" "${R[nginx-paced]}" \
  "${R[direct-sat]}" "${R[sidecar-sat]}" "${R[nginx-sat]}" <<'PY'
import sys
d, s, n, ds, ss, ns = [list(map(float, a.split())) for a in sys.argv[1:7]]
print()
print(f"paced ~1,000 req/s: sidecar adds {s[1]-d[1]:+.3f} ms p50 (target <= 0.2), "
      f"{s[2]-d[2]:+.3f} ms p99 (target <= 1); nginx adds {n[1]-d[1]:+.3f} / {n[2]-d[2]:+.3f} ms")
print(f"saturation: sidecar/nginx throughput {ss[0]/ns[0]:.2f} (target >= 1), "
      f"sidecar/direct {ss[0]/ds[0]:.2f}, nginx/direct {ns[0]/ds[0]:.2f}")
print(f"CPU per request at saturation: sidecar {ss[4]:.1f} us (target <= 25), nginx {ns[4]:.1f} us")
PY
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
