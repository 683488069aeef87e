# syntax=docker/dockerfile:1
# Build stage: Swift 6 toolchain plus the C libraries' development files.
FROM swift:6.1-bookworm AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        pkg-config libc6-dev libgoogle-perftools-dev libmicrohttpd-dev libsqlite3-dev libcurl4-openssl-dev libc-ares-dev libpq-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# The whole tree is needed even to resolve: the manifest names target folders (Tests/TestSupport,
# Plugins/EmbedFiles) and the build plugin embeds migrations/ and openapi.yaml.
COPY . .
RUN swift package resolve \
 && swift build -c release --static-swift-stdlib --product endpoint-registry \
 && mkdir -p /staging \
 && cp "$(swift build -c release --show-bin-path)/endpoint-registry" /staging/

# Run stage: only the runtime libraries, as a non-root user.
FROM debian:bookworm-slim
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        libtcmalloc-minimal4 libmicrohttpd12 libsqlite3-0 libcurl4 libc-ares2 libpq5 libstdc++6 ca-certificates tzdata \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 registry \
 && useradd --system --uid 10001 --gid 10001 --home-dir /data --shell /usr/sbin/nologin registry \
 && mkdir -p /data && chown registry /data
COPY --from=build /staging/endpoint-registry /usr/local/bin/endpoint-registry
USER 10001:10001
WORKDIR /data
VOLUME /data
ENV ENDPOINT_REGISTRY_HOST=0.0.0.0 \
    ENDPOINT_REGISTRY_PORT=8478 \
    ENDPOINT_REGISTRY_DATABASE=/data/registry.sqlite
EXPOSE 8478
# `healthcheck` reads the same ENDPOINT_REGISTRY_* settings as `serve` (host, port, TLS), so the
# check follows `docker run -e ENDPOINT_REGISTRY_PORT=… -e ENDPOINT_REGISTRY_TLS_CERT=…`.
HEALTHCHECK --interval=15s --timeout=5s --start-period=10s --retries=3 \
    CMD ["endpoint-registry", "healthcheck"]
ENTRYPOINT ["endpoint-registry"]
CMD ["serve"]
