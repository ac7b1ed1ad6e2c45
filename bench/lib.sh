# Shared helpers of the benchmark scripts: a scratch directory and process list cleaned up
# on exit, free loopback ports, waiting for a port or URL, a throwaway redis-server and
# nginx configurations. Everything binds 127.0.0.1. Source it after `set -euo pipefail`.

TMP="$(mktemp -d)"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$TMP"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

wait_port() {  # port [tries of 50 ms, default 200]
  for _ in $(seq "${2:-200}"); do
    (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0
    sleep 0.05
  done
  echo "port $1 did not open" >&2; exit 1
}

wait_http() {  # url, seconds
  for _ in $(seq $(($2 * 20))); do curl -fsS -o /dev/null "$1" 2>/dev/null && return 0; sleep 0.05; done
  echo "$1 did not answer" >&2; exit 1
}

start_redis() {  # sets REDIS_PORT
  REDIS_PORT=$(free_port)
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no \
    >"$TMP/redis.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 100); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && return 0; sleep 0.05; done
  echo "redis-server did not start" >&2; exit 1
}

nginx_conf() {  # name, body of the http block's server
  mkdir -p "$TMP/$1"
  cat > "$TMP/$1/nginx.conf" <<CONF
worker_processes 1;
daemon off;
master_process on;
pid $TMP/$1/nginx.pid;
error_log $TMP/$1/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $TMP/$1;
  proxy_temp_path $TMP/$1;
  fastcgi_temp_path $TMP/$1;
  uwsgi_temp_path $TMP/$1;
  scgi_temp_path $TMP/$1;
  keepalive_requests 1000000;
  $2
}
CONF
}

# The two references of the proxy benchmarks, each nginx with one worker: a backend
# answering a small fixed body on BACKEND_PORT, and a keep-alive reverse proxy to it on
# NGINX_PORT (the comparison for our proxies). Sets NGINX_MASTER, whose CPU is measured.
start_nginx_pair() {
  nginx_conf backend "server { listen 127.0.0.1:$BACKEND_PORT; location / { return 200 'hello from the backend\n'; } }"
  "$NGINX" -c "$TMP/backend/nginx.conf" -p "$TMP/backend" 2>"$TMP/backend/stderr" &
  PIDS+=($!)
  nginx_conf proxy "upstream app { server 127.0.0.1:$BACKEND_PORT; keepalive 64; }
  server { listen 127.0.0.1:$NGINX_PORT;
    location / { proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection '';
                 proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for; proxy_buffering off; } }"
  "$NGINX" -c "$TMP/proxy/nginx.conf" -p "$TMP/proxy" 2>"$TMP/proxy/stderr" &
  NGINX_MASTER=$!
  PIDS+=($NGINX_MASTER)
}

