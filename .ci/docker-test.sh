#!/usr/bin/env bash
# Build the image from the Dockerfile (multi-stage release build, offline with vendored crates)
# and really run it: /health answers, kcat produces and consumes through the published port,
# the data lands in the volume as Parquet.
set -euo pipefail
cd "$(dirname "$0")/.."
CTX=$(mktemp -d /var/tmp/heraclitus-docker-ctx.XXXXXX)
trap 'rm -rf "$CTX"' EXIT
cp -r Cargo.toml Cargo.lock src benches heraclitus.yaml Dockerfile "$CTX/"
mkdir -p "$CTX/.cargo"
cargo vendor --locked --quiet "$CTX/vendor" > /dev/null
# Inside the image the vendored crates sit beside .cargo (relative to /src).
cat > "$CTX/.cargo/config.toml" <<'TOML'
[source.crates-io]
replace-with = "vendored-sources"

[source.vendored-sources]
directory = "vendor"
TOML
docker build -q -t heraclitus:ci "$CTX" > /dev/null
echo "image built: $(docker image ls --format '{{.Size}}' heraclitus:ci)"

VOL=$(mktemp -d /var/tmp/heraclitus-docker-vol.XXXXXX)
chmod 777 "$VOL"
PORT=${DOCKER_TEST_PORT:-22192}
HPORT=$((PORT + 1))
docker rm -f heraclitus-ci >/dev/null 2>&1 || true
docker run -d --name heraclitus-ci -p 127.0.0.1:$PORT:9092 -p 127.0.0.1:$HPORT:9093 \
  -v "$VOL":/var/lib/heraclitus \
  -e HERACLITUS_ADVERTISED_HOST=127.0.0.1 -e HERACLITUS_ADVERTISED_PORT=$PORT \
  heraclitus:ci > /dev/null
cleanup() { docker logs heraclitus-ci > "$VOL/container.log" 2>&1 || true; docker rm -f heraclitus-ci >/dev/null 2>&1 || true; }
trap 'cleanup; rm -rf "$CTX"' EXIT
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$HPORT/health" >/dev/null && break; sleep 0.2; done
curl -sf "http://127.0.0.1:$HPORT/health" | grep -q ok || { docker logs heraclitus-ci | tail; exit 1; }
echo "PASS docker /health"
seq 1 200 | sed 's/^/k&:v&/' | kcat -b 127.0.0.1:$PORT -P -t docker-smoke -K:
n=$(kcat -b 127.0.0.1:$PORT -C -t docker-smoke -o beginning -e -q | wc -l)
[ "$n" = 200 ] || { echo "FAIL docker consume: $n of 200"; exit 1; }
echo "PASS docker produce/consume through the published port"
ls "$VOL"/data/topic=docker-smoke/topic_id=*/partition=0/*.parquet > /dev/null || { echo "FAIL no segment in the volume"; exit 1; }
echo "PASS docker data in the volume: $(ls "$VOL"/data/topic=docker-smoke/topic_id=*/partition=0/ | head -1)"
[ "$(docker inspect -f '{{.Config.User}}' heraclitus-ci)" = heraclitus ] && echo "PASS docker runs as non-root"
status=$(docker inspect -f '{{.State.Health.Status}}' heraclitus-ci 2>/dev/null || echo none)
echo "docker HEALTHCHECK status: $status"
docker stop -t 20 heraclitus-ci > /dev/null
code=$(docker inspect -f '{{.State.ExitCode}}' heraclitus-ci)
[ "$code" = 0 ] || { echo "FAIL docker stop exit code $code"; exit 1; }
echo "PASS docker graceful stop (exit 0)"
