#!/usr/bin/env bash
# kcat (librdkafka 2.0.x from Debian) smoke: metadata, produce with keys, consume back.
set -euo pipefail
B=${1:?bootstrap}
T=kcat-smoke-$RANDOM
kcat -b "$B" -L >/dev/null
# lz4 when this kcat's librdkafka has it (decided up front: retrying a failed run would produce
# the records twice).
Z=()
if kcat -V 2>&1 | grep -q 'builtin.features=.*lz4'; then Z=(-z lz4); fi
seq 1 500 | sed 's/^/key&:value&/' | kcat -b "$B" -P -t "$T" -K: "${Z[@]}"
n=$(kcat -b "$B" -C -t "$T" -o beginning -e -f '%k=%s\n' | grep -c '^key[0-9]*=value[0-9]*$')
[ "$n" = 500 ] || { echo "FAIL kcat: consumed $n of 500"; exit 1; }
kcat -b "$B" -L -t "$T" | grep -q "partition 0" || { echo "FAIL kcat metadata"; exit 1; }
echo "PASS kcat produce/consume/metadata"
