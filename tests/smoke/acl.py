"""ACL smoke: confluent-kafka's AdminClient manages ACLs, producers and consumers are refused
and then allowed with Kafka's errors, kafka-python's admin client reads them back.

Usage: python acl.py BOOTSTRAP   (broker started with SASL/PLAIN users admin/admin-pw,
alice/alice-pw, authorization.enabled and super user User:admin; see .ci/run)
"""
import sys
import time
import uuid

BOOTSTRAP = sys.argv[1]
results = []


def check(name, fn):
    try:
        fn()
        results.append(True)
        print(f"PASS {name}", flush=True)
    except Exception as e:  # noqa: BLE001
        results.append(False)
        print(f"FAIL {name}: {e!r}", flush=True)


def conf(user):
    return {"bootstrap.servers": BOOTSTRAP, "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanism": "PLAIN", "sasl.username": user, "sasl.password": f"{user}-pw"}


TOPIC = f"acl-{uuid.uuid4().hex[:8]}"
GROUP = f"acl-group-{uuid.uuid4().hex[:8]}"


def admin_creates_topic():
    from confluent_kafka.admin import AdminClient, NewTopic
    a = AdminClient(conf("admin"))
    for f in a.create_topics([NewTopic(TOPIC, 1)]).values():
        f.result(20)


def produce(user):
    """Delivery errors of one record produced as `user` (empty when delivered)."""
    from confluent_kafka import Producer
    p = Producer(dict(conf(user), **{"message.timeout.ms": 8000, "enable.idempotence": False}))
    errs = []
    p.produce(TOPIC, b"v", on_delivery=lambda e, m: errs.append(e))
    p.flush(15)
    return [e for e in errs if e is not None]


def refused_without_acls():
    from confluent_kafka import KafkaError
    errs = produce("alice")
    assert [e.code() for e in errs] == [KafkaError.TOPIC_AUTHORIZATION_FAILED], errs
    from confluent_kafka.admin import AdminClient
    md = AdminClient(conf("alice")).list_topics(timeout=10)
    assert TOPIC not in md.topics, "a topic alice may not describe is hidden"


