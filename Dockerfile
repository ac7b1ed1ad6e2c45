# syntax=docker/dockerfile:1
# Images of the three programs, built from this checkout with Debian packages only:
#
#   docker build --target scaler   -t zeroscale-scaler .
#   docker build --target balancer -t zeroscale-balancer .
#   docker build --target sidecar  -t zeroscale-sidecar .
#
# The sidecar links gRPC, protobuf, absl and OpenSSL statically (ZEROSCALE_SIDECAR_STATIC)
# and needs only glibc, libstdc++ and prometheus-cpp at run time, so its image is
# distroless/cc plus that one library; the scaler and balancer run on debian:bookworm-slim
# with only the runtime libraries they link. All run as a non-root user and need no writable root
# filesystem.

ARG DEBIAN=bookworm

FROM debian:${DEBIAN} AS build
WORKDIR /src
COPY scripts/deps.sh scripts/deps.sh
# Build dependencies only: the test and benchmark tools deps.sh also lists are not needed.
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      build-essential cmake pkg-config ca-certificates \
      libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler libabsl-dev \
      libhiredis-dev prometheus-cpp-dev libboost-dev libssl-dev nlohmann-json3-dev \
      libyaml-cpp-dev libc-ares-dev libre2-dev zlib1g-dev \
 && rm -rf /var/lib/apt/lists/*
COPY . .
RUN cmake -S . -B /build -DCMAKE_BUILD_TYPE=Release -DZEROSCALE_BUILD_TESTS=OFF \
 && cmake --build /build -j"$(nproc)" --target zeroscale-scaler zeroscale-balancer zeroscale-sidecar \
 && strip /build/scaler/zeroscale-scaler /build/balancer/zeroscale-balancer \
      /build/sidecar/zeroscale-sidecar

FROM debian:${DEBIAN}-slim AS runtime
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      ca-certificates libabsl20220623 libc-ares2 libgrpc++1.51 libgrpc29 libhiredis0.14 \
      libprometheus-cpp-core1.0 libprotobuf32 libre2-9 libssl3 libyaml-cpp0.7 zlib1g \
 && rm -rf /var/lib/apt/lists/*
# 65532: the conventional "nonroot" uid of distroless images, the same in all three.
USER 65532:65532

FROM runtime AS scaler
COPY --from=build /build/scaler/zeroscale-scaler /usr/local/bin/zeroscale-scaler
EXPOSE 9090 8080 8443
ENTRYPOINT ["/usr/local/bin/zeroscale-scaler"]

FROM runtime AS balancer
COPY --from=build /build/balancer/zeroscale-balancer /usr/local/bin/zeroscale-balancer
EXPOSE 8000 8001
ENTRYPOINT ["/usr/local/bin/zeroscale-balancer"]

FROM gcr.io/distroless/cc-debian12:nonroot AS sidecar
COPY --from=runtime /usr/lib/x86_64-linux-gnu/libprometheus-cpp-core.so.1.0 /usr/lib/x86_64-linux-gnu/
COPY --from=build /build/sidecar/zeroscale-sidecar /zeroscale-sidecar
EXPOSE 8012 8013
ENTRYPOINT ["/zeroscale-sidecar"]
