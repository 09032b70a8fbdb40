#!/usr/bin/env bash
# Run the README's examples as a new user would, so a broken example fails the build.
# Each example is the fenced block after a `<!-- example: NAME -->` marker in README.md:
#   broker  - the quick-start command (`cargo run --release --` is the built binary here),
#   kcat    - produce and consume; the consumed value must come back,
#   duckdb  - the DuckDB query over the storage folder; it must return the produced record,
#   config  - `heraclitus config` / `config --check` (`heraclitus` is the built binary).
# (`test` - `cargo test` - is the README's test command, run by .ci/run itself.)
# Usage: readme-examples.sh BIN   (with kcat and duckdb on PATH; Kafka 9092 and HTTP 9093 free)
set -euo pipefail
BIN=$(readlink -f "$1")
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d /tmp/heraclitus-readme.XXXXXX)
SHIM=$WORK/bin
mkdir -p "$SHIM"
# `heraclitus` in examples is the binary under test.
ln -s "$BIN" "$SHIM/heraclitus"

example() { # NAME -> the block's lines
  awk -v name="$1" '
    $0 ~ "<!-- example: " name " -->" { armed = 1; next }
    armed && /^```/ { if (inside) exit; inside = 1; next }
    inside { print }
  ' "$ROOT/README.md"
}

for name in broker kcat duckdb config; do
  [ -n "$(example "$name")" ] || { echo "FAIL README has no '$name' example"; exit 1; }
done

echo "--- broker"
cmd=$(example broker)
echo "$cmd"
cmd=${cmd//cargo run --release --/$BIN}
cd "$WORK"
bash -c "exec $cmd" > "$WORK/broker.log" 2>&1 &
PID=$!
# The broker writes its checkpoint while it shuts down: wait for it before removing its folder.
trap 'kill $PID 2>/dev/null || true; wait $PID 2>/dev/null || true; rm -rf "$WORK"' EXIT
for _ in $(seq 1 200); do curl -sf http://127.0.0.1:9093/ready >/dev/null && break; sleep 0.1; done
curl -sf http://127.0.0.1:9093/ready >/dev/null || { echo "FAIL broker not ready"; tail "$WORK/broker.log"; exit 1; }

echo "--- kcat"
example kcat
out=$(cd "$WORK" && PATH="$SHIM:$PATH" bash -euo pipefail -c "$(example kcat)")
echo "$out"
grep -qx hello <<< "$out" || { echo "FAIL kcat example did not consume 'hello'"; exit 1; }

echo "--- duckdb"
example duckdb
out=$(cd "$WORK" && PATH="$SHIM:$PATH" bash -euo pipefail -c "$(example duckdb)")
echo "$out"
grep -q hello <<< "$out" || { echo "FAIL DuckDB example did not return the record"; exit 1; }
grep -q k1 <<< "$out" || { echo "FAIL DuckDB example did not return the key"; exit 1; }

echo "--- config"
example config
out=$(cd "$ROOT" && PATH="$SHIM:$PATH" bash -euo pipefail -c "$(example config)")
echo "$out"
grep -q '^kafka_port: 19092' <<< "$out" || { echo "FAIL config example: flag not applied"; exit 1; }
grep -q 'path: "memory://"' <<< "$out" || { echo "FAIL config example: env not applied"; exit 1; }
grep -q 'heraclitus.yaml: valid' <<< "$out" || { echo "FAIL config --check example"; exit 1; }

echo "PASS README examples (broker, kcat, duckdb, config)"