def consume_and_create_refused():
    from confluent_kafka import Consumer, KafkaError
    from confluent_kafka.admin import AdminClient, NewTopic
    c = Consumer(dict(conf("alice"), **{"group.id": GROUP, "auto.offset.reset": "earliest"}))
    c.subscribe([TOPIC])
    codes = set()
    deadline = time.time() + 20
    while not codes & {KafkaError.TOPIC_AUTHORIZATION_FAILED,
                       KafkaError.GROUP_AUTHORIZATION_FAILED} and time.time() < deadline:
        m = c.poll(0.5)
        if m is not None and m.error():
            codes.add(m.error().code())
    c.close()
    assert codes & {KafkaError.TOPIC_AUTHORIZATION_FAILED,
                    KafkaError.GROUP_AUTHORIZATION_FAILED}, codes
    a = AdminClient(conf("alice"))
    f = a.create_topics([NewTopic(f"{TOPIC}-mine", 1)])[f"{TOPIC}-mine"]
    try:
        f.result(20)
        raise AssertionError("alice created a topic")
    except AssertionError:
        raise
    except Exception as e:  # noqa: BLE001
        assert e.args[0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, e


def acls_created_and_described():
    from confluent_kafka.admin import (AclBinding, AclBindingFilter, AclOperation,
                                       AclPermissionType, AdminClient, ResourcePatternType,
                                       ResourceType)
    a = AdminClient(conf("admin"))
    bindings = [
        AclBinding(ResourceType.TOPIC, TOPIC, ResourcePatternType.LITERAL, "User:alice", "*",
                   AclOperation.WRITE, AclPermissionType.ALLOW),
        AclBinding(ResourceType.TOPIC, "acl-", ResourcePatternType.PREFIXED, "User:alice", "*",
                   AclOperation.READ, AclPermissionType.ALLOW),
        AclBinding(ResourceType.GROUP, GROUP, ResourcePatternType.LITERAL, "User:alice", "*",
                   AclOperation.READ, AclPermissionType.ALLOW),
    ]
    for f in a.create_acls(bindings).values():
        assert f.result(20) is None
    flt = AclBindingFilter(ResourceType.ANY, None, ResourcePatternType.ANY, "User:alice", None,
                           AclOperation.ANY, AclPermissionType.ANY)
    got = a.describe_acls(flt).result(20)
    assert sorted(map(str, got)) == sorted(map(str, bindings)), got
    # MATCH: what applies to this topic (the literal and the prefixed binding).
    match = AclBindingFilter(ResourceType.TOPIC, TOPIC, ResourcePatternType.MATCH, None, None,
                             AclOperation.ANY, AclPermissionType.ANY)
    assert len(a.describe_acls(match).result(20)) == 2


def allowed_after_acls():
    assert produce("alice") == []
    from confluent_kafka import Consumer
    c = Consumer(dict(conf("alice"), **{"group.id": GROUP, "auto.offset.reset": "earliest",
                                        "enable.auto.commit": False}))
    c.subscribe([TOPIC])
    got = None
    deadline = time.time() + 30
    while got is None and time.time() < deadline:
        m = c.poll(0.5)
        if m is not None and not m.error():
            got = m
    assert got is not None and got.value() == b"v", got
    c.commit(message=got, asynchronous=False)
    c.close()


def deny_overrides():
    from confluent_kafka import KafkaError
    from confluent_kafka.admin import (AclBinding, AclBindingFilter, AclOperation,
                                       AclPermissionType, AdminClient, ResourcePatternType,
                                       ResourceType)
    a = AdminClient(conf("admin"))
    deny = AclBinding(ResourceType.TOPIC, TOPIC[:6], ResourcePatternType.PREFIXED, "User:*", "*",
                      AclOperation.WRITE, AclPermissionType.DENY)
    for f in a.create_acls([deny]).values():
        f.result(20)
    errs = produce("alice")
    assert [e.code() for e in errs] == [KafkaError.TOPIC_AUTHORIZATION_FAILED], errs
    assert produce("admin") == [], "a super user is not subject to DENY"
    undeny = AclBindingFilter(ResourceType.TOPIC, TOPIC[:6], ResourcePatternType.PREFIXED,
                              "User:*", "*", AclOperation.WRITE, AclPermissionType.DENY)
    for f in a.delete_acls([undeny]).values():
        assert len(f.result(20)) == 1
    assert produce("alice") == []


def group_refused():
    from confluent_kafka import Consumer, KafkaError
    c = Consumer(dict(conf("alice"), **{"group.id": GROUP + "-other",
                                        "auto.offset.reset": "earliest"}))
    c.subscribe([TOPIC])
    code = None
    deadline = time.time() + 20
    while code is None and time.time() < deadline:
        m = c.poll(0.5)
        if m is not None and m.error():
            code = m.error().code()
    c.close()
    assert code == KafkaError.GROUP_AUTHORIZATION_FAILED, code


def kafka_python_reads_acls():
    from kafka.admin import (ACLFilter, ACLOperation, ACLPermissionType,
                             ACLResourcePatternType, KafkaAdminClient, ResourcePatternFilter,
                             ResourceType)
    a = KafkaAdminClient(bootstrap_servers=BOOTSTRAP, security_protocol="SASL_PLAINTEXT",
                         sasl_mechanism="PLAIN", sasl_plain_username="admin",
                         sasl_plain_password="admin-pw")
    flt = ACLFilter(principal="User:alice", host="*", operation=ACLOperation.ANY,
                    permission_type=ACLPermissionType.ANY,
                    resource_pattern=ResourcePatternFilter(ResourceType.GROUP, None,
                                                           ACLResourcePatternType.ANY))
    acls, err = a.describe_acls(flt)
    assert err.errno == 0 and len(acls) == 1, (acls, err)
    a.close()
    # alice may not describe ACLs (librdkafka 2.12 drops DescribeAcls' top-level error code,
    # so this is checked with kafka-python).
    b = KafkaAdminClient(bootstrap_servers=BOOTSTRAP, security_protocol="SASL_PLAINTEXT",
                         sasl_mechanism="PLAIN", sasl_plain_username="alice",
                         sasl_plain_password="alice-pw")
    try:
        acls, err = b.describe_acls(flt)
        raise AssertionError(f"alice described ACLs: {acls} {err}")
    except AssertionError:
        raise
    except Exception as e:  # noqa: BLE001
        assert "ClusterAuthorizationFailed" in type(e).__name__ + str(e), repr(e)
    b.close()


def deleted_and_refused_again():
    from confluent_kafka import KafkaError
    from confluent_kafka.admin import (AclBindingFilter, AclOperation, AclPermissionType,
                                       AdminClient, ResourcePatternType, ResourceType)
    a = AdminClient(conf("admin"))
    flt = AclBindingFilter(ResourceType.TOPIC, None, ResourcePatternType.ANY, "User:alice",
                           None, AclOperation.ANY, AclPermissionType.ANY)
    deleted = [f.result(20) for f in a.delete_acls([flt]).values()]
    assert len(deleted[0]) == 2, deleted
    errs = produce("alice")
    assert [e.code() for e in errs] == [KafkaError.TOPIC_AUTHORIZATION_FAILED], errs


check("admin creates a topic", admin_creates_topic)
check("confluent-kafka producer refused without ACLs, topic hidden", refused_without_acls)
check("consumer and topic creation refused without ACLs", consume_and_create_refused)
check("confluent-kafka AdminClient create/describe ACLs (ANY, MATCH)", acls_created_and_described)
check("producer and consumer group allowed once granted (PREFIXED READ)", allowed_after_acls)
check("a DENY overrides the ALLOW (not for the super user), removed again", deny_overrides)
check("another group refused with GROUP_AUTHORIZATION_FAILED", group_refused)
check("kafka-python describe_acls (admin allowed, alice refused)", kafka_python_reads_acls)
check("delete_acls, then refused again", deleted_and_refused_again)
print(f"acl smoke: {sum(results)}/{len(results)} passed")
sys.exit(0 if all(results) else 1)
