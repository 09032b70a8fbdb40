#!/usr/bin/env bash
# Build librdkafka's regression suite and examples (rdkafka_performance) from the copy of
# librdkafka bundled in the rdkafka-sys crate source (no download). Output: $OUT/librdkafka.
set -euo pipefail
OUT=${LIBRDKAFKA_BUILD_DIR:-/var/tmp/heraclitus-librdkafka}
REG=${CARGO_HOME:-$HOME/.cargo}/registry/src
SRC=$(ls -d "$REG"/*/rdkafka-sys-*/librdkafka 2>/dev/null | sort | tail -1)
if [ -z "$SRC" ]; then
  echo "rdkafka-sys source not found under $REG (run cargo fetch first)" >&2
  exit 1
fi
if [ -x "$OUT/librdkafka/tests/test-runner" ] && [ -x "$OUT/librdkafka/examples/rdkafka_performance" ] \
   && [ "$(cat "$OUT/.src" 2>/dev/null)" = "$SRC" ]; then
  echo "librdkafka tests already built in $OUT"
  exit 0
fi
rm -rf "$OUT"
mkdir -p "$OUT"
cp -r "$SRC" "$OUT/librdkafka"
cd "$OUT/librdkafka"
# Plain configure: no dependency downloads; use the system's zlib/zstd/lz4/ssl/sasl/curl.
./configure --disable-debug-symbols > "$OUT/configure.log" 2>&1 || { tail -30 "$OUT/configure.log"; exit 1; }
make -j"$(nproc)" libs > "$OUT/make-libs.log" 2>&1 || { tail -30 "$OUT/make-libs.log"; exit 1; }
make -C tests -j"$(nproc)" build > "$OUT/make-tests.log" 2>&1 || { tail -30 "$OUT/make-tests.log"; exit 1; }
make -C examples -j"$(nproc)" rdkafka_performance > "$OUT/make-examples.log" 2>&1 || { tail -30 "$OUT/make-examples.log"; exit 1; }
echo "$SRC" > "$OUT/.src"
echo "built librdkafka tests in $OUT"
