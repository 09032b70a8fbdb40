"""Broker CPU per Fetch for a kafka-python consumer of 1,000 partitions, with and without
incremental fetch sessions (KIP-227).

    python bench/fetch_sessions.py BINARY [SECONDS]

Starts BINARY twice on a fresh folder (fetch_session_cache_slots 1000, then 0), creates a
topic of 1,000 partitions, and runs one assign()-based consumer of all of them for SECONDS
(default 20): first idle (no new records), then busy (a producer writes 200 records/s spread
over the partitions). Reports the broker's CPU time (utime + stime from /proc) divided by the
Fetch requests it served (from /metrics), in milliseconds per fetch.
"""
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic

BIN = sys.argv[1]
SECONDS = float(sys.argv[2]) if len(sys.argv) > 2 else 20.0
N = 1000
KPORT, HPORT = 19392, 19393
B = f"127.0.0.1:{KPORT}"
TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def fetches():
    text = urllib.request.urlopen(f"http://127.0.0.1:{HPORT}/metrics").read().decode()
    return sum(float(m.group(1)) for m in re.finditer(
        r'kafka_requests_total\{api="Fetch",[^}]*\} ([0-9.e+]+)', text))


def run(slots):
    folder = tempfile.mkdtemp(prefix="heraclitus-fs-bench-")
    env = dict(os.environ, HERACLITUS_FETCH_SESSION_CACHE_SLOTS=str(slots))
    broker = subprocess.Popen([BIN, "--storage-path", folder, "--kafka-port", str(KPORT),
                               "--http-port", str(HPORT)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{HPORT}/ready")
                break
            except Exception:  # noqa: BLE001
                time.sleep(0.1)
        a = KafkaAdminClient(bootstrap_servers=B)
        a.create_topics([NewTopic("wide", N, 1)])
        a.close()
        c = KafkaConsumer(bootstrap_servers=B, enable_auto_commit=False, fetch_max_wait_ms=100)
        c.assign([TopicPartition("wide", i) for i in range(N)])
        c.seek_to_beginning()
        c.poll(timeout_ms=2000)
        out = {}
        for phase in ("idle", "busy"):
            stop = threading.Event()
            producer = None
            if phase == "busy":
                def produce():
                    p = KafkaProducer(bootstrap_servers=B, linger_ms=5)
                    i = 0
                    while not stop.is_set():
                        p.send("wide", value=b"x" * 100, partition=i % N)
                        i += 1
                        time.sleep(0.005)
                    p.close()
                producer = threading.Thread(target=produce)
                producer.start()
            f0, c0, t0 = fetches(), cpu_seconds(broker.pid), time.time()
            while time.time() - t0 < SECONDS:
                c.poll(timeout_ms=200)
            f1, c1 = fetches(), cpu_seconds(broker.pid)
            stop.set()
            if producer:
                producer.join()
            out[phase] = ((c1 - c0) * 1000 / max(f1 - f0, 1), f1 - f0)
        c.close()
        return out
    finally:
        broker.terminate()
        broker.wait()


for slots, label in ((0, "without sessions"), (1000, "with sessions")):
    r = run(slots)
    print(f"{label:17}: idle {r['idle'][0]:.2f} ms CPU/fetch ({r['idle'][1]:.0f} fetches), "
          f"busy {r['busy'][0]:.2f} ms CPU/fetch ({r['busy'][1]:.0f} fetches)", flush=True)
