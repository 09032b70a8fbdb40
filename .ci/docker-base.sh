#!/usr/bin/env bash
# No image can be pulled here, so make local stand-ins for the Dockerfile's two public base
# images from Debian's packages (debootstrap + docker import):
#   runtime: like debian:bookworm-slim (minbase, docs/man/locales stripped, apt lists empty)
#   build:   like rust:1.95-slim-bookworm (minbase + gcc, libc6-dev, ca-certificates) with this
#            machine's Rust toolchain in /usr/local/rust
# .ci/docker-test.sh passes them with --build-arg BUILD_IMAGE=… RUNTIME_IMAGE=…
# Their tags carry a hash of this script (and the Rust version), so a changed recipe or
# toolchain makes new images; existing ones are reused (`--print-tags` prints the tags only).
set -euo pipefail
cd "$(dirname "$0")/.."
RECIPE=$(sha256sum .ci/docker-base.sh | cut -c1-12)
RUST_VERSION=$(rustc --version | cut -d' ' -f2)
RUNTIME_BASE=heraclitus-runtime-base:bookworm-slim-$RECIPE
BUILD_BASE=heraclitus-build-base:rust-$RUST_VERSION-bookworm-$RECIPE
if [ "${1:-}" = --print-tags ]; then
  echo "BUILD_BASE=$BUILD_BASE RUNTIME_BASE=$RUNTIME_BASE"
  exit 0
fi
WORK=${DOCKER_BASE_WORK:-/var/tmp/heraclitus-docker-base}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
mkdir -p "$WORK"

# What debian's -slim images do to a minbase tree (debuerreotype's slimify and minimizing config):
# no docs but copyrights, no man/info pages, no locales, no apt caches; dpkg keeps it that way.
slim() { # rootfs
  local r=$1
  cat > "$r/etc/dpkg/dpkg.cfg.d/docker" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/man/*
EOF
  cat > "$r/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
  echo 'APT::Install-Recommends "false";' > "$r/etc/apt/apt.conf.d/docker-no-recommends"
  find "$r/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
  find "$r/usr/share/doc" -mindepth 1 -type d -empty -delete
  rm -rf "$r"/usr/share/{groff,info,linda,lintian,locale,man}/* \
    "$r"/var/cache/apt/archives/*.deb "$r"/var/cache/apt/*.bin "$r"/var/lib/apt/lists/* \
    "$r"/var/cache/debconf/*-old "$r"/var/lib/dpkg/*-old "$r"/var/log/*.log "$r"/var/log/apt/*
  # The host's name and resolver are not the image's (docker mounts its own).
  : > "$r/etc/resolv.conf"; rm -f "$r/etc/hostname"
}

bootstrap() { # name packages
  rm -rf "${WORK:?}/$1"
  debootstrap --variant=minbase --include="$2" bookworm "$WORK/$1" "$MIRROR" > "$WORK/$1.log" 2>&1 \
    || { tail -20 "$WORK/$1.log"; exit 1; }
  slim "$WORK/$1"
}

if ! docker image inspect "$RUNTIME_BASE" >/dev/null 2>&1; then
  # passwd (useradd) is in debian:bookworm-slim too.
  bootstrap runtime passwd
  tar -C "$WORK/runtime" -c . | docker import -c 'CMD ["bash"]' - "$RUNTIME_BASE" >/dev/null
  rm -rf "${WORK:?}/runtime"
fi

if ! docker image inspect "$BUILD_BASE" >/dev/null 2>&1; then
  # No cmake, g++ or pkg-config: the release binary needs only a C compiler (zstd, lz4, ring,
  # aws-lc via its cc builder); cmake is for the rdkafka dev-dependency only.
  bootstrap build ca-certificates,gcc,libc6-dev
  TC=$(rustc --print sysroot)
  mkdir -p "$WORK/build/usr/local/rust" "$WORK/build/usr/local/cargo"
  # The toolchain without its documentation and library sources.
  tar -C "$TC" --exclude=./share/doc --exclude=./lib/rustlib/src -c . | tar -C "$WORK/build/usr/local/rust" -x
  tar -C "$WORK/build" -c . | docker import \
    -c 'ENV CARGO_HOME=/usr/local/cargo' \
    -c 'ENV PATH=/usr/local/cargo/bin:/usr/local/rust/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    -c "ENV RUST_VERSION=$RUST_VERSION" \
    -c 'CMD ["bash"]' \
    - "$BUILD_BASE" >/dev/null
  rm -rf "${WORK:?}/build"
fi
docker image ls --format '{{.Repository}}:{{.Tag}} {{.Size}}' | grep -F -e "$RUNTIME_BASE" -e "$BUILD_BASE"
