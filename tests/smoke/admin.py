"""Admin smoke with confluent-kafka's AdminClient: describe/alter configs, create partitions,
delete records, and an altered retention.ms that really deletes old segments.

Usage: python admin.py BOOTSTRAP  (broker started with HERACLITUS_RETENTION__CHECK_INTERVAL_MS=200)
"""
import sys
import time
import uuid

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import (AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource,
                                   NewPartitions, NewTopic)

B = sys.argv[1]
a = AdminClient({"bootstrap.servers": B})
results = []


def check(name, fn):
    try:
        fn()
        results.append(True)
        print(f"PASS {name}", flush=True)
    except Exception as e:  # noqa: BLE001
        results.append(False)
        print(f"FAIL {name}: {e!r}", flush=True)


def new_topic(parts=1, config=None):
    t = f"adm-{uuid.uuid4().hex[:8]}"
    for f in a.create_topics([NewTopic(t, parts, 1, config=config or {})]).values():
        f.result(15)
    return t


def describe(t):
    res = ConfigResource(ConfigResource.Type.TOPIC, t)
    return a.describe_configs([res])[res].result(15)


def describe_and_alter():
    t = new_topic(config={"retention.ms": "123456"})
    cfg = describe(t)
    assert cfg["retention.ms"].value == "123456", cfg["retention.ms"]
    assert cfg["cleanup.policy"].value == "delete"
    res = ConfigResource(ConfigResource.Type.TOPIC, t,
                         incremental_configs=[ConfigEntry("max.message.bytes", "2048",
                                                          incremental_operation=AlterConfigOpType.SET)])
    a.incremental_alter_configs([res])[res].result(15)
    cfg = describe(t)
    assert cfg["max.message.bytes"].value == "2048"
    assert cfg["retention.ms"].value == "123456", "incremental keeps other configs"
    bad = ConfigResource(ConfigResource.Type.TOPIC, t,
                         incremental_configs=[ConfigEntry("no.such.config", "1",
                                                          incremental_operation=AlterConfigOpType.SET)])
    try:
        a.incremental_alter_configs([bad])[bad].result(15)
        raise AssertionError("unknown config accepted")
    except Exception as e:  # noqa: BLE001
        assert "INVALID_CONFIG" in str(e) or "unknown topic config" in str(e), e
    # max.message.bytes is enforced on produce.
    p = Producer({"bootstrap.servers": B, "message.max.bytes": 100000})
    errs = []
    p.produce(t, b"x" * 10000, on_delivery=lambda e, m: errs.append(e))
    p.flush(15)
    assert errs and errs[0] is not None and "MSG_SIZE_TOO_LARGE" in errs[0].name(), errs
    broker = ConfigResource(ConfigResource.Type.BROKER, "1")
    bc = a.describe_configs([broker])[broker].result(15)
    assert bc["num.partitions"].is_read_only


def create_partitions():
    t = new_topic(2)
    a.create_partitions([NewPartitions(t, 5)])[t].result(15)
    md = a.list_topics(t, timeout=10)
    assert len(md.topics[t].partitions) == 5
    try:
        a.create_partitions([NewPartitions(t, 3)])[t].result(15)
        raise AssertionError("shrinking accepted")
    except Exception as e:  # noqa: BLE001
        assert "INVALID_PARTITIONS" in str(e), e


def delete_records():
    t = new_topic()
    p = Producer({"bootstrap.servers": B})
    for i in range(50):
        p.produce(t, f"r{i}".encode(), partition=0)
        p.flush(10)
    res = a.delete_records([TopicPartition(t, 0, 20)])
    low = list(res.values())[0].result(15)
    assert low.low_watermark == 20, low
    c = Consumer({"bootstrap.servers": B, "group.id": t})
    lo, hi = c.get_watermark_offsets(TopicPartition(t, 0), timeout=10)
    c.close()
    assert (lo, hi) == (20, 50), (lo, hi)


def altered_retention_deletes_old_segments():
    t = new_topic()
    p = Producer({"bootstrap.servers": B})
    old = int(time.time() * 1000) - 3_600_000
    for i in range(10):
        p.produce(t, f"old{i}".encode(), partition=0, timestamp=old + i)
        p.flush(10)  # one segment per flush
    c = Consumer({"bootstrap.servers": B, "group.id": t})
    lo, _ = c.get_watermark_offsets(TopicPartition(t, 0), timeout=10)
    assert lo == 0
    res = ConfigResource(ConfigResource.Type.TOPIC, t,
                         incremental_configs=[ConfigEntry("retention.ms", "60000",
                                                          incremental_operation=AlterConfigOpType.SET)])
    a.incremental_alter_configs([res])[res].result(15)
    deadline = time.time() + 30
    while time.time() < deadline:
        lo, hi = c.get_watermark_offsets(TopicPartition(t, 0), timeout=10, cached=False)
        if lo > 0:
            break
        time.sleep(0.3)
    c.close()
    assert lo == 9 and hi == 10, f"old segments deleted up to the newest: {(lo, hi)}"


check("describe and alter configs", describe_and_alter)
check("create partitions (grow only)", create_partitions)
check("delete records moves the low watermark", delete_records)
check("altered retention.ms deletes old segments", altered_retention_deletes_old_segments)
print(f"admin smoke: {results.count(True)} passed, {results.count(False)} failed")
sys.exit(0 if all(results) else 1)
