# syntax=docker/dockerfile:1
# Orgkeeper container image. Build: `docker build -t orgkeeper .` (BuildKit, the default).
# Run:   docker run -d -p 8080:8080 -v orgkeeper-data:/data --env-file orgkeeper.env orgkeeper
# (the admin key and other settings come from the environment; see the README).
# The binary embeds templates, static assets and migrations, so the runtime stage
# needs only the executable and CA certificates (for api.anthropic.com over TLS).

# ---- build ----------------------------------------------------------------------------
FROM rust:1-slim-bookworm AS builder
WORKDIR /src
# The slim image already has gcc and libc6-dev, which is all the C code needs
# (bundled SQLite in libsqlite3-sys, ring for rustls). No OpenSSL: reqwest uses rustls.
COPY . .
# Cache mounts keep the registry and target dir between builds (BuildKit). The target dir
# is a cache mount, so the binary is copied out in the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked \
 && install -m 0755 target/release/orgkeeper /usr/local/bin/orgkeeper

# ---- runtime --------------------------------------------------------------------------
FROM debian:bookworm-slim
# Unpinned on purpose: ca-certificates must follow Debian's security updates.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/*
# Fixed, unprivileged uid/gid so a bind-mounted /data can be chowned on the host
# (`chown 10001:10001 ./data`). A named volume inherits the ownership set here.
RUN groupadd --system --gid 10001 orgkeeper \
 && useradd --system --uid 10001 --gid orgkeeper --home-dir /data --no-create-home \
        --shell /usr/sbin/nologin orgkeeper \
 && mkdir -p /data \
 && chown orgkeeper:orgkeeper /data \
 && chmod 0700 /data
COPY --from=builder /usr/local/bin/orgkeeper /usr/local/bin/orgkeeper

ENV ORGKEEPER_DATABASE=/data/orgkeeper.db \
    ORGKEEPER_BIND=0.0.0.0:8080
VOLUME ["/data"]
WORKDIR /data
# Numeric, so Kubernetes `runAsNonRoot` can verify it without reading /etc/passwd.
USER 10001:10001
EXPOSE 8080

# No curl in the image: `orgkeeper healthcheck` GETs /healthz on the configured bind
# address (127.0.0.1 when bound to 0.0.0.0) and exits 0 when healthy, 1 otherwise.
HEALTHCHECK --interval=30s --timeout=5s --start-period=15s --retries=3 \
    CMD ["orgkeeper", "healthcheck"]

# Exec form: orgkeeper is PID 1 and receives `docker stop`'s SIGTERM directly (PID 1 has no
# default signal handlers, so the server must handle SIGTERM itself for a graceful stop).
ENTRYPOINT ["orgkeeper"]
CMD ["serve"]
