#!/usr/bin/env bash
# Prometheus' own tools on what zeroscale ships (run by CTest as observe_test):
#   promtool check rules   charts/zeroscale/files/alerts.yaml
#   promtool test rules    tests/observe/alerts_test.yaml (every alert fires and stays quiet)
#   promtool check metrics on the real /metrics of the scaler, the balancer and the sidecar
#                          started on 127.0.0.1 (plain HTTP, --insecure, a throwaway Redis)
# and every zeroscale_ metric an alert or a dashboard panel uses must be one those /metrics
# pages serve; the dashboard's structure (ids, grid, datasources, queries) is checked too, as
# Grafana is not in Debian.
# Exit 77 (skipped) without promtool (Debian package prometheus, scripts/deps.sh).
# Usage: observe_test.sh SOURCE_DIR SCALER_BIN BALANCER_BIN SIDECAR_BIN
set -u
src=$1 scaler_bin=$2 balancer_bin=$3 sidecar_bin=$4
alerts=$src/charts/zeroscale/files/alerts.yaml
if ! command -v promtool >/dev/null; then
  echo "SKIPPED: promtool not found (apt-get install prometheus, as scripts/deps.sh does)"
  exit 77
fi
command -v redis-server >/dev/null || { echo "FAIL: redis-server not found"; exit 1; }

dir=$(mktemp -d /tmp/zs-observe-XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
  rm -rf "$dir"
}
trap cleanup EXIT
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
# wait_http PORT PATH NAME LOG: until GET answers 200 (20 s).
wait_http() {
  for _ in $(seq 200); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$1$2")" = 200 ] && return 0
    sleep 0.1
  done
  echo "--- $3 log:"; cat "$4"
  return 1
}

echo "== promtool check rules"
promtool check rules "$alerts" || fail "promtool check rules $alerts"

echo "== promtool test rules"
# The test file names the rules file relative to itself: run on copies side by side.
cp "$alerts" "$dir/alerts.yaml"
cp "$src/tests/observe/alerts_test.yaml" "$dir/alerts_test.yaml"
promtool test rules "$dir/alerts_test.yaml" || fail "promtool test rules"
# Every alert of the rules file has a unit test that expects it to fire.
for a in $(grep -oE '^ *- alert: [A-Za-z]+' "$alerts" | awk '{print $3}'); do
  grep -qE "alertname: $a\$" "$src/tests/observe/alerts_test.yaml" ||
    fail "alert $a has no unit test in tests/observe/alerts_test.yaml"
done

echo "== the real programs' /metrics"
redis_port=$(free_port)
redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no \
  --dir "$dir" >"$dir/redis.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break; sleep 0.1; done

# A workload with a route (the scaler's workloads file is the balancer's routes file) so the
# per-workload series exist (decisions, state, held requests, hold durations), and a
# throwaway certificate so the scaler serves its webhook (and its counters).
cat >"$dir/workloads.yaml" <<'YAML'
workloads:
  - name: m
    command: ["python3", "-m", "http.server", "{port}"]  # never started: --backend=none
    port: 0
    minReplicas: 0
    maxReplicas: 1
    route: {pathPrefix: /m}
YAML
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 \
  -keyout "$dir/webhook.key" -out "$dir/webhook.crt" >/dev/null 2>&1 ||
  fail "openssl could not make the webhook's certificate"
http=$(free_port) grpc=$(free_port) webhook=$(free_port)
"$scaler_bin" --redis=127.0.0.1:"$redis_port" --http-listen=127.0.0.1:"$http" \
  --grpc-listen=127.0.0.1:"$grpc" --webhook-listen=127.0.0.1:"$webhook" --backend=none \
  --workloads="$dir/workloads.yaml" --webhook-cert="$dir/webhook.crt" \
  --webhook-key="$dir/webhook.key" --insecure >"$dir/scaler.log" 2>&1 &
pids+=($!)
wait_http "$http" /readyz scaler "$dir/scaler.log" || fail "the scaler did not get ready"

