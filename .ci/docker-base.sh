#!/usr/bin/env bash
# No image can be pulled here, so make the Dockerfile's two base images locally:
#   heraclitus-runtime-base:bookworm  Debian bookworm minbase (debootstrap from Debian's packages)
#   heraclitus-build-base:bookworm    the same plus a C toolchain and this machine's Rust toolchain
# Both are cached in the local Docker engine; rebuilt only when missing.
set -euo pipefail
WORK=${DOCKER_BASE_WORK:-/var/tmp/heraclitus-docker-base}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
mkdir -p "$WORK"

if ! docker image inspect heraclitus-runtime-base:bookworm >/dev/null 2>&1; then
  rm -rf "$WORK/runtime"
  debootstrap --variant=minbase --include=ca-certificates,curl,passwd bookworm "$WORK/runtime" "$MIRROR" \
    > "$WORK/runtime.log" 2>&1 || { tail -20 "$WORK/runtime.log"; exit 1; }
  rm -rf "$WORK/runtime/var/cache/apt/archives/"*.deb "$WORK/runtime/usr/share/doc" "$WORK/runtime/usr/share/man"
  tar -C "$WORK/runtime" -c . | docker import - heraclitus-runtime-base:bookworm >/dev/null
  rm -rf "$WORK/runtime"
fi

if ! docker image inspect heraclitus-build-base:bookworm >/dev/null 2>&1; then
  rm -rf "$WORK/build"
  debootstrap --variant=minbase --include=ca-certificates,gcc,g++,libc6-dev,make,cmake,pkg-config,perl \
    bookworm "$WORK/build" "$MIRROR" > "$WORK/build.log" 2>&1 || { tail -20 "$WORK/build.log"; exit 1; }
  TC=$(rustc --print sysroot)
  mkdir -p "$WORK/build/usr/local/rust"
  # The toolchain without its documentation.
  tar -C "$TC" --exclude=share/doc -c . | tar -C "$WORK/build/usr/local/rust" -x
  tar -C "$WORK/build" -c . | docker import \
    -c 'ENV PATH=/usr/local/rust/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    - heraclitus-build-base:bookworm >/dev/null
  rm -rf "$WORK/build"
fi
docker image ls --format '{{.Repository}}:{{.Tag}} {{.Size}}' | grep heraclitus- || true
