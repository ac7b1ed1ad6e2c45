#!/usr/bin/env bash
# Builds zeroscale's libFuzzer targets (fuzz/) with clang, AddressSanitizer and UBSan in a
# build directory of their own, and runs each for a bounded time.
#
#   scripts/fuzz.sh                 # every target, 60 s each
#   scripts/fuzz.sh --seconds 600 fuzz_proxy_request_head
#   scripts/fuzz.sh --smoke         # CI: every seed and regression input, then 5 s each
#
# Options: --seconds N (FUZZ_SECONDS, default 60), --smoke, --build-dir DIR (default
# build-fuzz), --jobs N (parallel build jobs, default 2). New inputs the fuzzer finds
# go to DIR/corpus/<target>/, never into the repository's fuzz/corpus/ (add the ones
# worth keeping by hand); a crashing input is written to DIR/artifacts/<target>/ and the
# script exits non-zero. Exits 77 (CTest: skipped) when clang or libFuzzer is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SECONDS_EACH=${FUZZ_SECONDS:-60}
SMOKE_SECONDS=${FUZZ_SMOKE_SECONDS:-5}
BUILD_DIR=$ROOT/build-fuzz
JOBS=2
SMOKE=0
TARGETS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) SECONDS_EACH=$2; shift 2 ;;
    --smoke) SMOKE=1; shift ;;
    --build-dir) BUILD_DIR=$2; shift 2 ;;
    --jobs) JOBS=$2; shift 2 ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    -*) echo "fuzz.sh: unknown option $1" >&2; exit 2 ;;
    *) TARGETS+=("$1"); shift ;;
  esac
done
ALL=(fuzz_podmetric_json fuzz_scaling_rule_json fuzz_custom_autoscaler fuzz_admission_review
     fuzz_balancer_settings fuzz_proxy_logs_query fuzz_workloads_yaml fuzz_cgroup_parsers
     fuzz_proxy_request_head fuzz_prom_text)
[ ${#TARGETS[@]} -eq 0 ] && TARGETS=("${ALL[@]}")

# clang with libFuzzer (Debian: clang and libclang-rt-14-dev, from scripts/deps.sh).
CXX=${FUZZ_CXX:-$(command -v clang++ || true)}
probe=$(mktemp -d)
trap 'rm -rf "$probe"' EXIT
echo 'extern "C" int LLVMFuzzerTestOneInput(const unsigned char*, unsigned long) { return 0; }' \
  > "$probe/p.cc"
if [ -z "$CXX" ] || ! "$CXX" -fsanitize=fuzzer,address,undefined "$probe/p.cc" -o "$probe/p" \
     >/dev/null 2>&1; then
  echo "fuzz.sh: SKIPPED: no clang++ with libFuzzer (install clang and libclang-rt-14-dev:" \
       "scripts/deps.sh)"
  exit 77
fi

export CMAKE_CXX_COMPILER_LAUNCHER=${CMAKE_CXX_COMPILER_LAUNCHER:-$(command -v ccache || true)}
cmake -S "$ROOT" -B "$BUILD_DIR" -DCMAKE_CXX_COMPILER="$CXX" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DZEROSCALE_FUZZ=ON -DZEROSCALE_BUILD_TESTS=OFF -DZEROSCALE_SIDECAR_STATIC=OFF >/dev/null
nice cmake --build "$BUILD_DIR" -j"$JOBS" --target "${TARGETS[@]}"

failed=()
for t in "${TARGETS[@]}"; do
  seeds=$ROOT/fuzz/corpus/${t#fuzz_}
  work=$BUILD_DIR/corpus/$t
  artifacts=$BUILD_DIR/artifacts/$t
  mkdir -p "$work" "$artifacts"
  common=(-rss_limit_mb=2048 -timeout=30 -artifact_prefix="$artifacts/" -print_final_stats=1)
  if [ $SMOKE = 1 ]; then
    echo "== $t: every seed and regression input, then ${SMOKE_SECONDS}s"
    if ! "$BUILD_DIR/fuzz/$t" "${common[@]}" -runs=0 "$seeds" \
         || ! "$BUILD_DIR/fuzz/$t" "${common[@]}" -max_total_time="$SMOKE_SECONDS" "$work" "$seeds"; then
      failed+=("$t")
    fi
  else
    echo "== $t: ${SECONDS_EACH}s"
    "$BUILD_DIR/fuzz/$t" "${common[@]}" -max_total_time="$SECONDS_EACH" "$work" "$seeds" \
      || failed+=("$t")
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz.sh: FAILED: ${failed[*]} (crashing inputs in $BUILD_DIR/artifacts/)"
  exit 1
fi
echo "fuzz.sh: ${#TARGETS[@]} targets passed"