admin=$(free_port) listen=$(free_port)
"$balancer_bin" --redis=127.0.0.1:"$redis_port" --listen=127.0.0.1:"$listen" \
  --routes="$dir/workloads.yaml" --default-activation-timeout=1s \
  --admin-listen=127.0.0.1:"$admin" --discovery=none --scaler=127.0.0.1:"$grpc" \
  --insecure >"$dir/balancer.log" 2>&1 &
pids+=($!)
wait_http "$admin" /metrics balancer "$dir/balancer.log" || fail "the balancer did not serve /metrics"

sidecar_admin=$(free_port) sidecar_proxy=$(free_port)
"$sidecar_bin" --scaler=127.0.0.1:"$grpc" --app-port="$(free_port)" \
  --proxy-listen=127.0.0.1:"$sidecar_proxy" --admin-listen=127.0.0.1:"$sidecar_admin" \
  --pod=observe/p --workload=observe/Deployment/w --cgroup-root= --sample-interval=200ms \
  >"$dir/sidecar.log" 2>&1 &
pids+=($!)
wait_http "$sidecar_admin" /metrics sidecar "$dir/sidecar.log" || fail "the sidecar did not serve /metrics"
# The sample gauges carry values once the first sample is taken (200 ms in).
for _ in $(seq 100); do
  curl -s "http://127.0.0.1:$sidecar_admin/metrics" | grep -q '^zeroscale_sidecar_cpu_cores{' && break
  sleep 0.1
done
# One request held (no pod of m is ever ready) until the 1 s activation timeout: a hold
# duration observed. Then a few samples have streamed, so the stream's series carry values.
curl -s -o /dev/null --max-time 10 "http://127.0.0.1:$listen/m/x"
# An AdmissionReview that is not one: a webhook error counted (by reason); a pod update: a
# skip counted (by reason).
curl -sk -o /dev/null --max-time 10 -X POST -H 'Content-Type: application/json' \
  --data 'not an AdmissionReview' "https://127.0.0.1:$webhook/mutate"
curl -sk -o /dev/null --max-time 10 -X POST -H 'Content-Type: application/json' \
  --data '{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"1",
  "kind":{"group":"","version":"v1","kind":"Pod"},"namespace":"observe","operation":"UPDATE"}}' \
  "https://127.0.0.1:$webhook/mutate"
# A request through the sidecar to an app that does not listen: an upstream error counted.
curl -s -o /dev/null --max-time 10 "http://127.0.0.1:$sidecar_proxy/x"

