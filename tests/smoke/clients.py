"""Smoke tests with real Python Kafka clients against a running broker.

Usage: python clients.py BOOTSTRAP   (e.g. 127.0.0.1:9092)
Each check produces records, reads them back byte-identical (assign-based consumers), and
prints PASS/FAIL; the last line is 'smoke: N passed, N failed'.
"""
import asyncio
import sys
import time
import traceback
import uuid

BOOTSTRAP = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:9092"
results = []


def check(fn):
    name = fn.__name__
    try:
        fn()
        results.append((name, None))
        print(f"PASS {name}", flush=True)
    except Exception as e:  # noqa: BLE001 - report every failure
        traceback.print_exc()
        results.append((name, e))
        print(f"FAIL {name}: {e}", flush=True)
    return fn


def topic_name(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def expected(i):
    value = None if i % 9 == 0 else (b"" if i % 9 == 1 else f"value-{i}".encode() * (i % 5 + 1))
    # Python clients refuse a record with neither key nor value.
    key = None if (i % 4 == 0 and value is not None) else f"k{i}".encode()
    headers = [("h", f"{i}".encode()), ("h", b"dup")] if i % 3 == 0 else []
    return key, value, headers


N = 300
# kafka-python 3.x enables idempotence by default: keep it on (InitProducerId is served).
IDEMPOTENCE = True


@check
def kafka_python_produce_consume():
    from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
    from kafka.admin import NewTopic

    t = topic_name("kp")
    admin = KafkaAdminClient(bootstrap_servers=BOOTSTRAP)
    admin.create_topics([NewTopic(t, 3, 1)])
    admin.close()
    p = KafkaProducer(bootstrap_servers=BOOTSTRAP, acks="all", linger_ms=5,
                      enable_idempotence=IDEMPOTENCE)
    for i in range(N):
        k, v, h = expected(i)
        p.send(t, key=k, value=v, headers=h, partition=i % 3)
    p.flush(30)
    p.close()
    c = KafkaConsumer(bootstrap_servers=BOOTSTRAP, enable_auto_commit=False, consumer_timeout_ms=10000)
    tps = [TopicPartition(t, i) for i in range(3)]
    c.assign(tps)
    c.seek_to_beginning(*tps)
    got = {}
    for m in c:
        got[(m.partition, m.offset)] = (m.key, m.value, list(m.headers))
        if len(got) == N:
            break
    c.close()
    assert len(got) == N, f"consumed {len(got)} of {N}"
    for i in range(N):
        k, v, h = expected(i)
        gk, gv, gh = got[(i % 3, i // 3)]
        assert (gk, gv) == (k, v), (i, gk, gv, k, v)
        assert [(a, bytes(b) if b is not None else None) for a, b in gh] == h, (i, gh, h)


@check
def confluent_kafka_produce_consume():
    from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition
    from confluent_kafka.admin import AdminClient, NewTopic

    t = topic_name("ck")
    a = AdminClient({"bootstrap.servers": BOOTSTRAP})
    for f in a.create_topics([NewTopic(t, 2, 1)]).values():
        f.result(15)
    p = Producer({"bootstrap.servers": BOOTSTRAP, "acks": "all", "linger.ms": 5})
    errors = []
    for i in range(N):
        k, v, h = expected(i)
        p.produce(t, key=k, value=v, headers=h or None, partition=i % 2,
                  on_delivery=lambda err, msg: err and errors.append(err))
        p.poll(0)
    assert p.flush(30) == 0
    assert not errors, errors
    c = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": "assign-only",
                  "enable.auto.commit": False})
    c.assign([TopicPartition(t, i, OFFSET_BEGINNING) for i in range(2)])
    got = {}
    deadline = time.time() + 30
    while len(got) < N and time.time() < deadline:
        m = c.poll(1.0)
        if m is None or m.error():
            continue
        got[(m.partition(), m.offset())] = (m.key(), m.value(), m.headers() or [])
    c.close()
    assert len(got) == N, f"consumed {len(got)} of {N}"
    for i in range(N):
        k, v, h = expected(i)
        assert got[(i % 2, i // 2)] == (k, v, h), (i, got[(i % 2, i // 2)], (k, v, h))


@check
def aiokafka_produce_consume():
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

    t = topic_name("aio")

    async def run():
        p = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP, acks="all")
        await p.start()
        try:
            for i in range(N):
                k, v, h = expected(i)
                await p.send(t, key=k, value=v, headers=h, partition=0)
            await p.flush()
        finally:
            await p.stop()
        c = AIOKafkaConsumer(bootstrap_servers=BOOTSTRAP, enable_auto_commit=False,
                             auto_offset_reset="earliest")
        await c.start()
        got = []
        try:
            tp = TopicPartition(t, 0)
            c.assign([tp])
            await c.seek_to_beginning(tp)
            deadline = time.time() + 30
            while len(got) < N and time.time() < deadline:
                batch = await c.getmany(timeout_ms=1000)
                for msgs in batch.values():
                    got.extend(msgs)
        finally:
            await c.stop()
        assert len(got) == N, f"consumed {len(got)} of {N}"
        for i, m in enumerate(got):
            k, v, h = expected(i)
            assert m.offset == i
            assert (m.key, m.value, list(m.headers)) == (k, v, h), (i, m)

    asyncio.run(run())


@check
def confluent_kafka_group_consumer():
    from confluent_kafka import Consumer, Producer
    from confluent_kafka.admin import AdminClient, NewTopic

    t = topic_name("ckg")
    a = AdminClient({"bootstrap.servers": BOOTSTRAP})
    for f in a.create_topics([NewTopic(t, 4, 1)]).values():
        f.result(15)
    p = Producer({"bootstrap.servers": BOOTSTRAP})
    for i in range(200):
        p.produce(t, value=f"g{i}".encode(), partition=i % 4)
    assert p.flush(30) == 0
    group = topic_name("group")
    conf = {"bootstrap.servers": BOOTSTRAP, "group.id": group, "auto.offset.reset": "earliest",
            "enable.auto.commit": False, "session.timeout.ms": 6000}
    cs = [Consumer(conf), Consumer(conf)]
    for c in cs:
        c.subscribe([t])
    got = set()
    deadline = time.time() + 60
    while len(got) < 200 and time.time() < deadline:
        for c in cs:
            m = c.poll(0.2)
            if m is None or m.error():
                continue
            assert (m.partition(), m.offset()) not in got, "delivered twice"
            got.add((m.partition(), m.offset()))
            c.commit(message=m, asynchronous=False)
    assert len(got) == 200, f"consumed {len(got)} of 200"
    sizes = sorted(len(c.assignment()) for c in cs)
    assert sizes == [2, 2], sizes
    for c in cs:
        c.close()
    for i in range(10):
        p.produce(t, value=f"late{i}".encode(), partition=i % 4)
    p.flush(30)
    c = Consumer(conf)
    c.subscribe([t])
    late = []
    deadline = time.time() + 30
    while len(late) < 10 and time.time() < deadline:
        m = c.poll(0.5)
        if m is not None and not m.error():
            late.append(m.value())
    c.close()
    assert sorted(late) == sorted(f"late{i}".encode() for i in range(10)), late


@check
def kafka_python_group_consumer():
    from kafka import KafkaConsumer, KafkaProducer

    t = topic_name("kpg")
    group = topic_name("kpgroup")
    p = KafkaProducer(bootstrap_servers=BOOTSTRAP, enable_idempotence=IDEMPOTENCE)
    for i in range(50):
        p.send(t, f"v{i}".encode())
    p.flush(30)

    def consume(n):
        c = KafkaConsumer(t, bootstrap_servers=BOOTSTRAP, group_id=group,
                          auto_offset_reset="earliest", enable_auto_commit=False,
                          consumer_timeout_ms=15000)
        out = []
        for m in c:
            out.append(m.value)
            if len(out) == n:
                break
        c.commit()
        c.close()
        return out

    first = consume(50)
    assert first == [f"v{i}".encode() for i in range(50)], first[:5]
    for i in range(5):
        p.send(t, f"w{i}".encode())
    p.flush(30)
    second = consume(5)
    assert second == [f"w{i}".encode() for i in range(5)], second


@check
def every_codec_with_confluent_kafka_and_kafka_python():
    from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition
    from kafka import KafkaConsumer, KafkaProducer
    from kafka import TopicPartition as KTP

    for codec in ("gzip", "snappy", "lz4", "zstd"):
        t = topic_name(f"codec-{codec}")
        p = Producer({"bootstrap.servers": BOOTSTRAP, "compression.type": codec,
                      "linger.ms": 20})
        errors = []
        for i in range(200):
            p.produce(t, value=(f"{codec}-{i}-" + "z" * 200).encode(), partition=0,
                      on_delivery=lambda err, msg: err and errors.append(err))
        assert p.flush(60) == 0
        assert not errors, (codec, errors[:3])
        c = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": t, "enable.auto.commit": False})
        c.assign([TopicPartition(t, 0, OFFSET_BEGINNING)])
        got = []
        consumer_errors = []
        deadline = time.time() + 90
        while len(got) < 200 and time.time() < deadline:
            m = c.poll(0.5)
            if m is None:
                continue
            if m.error():
                consumer_errors.append(str(m.error()))
            else:
                got.append(m.value())
        c.close()
        want = [(f"{codec}-{i}-" + "z" * 200).encode() for i in range(200)]
        first = next((i for i, (a, b) in enumerate(zip(got, want)) if a != b), None)
        assert got == want, (codec, len(got), first, consumer_errors[:3])
    for codec in ("gzip", "lz4", "zstd", "snappy"):
        t = topic_name(f"kp-{codec}")
        try:
            p = KafkaProducer(bootstrap_servers=BOOTSTRAP, compression_type=codec, linger_ms=20)
        except Exception as e:  # noqa: BLE001
            raise AssertionError(f"kafka-python cannot use {codec}: {e}") from e
        for i in range(100):
            p.send(t, f"{codec}{i}".encode(), partition=0)
        p.flush(30)
        p.close()
        c = KafkaConsumer(bootstrap_servers=BOOTSTRAP, enable_auto_commit=False,
                          consumer_timeout_ms=10000)
        c.assign([KTP(t, 0)])
        c.seek_to_beginning(KTP(t, 0))
        got = [m.value for m in c][:100]
        c.close()
        assert got == [f"{codec}{i}".encode() for i in range(100)], codec



@check
def kafka_python_reads_a_compacted_topic_across_offset_gaps():
    """Once the broker cleaned a compacted topic (default timings: ~10-30 s), a consumer from
    the beginning gets the newest value of each key at its original offset, skipping the
    offsets cleaning removed."""
    from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition as KTP
    from kafka.admin import NewTopic

    t = topic_name("compacted")
    admin = KafkaAdminClient(bootstrap_servers=BOOTSTRAP)
    admin.create_topics([NewTopic(t, 1, 1, topic_configs={"cleanup.policy": "compact"})])
    admin.close()
    p = KafkaProducer(bootstrap_servers=BOOTSTRAP, acks="all", linger_ms=5)
    newest = {}
    for version in range(4):
        futures = [(k, p.send(t, key=f"k{k}".encode(), value=f"v{version}-{k}".encode(),
                              partition=0)) for k in range(50)]
        for k, f in futures:
            newest[f"k{k}".encode()] = (f.get(30).offset, f"v{version}-{k}".encode())
    p.close()
    want = sorted((off, k, v) for k, (off, v) in newest.items())
    deadline = time.time() + 120
    while True:
        c = KafkaConsumer(bootstrap_servers=BOOTSTRAP, enable_auto_commit=False,
                          consumer_timeout_ms=3000)
        c.assign([KTP(t, 0)])
        c.seek_to_beginning(KTP(t, 0))
        got = sorted((m.offset, m.key, m.value) for m in c)
        c.close()
        if got == want:
            break
        assert time.time() < deadline, f"not compacted: {len(got)} records"
        time.sleep(2)

@check
def clients_see_a_kafka_4_broker():
    # kafka-python infers the broker version from ApiVersions (ListOffsets v10 → 4.0,
    # Produce v13 → 4.1); aiokafka asserts null error messages on CreateTopics success.
    from kafka import KafkaAdminClient
    from kafka import KafkaConsumer, KafkaProducer
    a = KafkaAdminClient(bootstrap_servers=BOOTSTRAP)
    version = a._client.check_version()
    a.close()
    assert version >= (4, 0), version
    # kafka-python now speaks Produce v13 (topic ids) and Fetch v18: a round trip.
    t = topic_name("kp4")
    p = KafkaProducer(bootstrap_servers=BOOTSTRAP, acks="all")
    for i in range(5):
        p.send(t, value=f"v{i}".encode(), partition=0).get(30)
    p.close()
    from kafka import TopicPartition as KTP
    c = KafkaConsumer(bootstrap_servers=BOOTSTRAP, enable_auto_commit=False,
                      consumer_timeout_ms=3000)
    c.assign([KTP(t, 0)])
    c.seek_to_beginning(KTP(t, 0))
    got = [m.value for m in c]
    c.close()
    assert got == [f"v{i}".encode() for i in range(5)], got

    from aiokafka.admin import AIOKafkaAdminClient, NewTopic as AioNewTopic

    async def run():
        adm = AIOKafkaAdminClient(bootstrap_servers=BOOTSTRAP)
        await adm.start()
        try:
            name = topic_name("aio-null")
            r = await adm.create_topics([AioNewTopic(name, 1, 1)])
            assert [tuple(e) for e in r.topic_errors] == [(name, 0, None)], r
            r = await adm.delete_topics([name])
            assert [tuple(e) for e in r.topic_error_codes] == [(name, 0)], r
        finally:
            await adm.close()
    asyncio.run(run())


@check
def consumer_offsets_is_listed_as_internal():
    from confluent_kafka import TopicCollection
    from confluent_kafka.admin import AdminClient
    a = AdminClient({"bootstrap.servers": BOOTSTRAP})
    d = a.describe_topics(TopicCollection(["__consumer_offsets"]))["__consumer_offsets"].result(15)
    assert d.is_internal and len(d.partitions) >= 1, d
    assert "__consumer_offsets" in a.list_topics(timeout=15).topics
    # kafka-python's consumer hides internal topics from topics() (exclude_internal_topics).
    from kafka import KafkaConsumer
    c = KafkaConsumer(bootstrap_servers=BOOTSTRAP)
    try:
        assert "__consumer_offsets" not in c.topics()
    finally:
        c.close()


passed = sum(1 for _, e in results if e is None)


failed = len(results) - passed
print(f"smoke: {passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
