#!/usr/bin/env bash
# Keep-alive policies compared on traces with zeroscale-sim: fixed 1, 5, 10, 20 minutes,
# the Knative-like baseline (60s stable window + 30s grace period) and adaptive, on the
# synthetic population (several seeds) and on each shipped public sample. Writes one
# summary row per (trace, policy) to bench/results/keepalive.csv and plots the p75 of the
# per-application cold-start rate against idle replica-hours to docs/keepalive.png
# (gnuplot, Debian package gnuplot-nox).
# Usage: bench/keepalive_sweep.sh [build-dir]   (TRACES=dir adds AzureLLMInferenceTrace_conv.csv
# and other timestamp CSVs found there; SEEDS="1 2 3"; COLD_START=2m)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
SIM=$BUILD/scaler/sim/zeroscale-sim
[ -x "$SIM" ] || { echo "build first: cmake --build $BUILD --target zeroscale-sim" >&2; exit 2; }
SEEDS=${SEEDS:-"1 2 3"}
COLD_START=${COLD_START:-2m}
POLICIES=(fixed:1m fixed:5m fixed:10m fixed:20m knative adaptive)
OUT=bench/results
mkdir -p "$OUT" docs
CSV=$OUT/keepalive.csv
echo "trace,policy,apps,requests,cold_starts,cold_start_rate_p75,idle_replica_hours,held,added_latency_p50_s,added_latency_p99_s,prewarms" > "$CSV"

run() {  # name, then zeroscale-sim flags
  local name=$1
  shift
  for p in "${POLICIES[@]}"; do
    local out
    out=$("$SIM" "$@" --policy="$p" --cold-start="$COLD_START")
    # policy=... apps=N ... / held=... / requests=... (the last line)
    local apps held p50 p99 pre req cold p75 idle
    apps=$(sed -n 's/.* apps=\([0-9]*\).*/\1/p' <<<"$out")
    held=$(sed -n 's/^held=\([0-9]*\).*/\1/p' <<<"$out")
    p50=$(sed -n 's/.*added_latency_p50_s=\([0-9.]*\).*/\1/p' <<<"$out")
    p99=$(sed -n 's/.*added_latency_p99_s=\([0-9.]*\).*/\1/p' <<<"$out")
    pre=$(sed -n 's/.*prewarms=\([0-9]*\).*/\1/p' <<<"$out")
    read -r req cold p75 idle < <(tail -1 <<<"$out" |
      sed 's/requests=\([0-9]*\) cold_starts=\([0-9]*\) cold_start_rate_p75=\([0-9.]*\) idle_replica_seconds=\([0-9.]*\)/\1 \2 \3 \4/')
    idle=$(awk -v s="$idle" 'BEGIN { printf "%.1f", s / 3600 }')
    echo "$name,$p,$apps,$req,$cold,$p75,$idle,$held,$p50,$p99,$pre" | tee -a "$CSV"
  done
}

for seed in $SEEDS; do
  run "synthetic-seed$seed" --trace=synthetic --seed="$seed"
done
run azure2019-sample --trace=bench/traces/invocations.csv --format=azure2019
run azure2021-sample --trace=bench/traces/Azure2021_200.csv --format=azure2021
run azure-llm-code --trace=bench/traces/AzureLLMInferenceTrace_code.csv --format=timestamps
if [ -n "${TRACES:-}" ]; then
  for f in "$TRACES"/AzureLLMInferenceTrace_conv.csv; do
    [ -f "$f" ] && run azure-llm-conv --trace="$f" --format=timestamps
  done
fi

# Two panels (p75 of the per-app cold-start rate; all cold starts) against idle
# replica-hours: per synthetic seed, the fixed keep-alives as a curve, knative and
# adaptive as points.
if command -v gnuplot >/dev/null; then
  panel() {  # column to plot, its scale
    local col=$1 scale=$2 plot="" i=0
    for seed in $SEEDS; do
      local t="synthetic-seed$seed"
      for kind in fixed knative adaptive; do
        awk -F, -v t="$t" -v k="$kind" -v c="$col" -v s="$scale" \
          '$1 == t && index($2, k) == 1 { sub(/^fixed:/, "", $2); print $7, $c / s, $2 }' \
          "$CSV" > "$OUT/.$kind$col-$i"
      done
      plot+="'$OUT/.fixed$col-$i' using 1:2 with linespoints lw 2 pt 7 lc $((i + 1)) title 'fixed 1/5/10/20 min, seed $seed', "
      [ $i -eq 0 ] && plot+="'$OUT/.fixed$col-$i' using 1:2:3 with labels offset 0,1 font ',8' notitle, "
      plot+="'$OUT/.knative$col-$i' using 1:2 with points pt 5 ps 1.5 lc $((i + 1)) title 'knative, seed $seed', "
      plot+="'$OUT/.adaptive$col-$i' using 1:2 with points pt 9 ps 2 lc $((i + 1)) title 'adaptive, seed $seed', "
      i=$((i + 1))
    done
    echo "${plot%, }"
  }
  p75=$(panel 6 1)
  cs=$(panel 5 1000)
  gnuplot <<GP
set terminal pngcairo size 1300,560 font ',10'
set output 'docs/keepalive.png'
set multiplot layout 1,2 title "Keep-alive policies, synthetic population (200 apps, 7 days, cold start $COLD_START), zeroscale-sim"
set xlabel 'idle replica-hours (replicas up, no request in flight)'
set grid
set key bottom left font ',8'
set ylabel 'p75 of per-application cold-start rate'
set yrange [0:1.05]
plot $p75
set ylabel 'cold starts (thousands)'
set yrange [0:*]
set key top right font ',8'
plot $cs
unset multiplot
GP
  rm -f "$OUT"/.fixed* "$OUT"/.knative* "$OUT"/.adaptive*
  echo "plot: docs/keepalive.png"
fi
