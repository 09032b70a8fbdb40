#!/usr/bin/env bash
# Build the image from the Dockerfile offline — the local base images of .ci/docker-base.sh and
# vendored crates, passed as build args — and really run it: the image is at most 100 MB, /health
# answers, kcat produces and consumes through the published port, the data lands in the volume as
# Parquet, the HEALTHCHECK turns healthy, SIGTERM exits 0; then docker-compose.yml runs the same
# image with its named volume until healthy, and `down -v` removes it.
set -euo pipefail
cd "$(dirname "$0")/.."
eval "$(.ci/docker-base.sh --print-tags)" # BUILD_BASE, RUNTIME_BASE
for img in "$BUILD_BASE" "$RUNTIME_BASE"; do
  docker image inspect "$img" > /dev/null 2>&1 || { echo "FAIL no $img: run .ci/docker-base.sh first"; exit 1; }
done
IMAGE=${DOCKER_TEST_IMAGE:-heraclitus:ci}
MAX_BYTES=$((100 * 1000 * 1000)) # 100 MB, as `docker image ls` counts
PORT=${DOCKER_TEST_PORT:-22192}
HPORT=$((PORT + 1))
NAME=heraclitus-ci-$PORT
PROJECT=heraclitus-ci-$PORT
if docker compose version > /dev/null 2>&1; then COMPOSE=(docker compose); else COMPOSE=(docker-compose); fi
COMPOSE+=(-p "$PROJECT" -f docker-compose.yml)

CTX=$(mktemp -d /var/tmp/heraclitus-docker-ctx.XXXXXX)
# The container's volume, build log and container log (kept when a check fails).
VOL=$(mktemp -d /var/tmp/heraclitus-docker-vol.XXXXXX)
chmod 777 "$VOL"
cleanup() {
  docker logs "$NAME" > "$VOL/container.log" 2>&1 || true
  docker rm -f "$NAME" > /dev/null 2>&1 || true
  "${COMPOSE[@]}" down -v > /dev/null 2>&1 || true
  rm -rf "$CTX"
}
trap cleanup EXIT

# The build context: what .dockerignore lets through, plus the vendored crates.
cp -r Cargo.toml Cargo.lock src benches heraclitus.yaml Dockerfile .dockerignore "$CTX/"
cargo vendor --locked --quiet "$CTX/vendor" > /dev/null
SECONDS=0
docker build --force-rm -t "$IMAGE" --build-arg BUILD_IMAGE="$BUILD_BASE" --build-arg RUNTIME_IMAGE="$RUNTIME_BASE" \
  --build-arg VENDORED=1 "$CTX" > "$VOL/build.log" 2>&1 || { tail -40 "$VOL/build.log"; exit 1; }
size=$(docker image inspect -f '{{.Size}}' "$IMAGE")
echo "image $IMAGE built in ${SECONDS}s: $((size / 1000000)) MB ($size bytes; limit $MAX_BYTES)"
[ "$size" -le "$MAX_BYTES" ] || { echo "FAIL docker image larger than 100 MB"; exit 1; }
echo "PASS docker image size"
docker run --rm --entrypoint bash "$IMAGE" -c \
  '! command -v cc && ! command -v cargo && ! command -v curl && [ -s /etc/ssl/certs/ca-certificates.crt ]' \
  > /dev/null || { echo "FAIL runtime image has build tools or lacks CA certificates"; exit 1; }
echo "PASS docker runtime image: no compiler, cargo or curl; CA certificates present"

