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

# Tests mostly wait on timers: run several at once (CONFORMANCE_JOBS, default 3), each in its own
# test-runner process against the same broker (every test uses its own topics and groups).
JOBS=${CONFORMANCE_JOBS:-3}
RESULTS=$WORK/results
mkdir -p "$RESULTS"
run_one() {
  local test=$1 flags=$2 name log start rc secs
  name="$test${flags:+ $flags}"
  log="$LOGS/$test${flags//[^A-Za-z_]/}.log"
  start=$(date +%s)
  # Tokens of the form NAME=value (e.g. SUBTESTS=do_test_DescribeConfigs) are environment
  # variables for the runner; the others are test-runner flags.
  local envs=() args=() tok
  for tok in $flags; do
    if [[ "$tok" == *=* ]]; then envs+=("$tok"); else args+=("$tok"); fi
  done
  (cd "$RDK" && env TESTS="$test" "${envs[@]}" timeout 900 ./test-runner -E -L "${args[@]}") > "$log" 2>&1
  rc=$?
  secs=$(( $(date +%s) - start ))
  if [ $rc -eq 0 ]; then
    echo "PASS librdkafka $name (${secs}s)" | tee "$RESULTS/$test${flags//[^A-Za-z_]/}.pass"
  else
    { echo "FAIL librdkafka $name (${secs}s, rc=$rc)"
      grep -aE "### Test|Test assertion|failed at" "$log" | head -4 | sed 's/^/    /'
    } | tee "$RESULTS/$test${flags//[^A-Za-z_]/}.fail"
  fi
}
pids=()
while read -r test flags; do
  [[ -z "$test" || "$test" == \#* ]] && continue
  # Wait for a free slot (only our test jobs: the broker is a child too).
  while [ "$(jobs -pr | grep -vc "^$BROKER$")" -ge "$JOBS" ]; do sleep 0.5; done
  run_one "$test" "${flags:-}" &
  pids+=($!)
  if ! kill -0 $BROKER 2>/dev/null; then
    echo "broker died"; tail -20 "$LOGS/broker.log"; exit 1
  fi
done < "$LIST"
for p in "${pids[@]}"; do wait "$p"; done
if ! kill -0 $BROKER 2>/dev/null; then
  echo "broker died during the suite"; tail -20 "$LOGS/broker.log"; exit 1
fi
pass=$(ls "$RESULTS" | grep -c '\.pass$' || true)
fail=$(ls "$RESULTS" | grep -c '\.fail$' || true)
echo "librdkafka conformance: $pass passed, $fail failed"
if [ "$fail" -ne 0 ]; then
  echo "failed:"; cat "$RESULTS"/*.fail; echo "logs in $LOGS"; exit 1
fi