: >"$dir/served"
for target in scaler:$http balancer:$admin sidecar:$sidecar_admin; do
  name=${target%%:*} port=${target#*:}
  curl -sf "http://127.0.0.1:$port/metrics" >"$dir/$name.metrics" || fail "GET $name /metrics"
  echo "-- promtool check metrics: $name ($(grep -c '^# TYPE' "$dir/$name.metrics") families)"
  # promtool prints lint problems and exits non-zero on any.
  promtool check metrics <"$dir/$name.metrics" || fail "promtool check metrics on the $name"
  awk '/^# TYPE /{print $3}' "$dir/$name.metrics" >>"$dir/served"
done

# check_names FILE NAMES...: each zeroscale_ metric FILE uses is served by some program.
gpu_gauges_src=$src/sidecar/report/sample_gauges.cc
check_names() {
  local file=$1 m base
  shift
  [ $# -gt 0 ] || fail "no zeroscale_ metric found in $file"
  for m in "$@"; do
    base=$m
    if ! grep -qx "$m" "$dir/served"; then base=$(sed -E 's/_(bucket|count|sum)$//' <<<"$m"); fi
    if grep -qx "$base" "$dir/served"; then
      echo "ok: $m"
    elif [[ $m == zeroscale_sidecar_gpu_* ]] && grep -qF "\"$m\"" "$gpu_gauges_src"; then
      # Served only while the samples carry GPU readings, and this machine has no GPU:
      # the name must be one the sidecar's sample gauges register (sidecar_report_test
      # serves them from given readings).
      echo "ok: $m (a GPU gauge of $gpu_gauges_src; no GPU here to serve it)"
    else
      fail "$m (in $file) is served by no program's /metrics"
    fi
  done
}
echo "== zeroscale_ metrics used by the alerts"
check_names "$alerts" $(grep -E '^ *expr:|^ +[^#]*zeroscale_' "$alerts" |
  grep -oE 'zeroscale_[a-z0-9_]+' | sort -u)
echo "== zeroscale_ metrics used by the dashboard"
dashboard=$src/charts/zeroscale/files/dashboard.json
# The copy for manual import is the same file.
cmp "$dashboard" "$src/charts/zeroscale/dashboards/zeroscale.json" ||
  fail "charts/zeroscale/dashboards/zeroscale.json differs from files/dashboard.json"
# Grafana is not in Debian: the dashboard's structure is checked here instead. Unique panel
# ids; every panel placed on the 24-column grid without overlapping another; every
# non-row panel with a Prometheus datasource and targets, each with a refId and an expr.
python3 - "$dashboard" <<'PY' || fail "$dashboard is not a well-formed dashboard"
import json, sys
d = json.load(open(sys.argv[1]))
problems = []
for key in ("title", "uid", "panels", "templating", "schemaVersion"):
    if key not in d:
        problems.append(f"no top-level {key}")
ids, cells = set(), {}
for p in d.get("panels", []):
    pid, title = p.get("id"), p.get("title", "?")
    where = f"panel {pid} ({title})"
    if not isinstance(pid, int) or pid in ids:
        problems.append(f"{where}: id missing or not unique")
    ids.add(pid)
    g = p.get("gridPos", {})
    if not all(isinstance(g.get(k), int) for k in "hwxy") or g["w"] < 1 or g["h"] < 1 \
            or g["x"] < 0 or g["x"] + g["w"] > 24 or g["y"] < 0:
        problems.append(f"{where}: gridPos {g} is not on the 24-column grid")
    else:
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                if (x, y) in cells:
                    problems.append(f"{where} overlaps panel {cells[(x, y)]}")
                    break
                cells[(x, y)] = pid
            else:
                continue
            break
    if p.get("type") == "row":
        continue
    if not p.get("type") or not title:
        problems.append(f"{where}: no type or title")
    if p.get("datasource", {}).get("type") != "prometheus":
        problems.append(f"{where}: no prometheus datasource")
    targets = p.get("targets") or []
    if not targets:
        problems.append(f"{where}: no targets")
    refs = [t.get("refId") for t in targets]
    if len(set(refs)) != len(refs) or not all(refs):
        problems.append(f"{where}: refIds missing or repeated")
    for t in targets:
        if not isinstance(t.get("expr"), str) or not t["expr"].strip():
            problems.append(f"{where}: target {t.get('refId')} has no expr")
for v in d.get("templating", {}).get("list", []):
    if not v.get("name") or not v.get("type"):
        problems.append(f"variable {v}: no name or type")
for problem in problems:
    print(problem)
print(f"dashboard: {len(d.get('panels', []))} panels, {len(problems)} problem(s)")
sys.exit(1 if problems else 0)
PY
check_names "$dashboard" $(python3 -c '
import json, re, sys
def walk(n):
    if isinstance(n, dict):
        for k, v in n.items():
            if k in ("expr", "query", "definition") and isinstance(v, str):
                yield v
            else:
                yield from walk(v)
    elif isinstance(n, list):
        for v in n:
            yield from walk(v)
names = set()
for e in walk(json.load(open(sys.argv[1]))):
    names.update(re.findall(r"zeroscale_[a-z0-9_]+", e))
print(" ".join(sorted(names)))' "$dashboard")
if [ "$failures" -ne 0 ]; then
  echo "$failures failure(s)"
  exit 1
fi
echo "PASS"
