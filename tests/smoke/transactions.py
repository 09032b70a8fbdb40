"""Transactions (exactly-once) with real clients against a standalone broker.

Usage: python transactions.py BOOTSTRAP
confluent-kafka: commits and aborts seen by read_committed / read_uncommitted consumers, a
consume-transform-produce loop with send_offsets_to_transaction (deliberate aborts included:
each input record is produced exactly once and the group resumes from the committed offsets),
fencing of a zombie producer; kafka-python and aiokafka transactional producers. Prints
PASS/FAIL per check; the last line is 'smoke: N passed, N failed' (exit 1 on failure).
"""
import asyncio
import sys
import time
import traceback
import uuid

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

BOOTSTRAP = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:9092"
results = []


def check(fn):
    try:
        fn()
        results.append((fn.__name__, None))
        print(f"PASS {fn.__name__}", flush=True)
    except Exception as e:  # noqa: BLE001 - report every failure
        traceback.print_exc()
        results.append((fn.__name__, e))
        print(f"FAIL {fn.__name__}: {e}", flush=True)
    return fn


def new_topic(partitions=2):
    name = "txn-" + uuid.uuid4().hex[:10]
    admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
    admin.create_topics([NewTopic(name, partitions, 1)])[name].result(15)
    return name


def read_all(topic, isolation, partitions=2, timeout=20):
    """Every record of `topic` (values) from the beginning, until EOF on every partition."""
    c = Consumer({
        "bootstrap.servers": BOOTSTRAP,
        "group.id": "reader-" + uuid.uuid4().hex,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "isolation.level": isolation,
        "enable.partition.eof": True,
    })
    c.subscribe([topic])
    out, eof = [], set()
    deadline = time.time() + timeout
    try:
        while time.time() < deadline and len(eof) < partitions:
            m = c.poll(0.5)
            if m is None:
                continue
            if m.error():
                if m.error().code() == KafkaError._PARTITION_EOF:
                    eof.add(m.partition())
                    continue
                raise KafkaException(m.error())
            eof.discard(m.partition())
            out.append(m.value().decode())
    finally:
        c.close()
    assert len(eof) == partitions, f"no EOF on every partition within {timeout} s"
    return out


def producer(txn_id, **extra):
    conf = {"bootstrap.servers": BOOTSTRAP, "transactional.id": txn_id, "linger.ms": 5}
    conf.update(extra)
    p = Producer(conf)
    p.init_transactions(30)
    return p


@check
def commits_and_aborts_by_isolation_level():
    topic = new_topic()
    p = producer("commits-" + topic)
    for i, commit in enumerate([True, False, True, False]):
        p.begin_transaction()
        for j in range(25):
            p.produce(topic, value=f"t{i}-{j}", partition=j % 2)
        p.flush(15)
        (p.commit_transaction if commit else p.abort_transaction)(15)
    committed = read_all(topic, "read_committed")
    everything = read_all(topic, "read_uncommitted")
    assert sorted(committed) == sorted(f"t{i}-{j}" for i in (0, 2) for j in range(25)), committed
    assert len(everything) == 100, len(everything)


@check
def consume_transform_produce_exactly_once():
    src, dst = new_topic(), new_topic()
    seed = Producer({"bootstrap.servers": BOOTSTRAP})
    for j in range(60):
        seed.produce(src, value=str(j), partition=j % 2)
    seed.flush(15)
    group = "ctp-" + uuid.uuid4().hex
    c_conf = {
        "bootstrap.servers": BOOTSTRAP,
        "group.id": group,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "isolation.level": "read_committed",
    }
    c = Consumer(c_conf)
    c.subscribe([src])
    p = producer("ctp-" + dst)
    done, rounds, aborted = 0, 0, 0
    deadline = time.time() + 60
    while done < 60 and time.time() < deadline:
        msgs = c.consume(10, 1.0)
        msgs = [m for m in msgs if not m.error()]
        if not msgs:
            continue
        p.begin_transaction()
        for m in msgs:
            p.produce(dst, value="out-" + m.value().decode(), partition=m.partition())
        p.send_offsets_to_transaction(c.position(c.assignment()), c.consumer_group_metadata(), 15)
        rounds += 1
        if rounds % 3 == 0:
            # A deliberate abort: the outputs vanish and the group's offsets stay put, so
            # the same inputs are read again.
            p.abort_transaction(15)
            aborted += 1
            c.close()
            c = Consumer(c_conf)
            c.subscribe([src])
            continue
        p.commit_transaction(15)
        done += len(msgs)
    c.close()
    assert aborted > 0
    out = read_all(dst, "read_committed")
    assert sorted(out) == sorted(f"out-{j}" for j in range(60)), (len(out), sorted(out)[:5])
    # The group's committed offsets are at the end of each input partition.
    c = Consumer(c_conf)
    got = c.committed([TopicPartition(src, 0), TopicPartition(src, 1)], 15)
    c.close()
    assert [tp.offset for tp in got] == [30, 30], got


@check
def a_zombie_is_fenced():
    topic = new_topic()
    txn_id = "zombie-" + topic
    p1 = producer(txn_id)
    p1.begin_transaction()
    p1.produce(topic, value="zombie", partition=0)
    p1.flush(15)
    producer(txn_id)  # a new instance: aborts p1's transaction and fences it
    try:
        p1.commit_transaction(15)
        raise AssertionError("the fenced producer committed")
    except KafkaException as e:
        err = e.args[0]
        assert err.fatal() and err.code() == KafkaError._FENCED, err
    assert read_all(topic, "read_committed") == []
    assert read_all(topic, "read_uncommitted") == ["zombie"]


@check
def kafka_python_transactional_producer():
    from kafka import KafkaProducer

    topic = new_topic(1)
    p = KafkaProducer(bootstrap_servers=BOOTSTRAP, transactional_id="kp-" + topic)
    p.init_transactions()
    p.begin_transaction()
    for j in range(5):
        p.send(topic, f"kp-commit-{j}".encode())
    p.commit_transaction()
    p.begin_transaction()
    p.send(topic, b"kp-abort")
    p.abort_transaction()
    p.close()
    assert read_all(topic, "read_committed", 1) == [f"kp-commit-{j}" for j in range(5)]


@check
def aiokafka_transactional_producer():
    from aiokafka import AIOKafkaProducer

    topic = new_topic(1)

    async def run():
        p = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP, transactional_id="aio-" + topic)
        await p.start()
        try:
            async with p.transaction():
                for j in range(5):
                    await p.send_and_wait(topic, f"aio-{j}".encode())
            await p.begin_transaction()
            await p.send_and_wait(topic, b"aio-abort")
            await p.abort_transaction()
        finally:
            await p.stop()

    asyncio.run(run())
    assert read_all(topic, "read_committed", 1) == [f"aio-{j}" for j in range(5)]


failed = [n for n, e in results if e is not None]
print(f"smoke: {len(results) - len(failed)} passed, {len(failed)} failed")
sys.exit(1 if failed else 0)
