"""SASL smoke: PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512 with confluent-kafka and kafka-python.

Usage: python sasl.py BOOTSTRAP   (broker started with tests/smoke/sasl-config.sh's config)
Right passwords work end to end; a wrong password and an unknown user fail the same way.
"""
import sys
import time
import uuid

BOOTSTRAP = sys.argv[1]
USERS = {"PLAIN": ("alice", "alice-pw"), "SCRAM-SHA-256": ("sam", "sam-pw"),
         "SCRAM-SHA-512": ("sue", "sue-pw")}
results = []


def check(name, fn):
    try:
        fn()
        results.append(True)
        print(f"PASS {name}", flush=True)
    except Exception as e:  # noqa: BLE001
        results.append(False)
        print(f"FAIL {name}: {e!r}", flush=True)


def ck_roundtrip(mech, user, pw):
    from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition
    conf = {"bootstrap.servers": BOOTSTRAP, "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanism": mech, "sasl.username": user, "sasl.password": pw}
    t = f"sasl-{uuid.uuid4().hex[:8]}"
    p = Producer(dict(conf, **{"acks": "all"}))
    errs = []
    for i in range(20):
        p.produce(t, f"v{i}".encode(), on_delivery=lambda e, m: e and errs.append(e))
    assert p.flush(20) == 0 and not errs, errs
    c = Consumer(dict(conf, **{"group.id": t, "auto.offset.reset": "earliest"}))
    c.assign([TopicPartition(t, 0, OFFSET_BEGINNING)])
    got = []
    deadline = time.time() + 20
    while len(got) < 20 and time.time() < deadline:
        m = c.poll(0.5)
        if m is not None and not m.error():
            got.append(m.value())
    c.close()
    assert got == [f"v{i}".encode() for i in range(20)], got


def ck_fails(mech, user, pw):
    """Returns the error string librdkafka reports for a failed authentication."""
    from confluent_kafka.admin import AdminClient
    errors = []
    a = AdminClient({"bootstrap.servers": BOOTSTRAP, "security.protocol": "SASL_PLAINTEXT",
                     "sasl.mechanism": mech, "sasl.username": user, "sasl.password": pw,
                     "error_cb": lambda e: errors.append(str(e)), "log_level": 0,
                     "reconnect.backoff.ms": 1000})
    try:
        a.list_topics(timeout=5)
        raise AssertionError("metadata succeeded with bad credentials")
    except AssertionError:
        raise
    except Exception:  # noqa: BLE001 - the expected failure
        pass
    deadline = time.time() + 5
    while not any("Authentication failed" in e for e in errors) and time.time() < deadline:
        a.poll(0.2)
    auth = [e for e in errors if "Authentication failed" in e]
    assert auth, errors
    # Compare only the broker's message (librdkafka adds timings like "(after 4ms in state …)").
    msg = auth[0].split("SASL authentication error:", 1)[-1]
    return msg.split(" (after", 1)[0].strip()


def kp_roundtrip(mech, user, pw):
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition
    conf = dict(bootstrap_servers=BOOTSTRAP, security_protocol="SASL_PLAINTEXT",
                sasl_mechanism=mech, sasl_plain_username=user, sasl_plain_password=pw)
    t = f"kpsasl-{uuid.uuid4().hex[:8]}"
    p = KafkaProducer(acks="all", **conf)
    for i in range(10):
        p.send(t, f"k{i}".encode())
    p.flush(20)
    p.close()
    c = KafkaConsumer(enable_auto_commit=False, consumer_timeout_ms=10000, **conf)
    tp = TopicPartition(t, 0)
    c.assign([tp])
    c.seek_to_beginning(tp)
    got = [m.value for m in c][:10]
    c.close()
    assert got == [f"k{i}".encode() for i in range(10)], got


def kp_fails(mech, user, pw):
    """kafka-python must not get through; returns how it failed (exception type or 'stalled')."""
    import threading
    out = {}

    def attempt():
        from kafka import KafkaAdminClient
        try:
            a = KafkaAdminClient(bootstrap_servers=BOOTSTRAP, security_protocol="SASL_PLAINTEXT",
                                 sasl_mechanism=mech, sasl_plain_username=user,
                                 sasl_plain_password=pw, request_timeout_ms=5000)
            a.list_topics()
            out["result"] = "connected"
        except Exception as e:  # noqa: BLE001 - the expected failure
            out["result"] = type(e).__name__

    t = threading.Thread(target=attempt, daemon=True)
    t.start()
    t.join(30)
    result = out.get("result", "stalled")
    assert result != "connected", "kafka-python connected with bad credentials"
    return result


for mech, (user, pw) in USERS.items():
    check(f"confluent-kafka {mech} right password", lambda: ck_roundtrip(mech, user, pw))
    check(f"kafka-python {mech} right password", lambda: kp_roundtrip(mech, user, pw))

    def same_failure():
        wrong = ck_fails(mech, user, "wrong-password")
        unknown = ck_fails(mech, "nobody", "whatever")
        assert wrong == unknown, (wrong, unknown)
        # kafka-python only has to be refused (it may retry until its own timeout).
        kp_fails(mech, user, "wrong-password")
        kp_fails(mech, "nobody", "whatever")
    check(f"{mech}: wrong password and unknown user fail the same way", same_failure)

def managed_scram_credentials():
    # AlterUserScramCredentials through confluent-kafka's AdminClient (authenticated as the
    # PLAIN user): a new SCRAM user works at once, is described, and is refused once deleted.
    from confluent_kafka.admin import (AdminClient, ScramCredentialInfo, ScramMechanism,
                                       UserScramCredentialDeletion,
                                       UserScramCredentialUpsertion)
    admin = AdminClient({"bootstrap.servers": BOOTSTRAP, "security.protocol": "SASL_PLAINTEXT",
                         "sasl.mechanism": "PLAIN", "sasl.username": "alice",
                         "sasl.password": "alice-pw"})
    user = f"dan-{uuid.uuid4().hex[:6]}"
    info = ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 8192)
    for f in admin.alter_user_scram_credentials(
            [UserScramCredentialUpsertion(user, info, b"dan-pw")]).values():
        f.result(15)
    ck_roundtrip("SCRAM-SHA-512", user, "dan-pw")
    desc = admin.describe_user_scram_credentials([user])[user].result(15)
    got = [(i.mechanism, i.iterations) for i in desc.scram_credential_infos]
    assert got == [(ScramMechanism.SCRAM_SHA_512, 8192)], got
    for f in admin.alter_user_scram_credentials(
            [UserScramCredentialDeletion(user, ScramMechanism.SCRAM_SHA_512)]).values():
        f.result(15)
    ck_fails("SCRAM-SHA-512", user, "dan-pw")
    # Deleting it again: RESOURCE_NOT_FOUND.
    try:
        for f in admin.alter_user_scram_credentials(
                [UserScramCredentialDeletion(user, ScramMechanism.SCRAM_SHA_512)]).values():
            f.result(15)
        raise AssertionError("deleted a credential twice")
    except AssertionError:
        raise
    except Exception as e:  # noqa: BLE001
        assert "RESOURCE_NOT_FOUND" in str(e) or "does not exist" in str(e), e


check("AlterUserScramCredentials / DescribeUserScramCredentials (confluent-kafka)",
      managed_scram_credentials)

print(f"sasl smoke: {results.count(True)} passed, {results.count(False)} failed")
sys.exit(0 if all(results) else 1)
