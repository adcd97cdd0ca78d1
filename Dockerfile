# Multi-stage build on Debian bookworm: a build stage with the toolchain and
# -dev packages, and a slim runtime image with only the shared libraries.
FROM debian:bookworm AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      gcc libc6-dev make cmake pkg-config libhiredis-dev libev-dev libmsgpack-dev \
      libjansson-dev libmicrohttpd-dev libcrypt-dev libssl-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cmake -S . -B /build -DCMAKE_BUILD_TYPE=Release -DRTQ_BUILD_TESTS=OFF \
 && cmake --build /build -j"$(nproc)" \
 && cmake --install /build --prefix /opt/rtq

FROM debian:bookworm-slim AS runtime
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libhiredis0.14 libev4 libmsgpackc2 libjansson4 libmicrohttpd12 libssl3 \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 rtq \
 && useradd --system --uid 10001 --gid rtq --no-create-home --shell /usr/sbin/nologin rtq
COPY --from=build /opt/rtq /opt/rtq
ENV PATH=/opt/rtq/bin:$PATH LD_LIBRARY_PATH=/opt/rtq/lib
# Numeric, so that Kubernetes' runAsNonRoot can verify it.
USER 10001:10001
# The worker refreshes /tmp/rtq-worker.health after each heartbeat Redis
# accepted; --health passes while it is at most 15 s old (three beats). A
# container that runs rtq-broker uses `rtq-broker --health` instead.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD ["rtq-worker", "--health"]
# Process isolation: a crashing handler takes down its forked child, not
# the worker and the other tasks it runs.
CMD ["rtq-worker", "--isolation", "process", "--demo-handlers"]