docker rm -f "$NAME" > /dev/null 2>&1 || true
# The image's HEALTHCHECK command, run every 2 s instead of 10 s to keep the test short.
docker run -d --name "$NAME" -p 127.0.0.1:$PORT:9092 -p 127.0.0.1:$HPORT:9093 \
  -v "$VOL":/var/lib/heraclitus --health-interval 2s \
  -e HERACLITUS_ADVERTISED_HOST=127.0.0.1 -e HERACLITUS_ADVERTISED_PORT=$PORT \
  "$IMAGE" > /dev/null
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$HPORT/health" > /dev/null && break; sleep 0.2; done
curl -sf "http://127.0.0.1:$HPORT/health" | grep -q ok || { docker logs "$NAME" | tail; exit 1; }
echo "PASS docker /health"
seq 1 200 | sed 's/^/k&:v&/' | kcat -b 127.0.0.1:$PORT -P -t docker-smoke -K:
n=$(kcat -b 127.0.0.1:$PORT -C -t docker-smoke -o beginning -e -q | wc -l)
[ "$n" = 200 ] || { echo "FAIL docker consume: $n of 200"; exit 1; }
echo "PASS docker produce/consume through the published port"
# Produced data lands in write-ahead objects (wal/) and is compacted into data/ later.
[ -n "$(find "$VOL/wal" "$VOL/data" -name '*.parquet' 2> /dev/null | head -1)" ] \
  || { echo "FAIL no object in the volume"; exit 1; }
echo "PASS docker data in the volume (write-ahead objects or table segments)"
[ "$(docker inspect -f '{{.Config.User}}' "$NAME")" = heraclitus ] || { echo "FAIL docker user"; exit 1; }
echo "PASS docker runs as non-root ($(docker exec "$NAME" id -u):$(docker exec "$NAME" id -g))"
status=none
for _ in $(seq 1 30); do
  status=$(docker inspect -f '{{.State.Health.Status}}' "$NAME")
  [ "$status" = healthy ] && break
  sleep 1
done
[ "$status" = healthy ] || { echo "FAIL docker HEALTHCHECK status: $status"; docker inspect -f '{{json .State.Health}}' "$NAME"; exit 1; }
echo "PASS docker HEALTHCHECK healthy"
docker stop -t 20 "$NAME" > /dev/null
code=$(docker inspect -f '{{.State.ExitCode}}' "$NAME")
[ "$code" = 0 ] || { echo "FAIL docker stop exit code $code"; exit 1; }
echo "PASS docker graceful stop (exit 0)"

# docker-compose.yml with the image just built (no build, no pull), on other host ports.
export BROKER_IMAGE=$IMAGE KAFKA_PORT=$((PORT + 2)) HTTP_PORT=$((PORT + 3)) HERACLITUS_ADVERTISED_HOST=127.0.0.1
"${COMPOSE[@]}" config -q
"${COMPOSE[@]}" up -d --no-build > "$VOL/compose.log" 2>&1 || { cat "$VOL/compose.log"; exit 1; }
cid=$("${COMPOSE[@]}" ps -q heraclitus)
status=none
for _ in $(seq 1 60); do
  status=$(docker inspect -f '{{.State.Health.Status}}' "$cid")
  [ "$status" = healthy ] && break
  sleep 1
done
[ "$status" = healthy ] || { echo "FAIL compose service status: $status"; docker logs "$cid" | tail; exit 1; }
echo 'k:compose' | kcat -b 127.0.0.1:$KAFKA_PORT -P -t compose-smoke -K:
[ "$(kcat -b 127.0.0.1:$KAFKA_PORT -C -t compose-smoke -o beginning -e -q)" = compose ] \
  || { echo "FAIL compose produce/consume"; exit 1; }
vol=$(docker inspect -f '{{range .Mounts}}{{if eq .Destination "/var/lib/heraclitus"}}{{.Name}}{{end}}{{end}}' "$cid")
[ "$vol" = "${PROJECT}_heraclitus-data" ] || { echo "FAIL compose volume: '$vol'"; exit 1; }
"${COMPOSE[@]}" down -v > /dev/null 2>&1
! docker volume inspect "$vol" > /dev/null 2>&1 || { echo "FAIL compose down -v left $vol"; exit 1; }
echo "PASS docker compose: healthy, produce/consume, named volume $vol, down -v"
trap - EXIT
cleanup
rm -rf "$VOL"
