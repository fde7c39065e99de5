# syntax=docker/dockerfile:1
# keyquorum node image: multi-stage build, non-root, minimal runtime, data on a volume.
# Build: docker build -t keyquorum .   Run a cluster: deploy/docker-compose.yml
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
# BuildKit cache mounts keep the registry and compiled dependencies between builds; the binary
# is copied out of the cached target directory.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin keyquorum \
    && cp target/release/keyquorum /usr/local/bin/keyquorum \
    && strip /usr/local/bin/keyquorum

# Runtime: Debian slim (glibc for the Rust binary), no compiler, no curl: the health check is
# the binary itself (`keyquorum health`). TLS is rustls, so no OpenSSL either.
FROM debian:bookworm-slim
RUN useradd --system --uid 10001 --home-dir /var/lib/keyquorum --shell /usr/sbin/nologin keyquorum \
    && mkdir -p /var/lib/keyquorum && chown keyquorum:keyquorum /var/lib/keyquorum \
    && chmod 0700 /var/lib/keyquorum
COPY --from=build /usr/local/bin/keyquorum /usr/local/bin/keyquorum
USER 10001:10001
# The node's config, identity file, passphrase file (or KEYQUORUM_PASSPHRASE from a secret) and
# sled store live here; mount a volume (or a Kubernetes PersistentVolume) so they survive a
# restart of the container. See README "Deployment".
VOLUME ["/var/lib/keyquorum"]
EXPOSE 7100 7101
ENV KEYQUORUM_URL=http://127.0.0.1:7100
# With TLS set KEYQUORUM_URL=https://... and KEYQUORUM_CA to the CA file for this check.
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["keyquorum", "health"]
ENTRYPOINT ["keyquorum"]
CMD ["serve", "--config", "/var/lib/keyquorum/node.toml"]
