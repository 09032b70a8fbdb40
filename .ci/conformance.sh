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
export HERACLITUS_DEFAULT_PARTITIONS=${HERACLITUS_DEFAULT_PARTITIONS:-4}
# CONFORMANCE_CLUSTER_DSN=postgres://…: run against a 3-broker cluster sharing one storage
# folder and that metadata store (bootstrap lists all three) instead of one standalone broker.
BROKERS=()
BOOTSTRAP=
start_broker() { # kafka-port http-port log [extra args]
  local kp=$1 hp=$2 log=$3
  shift 3
  "$BIN" --storage-path "$WORK/data" --kafka-port "$kp" --http-port "$hp" "$@" > "$log" 2>&1 &
  BROKERS+=($!)
  BOOTSTRAP=${BOOTSTRAP:+$BOOTSTRAP,}127.0.0.1:$kp
}
if [ -n "${CONFORMANCE_CLUSTER_DSN:-}" ]; then
  for i in 1 2 3; do
    start_broker $((PORT + 10 * (i - 1))) $((HTTP + 10 * (i - 1))) "$LOGS/broker-$i.log" \
      --metadata-store "$CONFORMANCE_CLUSTER_DSN" --node-id "$i"
  done
else
  start_broker "$PORT" "$HTTP" "$LOGS/broker.log"
fi
BROKER_RE="^($(IFS='|'; echo "${BROKERS[*]}"))$"
brokers_alive() { for b in "${BROKERS[@]}"; do kill -0 "$b" 2>/dev/null || return 1; done; }
trap 'kill "${BROKERS[@]}" 2>/dev/null; wait "${BROKERS[@]}" 2>/dev/null' EXIT
for i in $(seq 0 $((${#BROKERS[@]} - 1))); do
  for _ in $(seq 1 200); do
    curl -sf "http://127.0.0.1:$((HTTP + 10 * i))/ready" >/dev/null && break
    sleep 0.1
  done
done

cat > "$WORK/test.conf" <<CONF
bootstrap.servers=$BOOTSTRAP
CONF
# CONFORMANCE_CLIENT_CONF: extra client properties (one per line), e.g. SASL credentials for a
# broker started with authentication and ACLs through HERACLITUS_… variables.
if [ -n "${CONFORMANCE_CLIENT_CONF:-}" ]; then
  printf '%s\n' "$CONFORMANCE_CLIENT_CONF" >> "$WORK/test.conf"
fi
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
      # The failure line and the reason on the line after it.
      grep -aE -A1 "### Test|Test assertion|failed at" "$log" | head -8 | sed 's/^/    /'
    } | tee "$RESULTS/$test${flags//[^A-Za-z_]/}.fail"
  fi
}
pids=()
while read -r test flags; do
  [[ -z "$test" || "$test" == \#* ]] && continue
  # Wait for a free slot (only our test jobs: the brokers are children too).
  while [ "$(jobs -pr | grep -vcE "$BROKER_RE")" -ge "$JOBS" ]; do sleep 0.5; done
  run_one "$test" "${flags:-}" &
  pids+=($!)
  if ! brokers_alive; then
    echo "a broker died"; tail -20 "$LOGS"/broker*.log; exit 1
  fi
done < "$LIST"
for p in "${pids[@]}"; do wait "$p"; done
if ! brokers_alive; then
  echo "a broker died during the suite"; tail -20 "$LOGS"/broker*.log; exit 1
fi
pass=$(ls "$RESULTS" | grep -c '\.pass$' || true)
fail=$(ls "$RESULTS" | grep -c '\.fail$' || true)
echo "librdkafka conformance: $pass passed, $fail failed"
if [ "$fail" -ne 0 ]; then
  echo "failed:"; cat "$RESULTS"/*.fail; echo "logs in $LOGS"; exit 1
fi