# One wrk run's figures as "req/s p50_ms p99_ms requests cpu_us_per_request", from its
# output and the CPU ticks (utime+stime) of the measured processes before and after.
wrk_summary() {  # wrk output, ticks before, ticks after
  python3 - "$1" "$2" "$3" "$(getconf CLK_TCK)" <<'PY'
import re, sys
out, before, after, hz = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
def ms(v, unit):
    return float(v) * {"us": 1e-3, "ms": 1, "s": 1e3}[unit]
lat = dict((p, ms(v, u)) for p, v, u in re.findall(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)", out, re.M))
reqs = int(re.search(r"(\d+) requests in", out).group(1))
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
cpu_us = (after - before) / hz * 1e6 / reqs if reqs else 0
print(f"{rps:.0f} {lat.get('50', 0):.3f} {lat.get('99', 0):.3f} {reqs} {cpu_us:.1f}")
PY
}

# CPU ticks (utime+stime) of the given pids and their children.
cpu_ticks() {
  local total=0 p
  for p in "$@" $(for q in "$@"; do pgrep -P "$q" || true; done); do
    [[ -r /proc/$p/stat ]] || continue
    total=$((total + $(awk '{print $14 + $15}' "/proc/$p/stat")))
  done
  echo "$total"
}

# Extra wrk arguments for every run, e.g. WRK_EXTRA=(-H "Host: bench.local").
WRK_EXTRA=()

# bench_run NAME PORT MODE(paced|sat) PIDS... -> "rps p50_ms p99_ms requests cpu_us_per_req".
# paced: ~1,000 req/s (10 connections, each one request per 10 ms); sat: CONNS_SAT
# connections as fast as they go. PIDS are the processes whose CPU time is counted.
bench_run() {
  local name=$1 port=$2 mode=$3; shift 3
  [[ -f $TMP/pace.lua ]] || echo 'function delay() return 10 end' >"$TMP/pace.lua"
  local args=(-t1 -d"${DURATION}s" --latency "${WRK_EXTRA[@]}")
  if [[ $mode == paced ]]; then args+=(-c10 -s "$TMP/pace.lua"); else args+=(-c"$CONNS_SAT"); fi
  wrk -t1 -c4 -d1s "${WRK_EXTRA[@]}" "http://127.0.0.1:$port/" >/dev/null  # warm up pools
  local before after out
  before=$(cpu_ticks "$@")
  out=$(wrk "${args[@]}" "http://127.0.0.1:$port/")
  after=$(cpu_ticks "$@")
  echo "$out" >"$TMP/$name-$mode.txt"
  if grep -q "Non-2xx" <<<"$out"; then echo "$name $mode: non-2xx answers" >&2; fi
  wrk_summary "$out" "$before" "$after"
}

# compare_proxies SUBJECT PORT PID DIRECT_PORT NGINX_PORT NGINX_PID [TARGETS]
# Runs direct, SUBJECT and nginx paced and at saturation, fills R[<target>-<mode>] with
# bench_run's figures, and prints the table, the added latency and the ratios; with
# TARGETS=targets also the sidecar issue's targets next to them.
declare -A R
compare_proxies() {
  local subject=$1 port=$2 pid=$3 direct_port=$4 nginx_port=$5 nginx_pid=$6 targets=${7:-}
  local mode t rps p50 p99 reqs cpu
  for mode in paced sat; do
    R[direct-$mode]=$(bench_run direct "$direct_port" "$mode")
    R[$subject-$mode]=$(bench_run "$subject" "$port" "$mode" "$pid")
    R[nginx-$mode]=$(bench_run nginx "$nginx_port" "$mode" "$nginx_pid")
  done
  printf '\n%-9s %-7s %10s %9s %9s %14s\n' target load "req/s" "p50 ms" "p99 ms" "CPU us/req"
  for mode in paced sat; do
    for t in direct "$subject" nginx; do
      read -r rps p50 p99 reqs cpu <<<"${R[$t-$mode]}"
      [[ $t == direct ]] && cpu="-"
      printf '%-9s %-7s %10s %9s %9s %14s\n' "$t" "$mode" "$rps" "$p50" "$p99" "$cpu"
    done
  done
  python3 - "$subject" "$targets" "${R[direct-paced]}" "${R[$subject-paced]}" \
    "${R[nginx-paced]}" "${R[direct-sat]}" "${R[$subject-sat]}" "${R[nginx-sat]}" <<'PY'
import sys
name, targets = sys.argv[1], sys.argv[2] == "targets"
d, s, n, ds, ss, ns = [list(map(float, a.split())) for a in sys.argv[3:9]]
t = lambda text: f" (target {text})" if targets else ""
print()
print(f"paced ~1,000 req/s: {name} adds {s[1]-d[1]:+.3f} ms p50{t('<= 0.2')}, "
      f"{s[2]-d[2]:+.3f} ms p99{t('<= 1')}; nginx adds {n[1]-d[1]:+.3f} / {n[2]-d[2]:+.3f} ms")
print(f"saturation: {name}/nginx throughput {ss[0]/ns[0]:.2f}{t('>= 1')}, "
      f"{name}/direct {ss[0]/ds[0]:.2f}, nginx/direct {ns[0]/ds[0]:.2f}")
print(f"CPU per request at saturation: {name} {ss[4]:.1f} us{t('<= 25')}, nginx {ns[4]:.1f} us")
PY
}
