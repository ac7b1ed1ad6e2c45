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
