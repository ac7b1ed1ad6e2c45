#!/usr/bin/env bash
# Installs the Debian packages zeroscale builds, tests and benchmarks with.
# Idempotent: does nothing when everything is already installed.
set -euo pipefail
PACKAGES=(
  build-essential cmake pkg-config git curl python3
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler libabsl-dev
  libhiredis-dev prometheus-cpp-dev libgtest-dev libgmock-dev libbenchmark-dev
  libboost-dev libssl-dev nlohmann-json3-dev libyaml-cpp-dev
  libc-ares-dev libre2-dev zlib1g-dev gnuplot-nox
  redis-server redis-tools wrk nginx-light
  etcd-server iproute2 openssl xz-utils util-linux prometheus
  clang libclang-rt-14-dev
)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
echo "installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
# nginx-light's package starts a system nginx on :80, etcd-server a system etcd on
# :2379, prometheus (for promtool) a system Prometheus on :9090; benchmarks and tests
# run their own or none.
for service in nginx etcd prometheus prometheus-node-exporter; do
  $SUDO systemctl disable --now "$service" >/dev/null 2>&1 ||
    $SUDO service "$service" stop >/dev/null 2>&1 || true
done
