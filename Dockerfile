# queuerd image: the build stage makes the same Debian package as scripts/package; the runtime
# stage installs it, so its runtime libraries come from the package's Depends (dpkg-shlibdeps)
# instead of a hand-kept list. Not exercised by CI (no Docker engine on the project's machines);
# kept correct by review. debian:12-slim follows Debian 12's point releases (security fixes,
# same ABI); rebuild to pick them up.
FROM debian:12-slim AS build
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      cmake ninja-build g++ pkg-config dpkg-dev file libpq-dev libuv1-dev libyaml-cpp-dev \
      rapidjson-dev libsodium-dev libfmt-dev libcli11-dev libspdlog-dev \
      libhowardhinnant-date-dev libmicrohttpd-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# No man pages in the image (pandoc is large and containers strip /usr/share/man anyway).
RUN cmake -S . -B /build -G Ninja -DCMAKE_BUILD_TYPE=Release -DQUEUER_BUILD_TESTS=OFF \
      -DQUEUER_BUILD_BENCH=OFF -DQUEUER_MAN_PAGES=OFF -DCMAKE_INSTALL_PREFIX=/usr \
      -DQUEUER_CONFIG_INSTALL_DIR=/etc/queuerd \
    && cmake --build /build \
    && cd /build && cpack -G DEB

FROM debian:12-slim
COPY --from=build /src/dist/queuerd_*.deb /tmp/
COPY docker/healthcheck /usr/local/bin/queuerd-healthcheck
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
         /tmp/queuerd_*.deb tzdata ca-certificates \
    && rm -rf /var/lib/apt/lists/* /tmp/queuerd_*.deb \
    && useradd --system --no-create-home --shell /usr/sbin/nologin queuerd \
    && queuerd --config /etc/queuerd/queuerd.yaml --check
USER queuerd
STOPSIGNAL SIGTERM
# Healthy while this container's worker is registered and not stopped (or, once queuerd serves
# http.listen, while GET /healthz answers 200): see docker/healthcheck.
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["/usr/local/bin/queuerd-healthcheck"]
ENTRYPOINT ["/usr/bin/queuerd"]
CMD ["--config", "/etc/queuerd/queuerd.yaml"]
