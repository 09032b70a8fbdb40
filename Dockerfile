# Multi-stage build of the heraclitus broker.
# Base images are built locally by .ci/run (no registry here): see .ci/docker-base.sh.
ARG BUILD_IMAGE=heraclitus-build-base:bookworm
ARG RUNTIME_IMAGE=heraclitus-runtime-base:bookworm

FROM ${BUILD_IMAGE} AS build
WORKDIR /src
# Crates are vendored into the build context by .ci/docker-test.sh (`cargo vendor`), so the
# build needs no network.
COPY Cargo.toml Cargo.lock ./
COPY vendor ./vendor
COPY .cargo ./.cargo
COPY src ./src
# The manifest declares the criterion bench; cargo wants its file even for `--bin`.
COPY benches ./benches
RUN CARGO_PROFILE_RELEASE_DEBUG=0 cargo build --release --offline --locked --bin heraclitus

FROM ${RUNTIME_IMAGE}
RUN groupadd --system heraclitus && useradd --system --gid heraclitus --home /var/lib/heraclitus heraclitus \
    && mkdir -p /var/lib/heraclitus /etc/heraclitus && chown heraclitus:heraclitus /var/lib/heraclitus
COPY --from=build /src/target/release/heraclitus /usr/local/bin/heraclitus
COPY heraclitus.yaml /etc/heraclitus/heraclitus.yaml
ENV HERACLITUS_STORAGE__PATH=/var/lib/heraclitus
VOLUME ["/var/lib/heraclitus"]
EXPOSE 9092 9093
USER heraclitus
WORKDIR /var/lib/heraclitus
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s \
    CMD curl -fsS http://127.0.0.1:9093/health || exit 1
ENTRYPOINT ["/usr/local/bin/heraclitus", "--config", "/etc/heraclitus/heraclitus.yaml"]
