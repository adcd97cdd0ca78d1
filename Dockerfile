# Multi-stage build on Debian bookworm: a build stage with the toolchain and
# -dev packages, and a slim runtime image with only the shared libraries.
FROM debian:bookworm AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      gcc libc6-dev make cmake pkg-config libhiredis-dev libev-dev libmsgpack-dev \
      libjansson-dev libcmocka-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cmake -S . -B /build -DCMAKE_BUILD_TYPE=Release -DRTQ_BUILD_TESTS=OFF \
 && cmake --build /build -j"$(nproc)" \
 && cmake --install /build --prefix /opt/rtq

FROM debian:bookworm-slim AS runtime
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libhiredis0.14 libev4 libmsgpackc2 libjansson4 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --no-create-home --shell /usr/sbin/nologin rtq
COPY --from=build /opt/rtq /opt/rtq
ENV PATH=/opt/rtq/bin:$PATH LD_LIBRARY_PATH=/opt/rtq/lib
USER rtq
CMD ["rtq-worker", "--demo-handlers"]
