# Multi-stage build of the heraclitus broker.
#
#   docker build -t heraclitus .
#
# builds with the official Rust image, fetches crates from crates.io, and runs on Debian's slim
# image. Offline (our CI, where no registry is reachable) the same file is used with local base
# images and vendored crates (`cargo vendor` into the build context's vendor/):
#
#   docker build --build-arg BUILD_IMAGE=… --build-arg RUNTIME_IMAGE=… --build-arg VENDORED=1 .
#
# (.ci/docker-base.sh makes those base images from Debian's packages; .ci/docker-test.sh builds
# and runs the image.)
ARG BUILD_IMAGE=rust:1.95-slim-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

FROM ${BUILD_IMAGE} AS build
# 1 = build offline from vendor/ in the build context instead of fetching from crates.io.
ARG VENDORED=0
# Release binary without debug info, symbols stripped (Cargo.toml's profile keeps line tables
# for the profiling builds), with fat LTO and one codegen unit: 24 MB instead of 27 MB, which keeps
# the image under 100 MB, for a longer build. aws-lc-sys is built with its cc builder: no cmake.
ENV CARGO_PROFILE_RELEASE_DEBUG=0 \
    CARGO_PROFILE_RELEASE_STRIP=symbols \
    CARGO_PROFILE_RELEASE_LTO=fat \
    CARGO_PROFILE_RELEASE_CODEGEN_UNITS=1 \
    AWS_LC_SYS_CMAKE_BUILDER=0 \
    CARGO_TERM_COLOR=never
WORKDIR /src
# The -sys crates (zstd, lz4, ring, aws-lc) need a C compiler, and the runtime stage takes its CA
# bundle from here; the rust:*-slim images have both.
RUN if ! command -v cc >/dev/null || [ ! -s /etc/ssl/certs/ca-certificates.crt ]; then \
      apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev ca-certificates \
      && rm -rf /var/lib/apt/lists/*; \
    fi
# vendor/ is optional: Cargo.lock is named too so that the COPY has a source without it.
COPY Cargo.lock vendo[r] ./vendor/
RUN set -eu; rm vendor/Cargo.lock; \
    if [ "$VENDORED" = 1 ]; then \
      [ -n "$(ls vendor)" ] || { echo "VENDORED=1 needs vendor/ (cargo vendor) in the build context" >&2; exit 1; }; \
      mkdir -p .cargo; \
      printf '%s\n' '[source.crates-io]' 'replace-with = "vendored-sources"' \
        '[source.vendored-sources]' 'directory = "vendor"' '[net]' 'offline = true' > .cargo/config.toml; \
    else \
      rm -rf vendor; \
    fi
# Dependencies first, in their own layer: it is reused until Cargo.toml/Cargo.lock change.
# (The manifest declares the criterion bench, and cargo wants its file even for `--bin`.)
COPY Cargo.toml Cargo.lock ./
COPY benches ./benches
RUN mkdir src && echo 'fn main() {}' > src/main.rs && touch src/lib.rs \
    && cargo build --release --locked --bin heraclitus \
    && rm -rf src
COPY src ./src
# touch: the sources may be older than the placeholder build above.
RUN touch src/main.rs src/lib.rs \
    && cargo build --release --locked --bin heraclitus \
    && ./target/release/heraclitus --help | grep -q -- --storage-path \
    && cp target/release/heraclitus /usr/local/bin/heraclitus

FROM ${RUNTIME_IMAGE}
# A fixed uid/gid (10001) so that a bind-mounted data folder can be chowned to match.
RUN set -eu; \
    groupadd --system --gid 10001 heraclitus; \
    useradd --system --no-log-init --uid 10001 --gid heraclitus --home-dir /var/lib/heraclitus \
      --no-create-home --shell /usr/sbin/nologin heraclitus; \
    mkdir -p /var/lib/heraclitus /etc/heraclitus; \
    chown heraclitus:heraclitus /var/lib/heraclitus
# CA certificates for S3 over https: the bundle of the build image's ca-certificates package
# (the package itself would add openssl and libssl3, ~9 MB the binary never uses). Mount another
# bundle here, or set SSL_CERT_FILE, for a private CA.
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /usr/local/bin/heraclitus /usr/local/bin/heraclitus
COPY heraclitus.yaml /etc/heraclitus/heraclitus.yaml
ENV HERACLITUS_STORAGE__PATH=/var/lib/heraclitus
VOLUME ["/var/lib/heraclitus"]
EXPOSE 9092 9093
USER heraclitus
WORKDIR /var/lib/heraclitus
# GET /health must answer 200, as `curl -f` would, through bash's /dev/tcp: no curl in the image.
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s \
    CMD bash -c 'exec 3<>/dev/tcp/127.0.0.1/${HERACLITUS_HTTP_PORT:-9093} && printf "GET /health HTTP/1.0\r\nHost: localhost\r\n\r\n" >&3 && read -r _ code _ <&3 && [ "$code" = 200 ]' || exit 1
ENTRYPOINT ["/usr/local/bin/heraclitus", "--config", "/etc/heraclitus/heraclitus.yaml"]
