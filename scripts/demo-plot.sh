#!/usr/bin/env bash
# Draws the demo's timeline as a PNG (gnuplot, Debian package gnuplot-nox): the workload's
# replicas and the requests the balancer holds over time, and each cold start the user
# waited through (a bar from the request to its answer). The data is the CSV demo/client.py
# writes during a run of scripts/demo.sh (columns t,replicas,state,held,in_flight,event,wait).
#
#   scripts/demo-plot.sh                    # runs the demo, draws docs/demo-timeline.png
#   scripts/demo-plot.sh timeline.csv [out.png]   # draws a recorded run
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${2:-docs/demo-timeline.png}
if [ $# -ge 1 ]; then
  CSV=$1
else
  CSV=$(mktemp /tmp/zeroscale-demo-timeline.XXXXXX.csv)
  ZEROSCALE_DEMO_CSV=$CSV bash scripts/demo.sh
fi
[ -s "$CSV" ] || { echo "demo-plot: $CSV is empty or missing" >&2; exit 1; }
command -v gnuplot >/dev/null || { echo "demo-plot: gnuplot not found (apt install gnuplot-nox)" >&2; exit 1; }
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
# Samples and cold-start events apart, as whitespace-separated columns gnuplot reads.
awk -F, 'NR > 1 && $7 == "" && $2 != "" { print $1, $2, ($4 == "" ? 0 : $4), $5 }' "$CSV" >"$TMP/samples"
awk -F, 'NR > 1 && $6 == "cold_start" { print $1 - $7, $1, $7 }' "$CSV" >"$TMP/cold"
[ -s "$TMP/samples" ] || { echo "demo-plot: no samples in $CSV" >&2; exit 1; }
YMAX=$(awk '{ m = ($2 > m ? $2 : m); m = ($3 > m ? $3 : m); m = ($4 > m ? $4 : m) } END { print m + 2 }' "$TMP/samples")
mkdir -p "$(dirname "$OUT")"
gnuplot <<GP
set terminal pngcairo size 1000,460 font "sans,10" noenhanced
set output "$OUT"
set title "zeroscale demo (scripts/demo.sh): replicas, held requests and cold starts"
set xlabel "seconds since the demo started"
set ylabel "count"
set yrange [0:$YMAX]
set key below horizontal
set grid ytics
set style fill transparent solid 0.25 noborder
plot "$TMP/cold" using 1:($YMAX-1):(\$2-\$1):(0) with vectors heads lw 3 lc rgb "#d62728" \
       title "cold start (request held until answered)", \
     "$TMP/cold" using ((\$1+\$2)/2):($YMAX-0.5):(sprintf("cold start %.1f s", \$3)) with labels tc rgb "#d62728" notitle, \
     "$TMP/samples" using 1:4 with steps lw 1 lc rgb "#7f7f7f" title "requests in flight (client)", \
     "$TMP/samples" using 1:3 with boxes lc rgb "#ff7f0e" title "requests held by the balancer", \
     "$TMP/samples" using 1:2 with steps lw 3 lc rgb "#1f77b4" title "replicas"
GP
echo "wrote $OUT from $CSV"
