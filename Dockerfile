# queuerd image: build stage with the Debian toolchain, slim runtime stage.
# Not exercised by CI (no Docker engine on our machines); kept correct by review.
FROM debian:12 AS build
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      cmake ninja-build g++ pkg-config libpq-dev libuv1-dev libyaml-cpp-dev rapidjson-dev \
      libsodium-dev libfmt-dev libcli11-dev libspdlog-dev libsystemd-dev \
      libhowardhinnant-date-dev libmicrohttpd-dev libgtest-dev libgmock-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cmake -S . -B /build -G Ninja -DCMAKE_BUILD_TYPE=Release -DQUEUER_BUILD_TESTS=OFF \
      -DQUEUER_BUILD_BENCH=OFF -DCMAKE_INSTALL_PREFIX=/usr \
    && cmake --build /build && DESTDIR=/out cmake --install /build

FROM debian:12-slim
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libpq5 libuv1 libyaml-cpp0.7 libsodium23 libfmt9 libspdlog1.10 libsystemd0 \
      libdate-tz3 libmicrohttpd12 tzdata ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --no-create-home --shell /usr/sbin/nologin queuerd
COPY --from=build /out/ /
USER queuerd
ENTRYPOINT ["/usr/bin/queuerd"]
CMD ["--config", "/etc/queuerd/queuerd.yaml"]
