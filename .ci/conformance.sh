#!/usr/bin/env bash
# Run librdkafka's regression tests against a Heraclitus broker, one test per test-runner
# invocation so one failure does not hide the rest. Usage:
#   .ci/conformance.sh <heraclitus-binary> [test-list-file]
# Needs .ci/build-librdkafka-tests.sh to have run. Exits non-zero if any listed test fails.
set -uo pipefail
BIN=${1:?heraclitus binary}
LIST=${2:-$(dirname "$0")/librdkafka-tests.txt}
RDK=${LIBRDKAFKA_BUILD_DIR:-/var/tmp/heraclitus-librdkafka}/librdkafka/tests
PORT=${CONFORMANCE_PORT:-29092}
HTTP=$((PORT + 1))
WORK=$(mktemp -d /tmp/heraclitus-conformance.XXXXXX)
LOGS=${CONFORMANCE_LOGS:-$WORK/logs}
mkdir -p "$LOGS"

# librdkafka's suite assumes auto-created topics get 4 partitions (its test clusters set
# num.partitions=4).
HERACLITUS_DEFAULT_PARTITIONS=${HERACLITUS_DEFAULT_PARTITIONS:-4} \
"$BIN" --storage-path "$WORK/data" --kafka-port "$PORT" --http-port "$HTTP" \
  > "$LOGS/broker.log" 2>&1 &
BROKER=$!
trap 'kill $BROKER 2>/dev/null; wait $BROKER 2>/dev/null' EXIT
for _ in $(seq 1 100); do
  curl -sf "http://127.0.0.1:$HTTP/ready" >/dev/null && break
  sleep 0.1
done

cat > "$WORK/test.conf" <<CONF
bootstrap.servers=127.0.0.1:$PORT
CONF
export RDKAFKA_TEST_CONF="$WORK/test.conf"
export TEST_KAFKA_VERSION=${TEST_KAFKA_VERSION:-3.9.0}
export LD_LIBRARY_PATH=$RDK/../src:$RDK/../src-cpp

pass=0; fail=0; failed=()
while read -r test flags; do
  [[ -z "$test" || "$test" == \#* ]] && continue
  name="$test${flags:+ $flags}"
  start=$(date +%s)
  (cd "$RDK" && TESTS=$test timeout 600 ./test-runner -Q -E -L $flags) \
    > "$LOGS/$test${flags//[^A-Za-z]/}.log" 2>&1
  rc=$?
  secs=$(( $(date +%s) - start ))
  if [ $rc -eq 0 ]; then
    pass=$((pass+1)); echo "PASS librdkafka $name (${secs}s)"
  else
    fail=$((fail+1)); failed+=("$name"); echo "FAIL librdkafka $name (${secs}s, rc=$rc)"
    grep -E "FAIL|Assert|assert" "$LOGS/$test${flags//[^A-Za-z]/}.log" | head -5 | sed 's/^/    /'
  fi
  if ! kill -0 $BROKER 2>/dev/null; then
    echo "broker died during $name"; tail -20 "$LOGS/broker.log"; exit 1
  fi
done < "$LIST"
echo "librdkafka conformance: $pass passed, $fail failed"
[ $fail -eq 0 ] || { echo "failed: ${failed[*]}"; echo "logs in $LOGS"; exit 1; }
