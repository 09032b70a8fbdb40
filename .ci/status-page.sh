#!/usr/bin/env bash
# The status page in a real headless browser (Debian's chromium): start the broker, produce to a
# topic, consume part of it in a consumer group (committing), then load `/` and check that the
# page rendered without console errors and shows the topic, the group and its lag; and that the
# JSON API says the same.
# Usage: status-page.sh BIN PYTHON   (PYTHON with confluent-kafka installed)
set -euo pipefail
BIN=$1
PY=$2
KPORT=21192
HPORT=21193
WORK=$(mktemp -d /tmp/heraclitus-status.XXXXXX)
CHROME=$(command -v chromium || command -v chromium-browser || true)
[ -n "$CHROME" ] || { echo "FAIL chromium is not installed"; exit 1; }
"$BIN" --storage-path "$WORK/data" --kafka-port $KPORT --http-port $HPORT > "$WORK/broker.log" 2>&1 &
PID=$!
# The broker writes its checkpoint while it shuts down: wait for it before removing its folder.
trap 'kill $PID 2>/dev/null || true; wait $PID 2>/dev/null || true; rm -rf "$WORK"' EXIT
for _ in $(seq 1 200); do curl -sf "http://127.0.0.1:$HPORT/ready" >/dev/null && break; sleep 0.1; done

"$PY" - "127.0.0.1:$KPORT" <<'EOF'
import sys
from confluent_kafka import Consumer, Producer, TopicPartition
bs = sys.argv[1]
p = Producer({"bootstrap.servers": bs})
for i in range(10):
    p.produce("status-orders", value=b"order-%d" % i)
assert p.flush(30) == 0
c = Consumer({"bootstrap.servers": bs, "group.id": "status-billing",
              "auto.offset.reset": "earliest", "enable.auto.commit": False})
c.assign([TopicPartition("status-orders", 0, 0)])
got = 0
while got < 6:
    m = c.poll(10)
    assert m is not None and not m.error(), m and m.error()
    got += 1
c.commit(asynchronous=False)   # committed offset 6 of 10: lag 4
c.close()
print("produced 10, committed 6")
EOF

json=$(curl -sf "http://127.0.0.1:$HPORT/api/v1/groups")
echo "$json"
"$PY" - "$json" <<'EOF'
import json, sys
groups = {g["name"]: g for g in json.loads(sys.argv[1])}
g = groups["status-billing"]
assert g["lag"] == 4, g
assert g["partitions"][0]["committed"] == 6, g
EOF

"$CHROME" --headless --no-sandbox --disable-gpu --enable-logging=stderr --v=0 \
  --virtual-time-budget=3000 --dump-dom "http://127.0.0.1:$HPORT/" \
  > "$WORK/dom.html" 2> "$WORK/chrome.log" || { cat "$WORK/chrome.log"; exit 1; }
if grep -E 'CONSOLE|Uncaught|console' "$WORK/chrome.log" | grep -viE 'dbus|gcm|fontconfig' ; then
  echo "FAIL the status page logged console messages"; exit 1
fi
for want in "status-orders" "status-billing" "<td>4</td>" "Object store" "ready"; do
  grep -qF "$want" "$WORK/dom.html" || { echo "FAIL status page lacks '$want'"; head -c 3000 "$WORK/dom.html"; exit 1; }
done
echo "PASS status page in headless chromium: topic, group and lag shown, no console errors"
