# gcs image. Conditions are not in it: the service downloads the versions
# named by STABLE_VERSION and CANARY_VERSION at startup, so a release of
# conditions needs no new image.
#
#   docker build --build-arg VERSION="$(git describe --always --dirty)" -t gcs .
#
# `make docker-check` proves these steps without a container engine.

# Build with the same make targets as a developer machine.
FROM debian:12 AS build
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends make \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Makefile ./
RUN make deps-build && rm -rf /var/lib/apt/lists/*
COPY src/ src/
ARG VERSION=dev
RUN make build/gcs VERSION="$VERSION"

# Run with the shared libraries the binary links and nothing else.
FROM debian:12-slim
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        liblua5.4-0 libmicrohttpd12 libcurl4 libjansson4 libpcre2-8-0 libre2-9 zlib1g lua-cjson \
        ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 gcs \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin gcs
# The defaults of GCS_SCHEMA_DIR and GCS_ROUTING_SCRIPT are relative to here.
WORKDIR /opt/gcs
COPY --from=build /src/build/gcs /usr/local/bin/gcs
COPY rules/schemas/ rules/schemas/
COPY scripts/*.lua scripts/
# Numeric, so that Kubernetes can verify runAsNonRoot.
USER 10001
EXPOSE 8000
ENTRYPOINT ["/usr/local/bin/gcs"]
