"""The KIP-848 consumer group protocol with confluent-kafka (group.protocol=consumer).

Usage: python consumer_protocol.py BOOTSTRAP   (standalone broker or a cluster's bootstrap list)
Also group configs (GROUP config resource) through the AdminClient. Prints PASS/FAIL per
check; the last line is 'smoke: N passed, N failed' (exit 1 on failure).
"""
import sys
import time
import traceback
import uuid

from confluent_kafka import (Consumer, ConsumerGroupState, ConsumerGroupType, KafkaError,
                             KafkaException, Producer)
from confluent_kafka.admin import (AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource,
                                  ConfigSource, NewTopic, ResourceType)

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


def name(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def create(admin, topic, partitions):
    for f in admin.create_topics([NewTopic(topic, partitions, 1)]).values():
        f.result()
    # Wait until the topic is visible (in cluster mode, on every broker).
    deadline = time.time() + 20
    while time.time() < deadline:
        md = admin.list_topics(topic, timeout=5)
        if topic in md.topics and len(md.topics[topic].partitions) == partitions:
            return
        time.sleep(0.2)
    raise AssertionError(f"{topic} not visible")


def produce(topic, partitions, start, n):
    p = Producer({"bootstrap.servers": BOOTSTRAP, "linger.ms": 5})
    for i in range(start, start + n):
        p.produce(topic, value=f"{topic}-{i}".encode(), partition=i % partitions)
    assert p.flush(30) == 0


def consumer(group, **extra):
    conf = {
        "bootstrap.servers": BOOTSTRAP,
        "group.id": group,
        "group.protocol": "consumer",
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "topic.metadata.refresh.interval.ms": 1000,
    }
    conf.update(extra)
    return Consumer(conf)


def classic_consumer(group):
    """A classic-protocol member (librdkafka's default eager range assignor)."""
    return consumer(group, **{"group.protocol": "classic", "session.timeout.ms": 10000,
                              "heartbeat.interval.ms": 500})


def commit(c, m):
    """Commit one record; a commit racing the member's move to a new epoch is refused with
    STALE_MEMBER_EPOCH (as Kafka refuses it): retry once the next heartbeat brought it."""
    deadline = time.time() + 10
    while True:
        try:
            c.commit(message=m, asynchronous=False)
            return
        except KafkaException as e:
            if e.args[0].code() != KafkaError.STALE_MEMBER_EPOCH or time.time() > deadline:
                raise
            time.sleep(0.05)


def consume(consumers, seen, want, timeout=90):
    """Poll all consumers (committing each record) until `want` distinct values were seen."""
    deadline = time.time() + timeout
    while len(seen) < want and time.time() < deadline:
        for c in consumers:
            m = c.poll(0.05)
            if m is None or m.error():
                continue
            v = m.value().decode()
            seen[v] = seen.get(v, 0) + 1
            commit(c, m)


def assignment(c):
    return sorted(tp.partition for tp in c.assignment())


def settle(consumers, per_member, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if all(len(c.assignment()) == per_member for c in consumers):
            return
        for c in consumers:
            c.poll(0.05)
    raise AssertionError(f"not balanced: {[assignment(c) for c in consumers]}")


@check
def three_members_share_six_partitions_and_one_leaves():
    admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
    topic, group = name("cp"), name("g-cp")
    create(admin, topic, 6)
    cs = [consumer(group) for _ in range(3)]
    for c in cs:
        c.subscribe([topic])
    settle(cs, 2)
    produce(topic, 6, 0, 600)
    seen = {}
    consume(cs, seen, 600)
    assert len(seen) == 600, len(seen)
    assert all(n == 1 for n in seen.values()), "a record delivered twice"
    before = [set(assignment(c)) for c in cs]
    assert set().union(*before) == set(range(6)), before
    d = admin.describe_consumer_groups([group])[group].result()
    assert d.type == ConsumerGroupType.CONSUMER, d.type
    assert d.state == ConsumerGroupState.STABLE, d.state
    assert len(d.members) == 3
    listed = {g.group_id: g for g in admin.list_consumer_groups().result().valid}
    assert listed[group].type == ConsumerGroupType.CONSUMER
    # One member leaves while records keep coming: the other two take over its partitions
    # and keep theirs (no stop-the-world), and nothing is lost or delivered twice.
    cs[2].close()
    produce(topic, 6, 600, 300)
    consume(cs[:2], seen, 900)
    settle(cs[:2], 3)
    assert len(seen) == 900, len(seen)
    assert all(n == 1 for n in seen.values()), "a record delivered twice"
    for i, c in enumerate(cs[:2]):
        assert before[i] <= set(assignment(c)), (before[i], assignment(c))
    for c in cs[:2]:
        c.close()


@check
def regex_subscription_picks_up_a_later_topic():
    admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
    prefix = name("rx")
    first, later = f"{prefix}-a", f"{prefix}-b"
    create(admin, first, 2)
    produce(first, 2, 0, 20)
    c = consumer(name("g-rx"))
    c.subscribe([f"^{prefix}-.*"])
    seen = {}
    consume([c], seen, 20)
    assert len(seen) == 20, len(seen)
    create(admin, later, 3)
    produce(later, 3, 0, 30)
    consume([c], seen, 50)
    assert len(seen) == 50, f"{len(seen)} records: the later topic was not picked up"
    c.close()


@check
def committed_offsets_resume_a_new_member():
    admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
    topic, group = name("cr"), name("g-cr")
    create(admin, topic, 2)
    produce(topic, 2, 0, 100)
    c = consumer(group)
    c.subscribe([topic])
    seen = {}
    consume([c], seen, 100)
    c.close()
    produce(topic, 2, 100, 50)
    c = consumer(group)
    c.subscribe([topic])
    rest = {}
    consume([c], rest, 50)
    c.close()
    assert sorted(rest) == sorted(f"{topic}-{i}" for i in range(100, 150)), len(rest)


@check
def live_classic_group_upgraded_member_by_member():
    """Three classic (eager range) consumers; one by one, a consumer-protocol member joins and
    a classic one leaves. Records produced between the steps are each consumed exactly once."""
    admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
    topic, group = name("mig"), name("g-mig")
    create(admin, topic, 6)
    classic = [classic_consumer(group) for _ in range(3)]
    for c in classic:
        c.subscribe([topic])
    settle(classic, 2)
    seen, sent = {}, 0
    members = list(classic)
    for step in range(3):
        produce(topic, 6, sent, 120)
        sent += 120
        consume(members, seen, sent)
        assert len(seen) == sent, (step, len(seen), sent)
        new = consumer(group)
        new.subscribe([topic])
        members.append(new)
        old = members.pop(0)
        old.close()
        deadline = time.time() + 60
        while time.time() < deadline:
            for c in members:
                c.poll(0.05)
            if sorted(p for c in members for p in assignment(c)) == list(range(6)):
                break
        assert sorted(p for c in members for p in assignment(c)) == list(range(6)), \
            [assignment(c) for c in members]
    produce(topic, 6, sent, 120)
    sent += 120
    consume(members, seen, sent)
    assert len(seen) == sent, (len(seen), sent)
    assert all(n == 1 for n in seen.values()), "a record delivered twice"
    d = admin.describe_consumer_groups([group])[group].result()
    assert d.type == ConsumerGroupType.CONSUMER, d.type
    assert len(d.members) == 3, len(d.members)
    for c in members:
        c.close()


@check
def mixed_group_turns_classic_when_its_last_consumer_member_leaves():
    admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
    topic, group = name("down"), name("g-down")
    create(admin, topic, 6)
    classic = [classic_consumer(group) for _ in range(2)]
    for c in classic:
        c.subscribe([topic])
    settle(classic, 3)
    new = consumer(group)
    new.subscribe([topic])
    settle(classic + [new], 2)
    d = admin.describe_consumer_groups([group])[group].result()
    assert d.type == ConsumerGroupType.CONSUMER, d.type
    produce(topic, 6, 0, 120)
    seen = {}
    consume(classic + [new], seen, 120)
    new.close()
    settle(classic, 3)
    produce(topic, 6, 120, 120)
    consume(classic, seen, 240)
    assert len(seen) == 240 and all(n == 1 for n in seen.values()), len(seen)
    listed = {g.group_id: g for g in admin.list_consumer_groups().result().valid}
    assert listed[group].type == ConsumerGroupType.CLASSIC, listed[group].type
    for c in classic:
        c.close()


@check
def group_configs_are_set_described_and_validated():
    admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
    group = name("g-cfg")

    def alter(key, value):
        entry = ConfigEntry(key, value, incremental_operation=AlterConfigOpType.SET)
        res = ConfigResource(ResourceType.GROUP, group, incremental_configs=[entry])
        for f in admin.incremental_alter_configs([res]).values():
            f.result(timeout=10)

    def described():
        fs = admin.describe_configs([ConfigResource(ResourceType.GROUP, group)])
        return list(fs.values())[0].result(timeout=10)

    def source(entry):
        return getattr(entry.source, "value", entry.source)

    before = described()["consumer.heartbeat.interval.ms"]
    assert source(before) == ConfigSource.DEFAULT_CONFIG.value, before
    alter("consumer.heartbeat.interval.ms", "6000")
    after = described()["consumer.heartbeat.interval.ms"]
    assert (after.value, source(after)) == ("6000", ConfigSource.GROUP_CONFIG.value), after
    try:
        alter("consumer.session.timeout.ms", "1000")
        raise AssertionError("an out-of-range session timeout was accepted")
    except KafkaException as e:
        err = e.args[0]
        assert err.code() == KafkaError.INVALID_CONFIG, err
        assert "must be in the range" in err.str(), err


failed = [n for n, e in results if e is not None]
print(f"smoke: {len(results) - len(failed)} passed, {len(failed)} failed")
sys.exit(1 if failed else 0)
