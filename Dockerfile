# keyquorum node image: multi-stage build, non-root, data on a volume.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin keyquorum

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /var/lib/keyquorum keyquorum \
    && mkdir -p /var/lib/keyquorum && chown keyquorum /var/lib/keyquorum
COPY --from=build /src/target/release/keyquorum /usr/local/bin/keyquorum
USER keyquorum
# The node's config, identity file, passphrase file and sled store live here; mount a volume
# (or a Kubernetes PersistentVolume) so they survive a restart of the container.
VOLUME ["/var/lib/keyquorum"]
EXPOSE 7100 7101
HEALTHCHECK --interval=10s --timeout=3s --retries=3 CMD curl -fsS http://127.0.0.1:7100/v1/health || exit 1
ENTRYPOINT ["keyquorum"]
CMD ["serve", "--config", "/var/lib/keyquorum/node.toml"]
