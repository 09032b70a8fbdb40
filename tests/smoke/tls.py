"""Real clients over TLS: confluent-kafka, kafka-python and kcat produce and consume over SSL,
mutual TLS and SASL_SSL (PLAIN, SCRAM-SHA-512); a client trusting another CA fails cleanly.

Usage: python tls.py SSL_BOOTSTRAP SASL_SSL_BOOTSTRAP CA_PEM CLIENT_PEM CLIENT_KEY OTHER_CA_PEM
(run by tests/tls.rs, which makes the certificates and starts the broker)
"""
import subprocess
import sys
import traceback
import uuid

SSL, SASL_SSL, CA, CERT, KEY, OTHER_CA = sys.argv[1:7]
results = []


def check(fn):
    try:
        fn()
        results.append(True)
        print(f"PASS {fn.__name__}", flush=True)
    except Exception as e:  # noqa: BLE001
        traceback.print_exc()
        results.append(False)
        print(f"FAIL {fn.__name__}: {e!r}", flush=True)
    return fn


def confluent_round_trip(conf, n=50):
    from confluent_kafka import Consumer, Producer, TopicPartition
    topic = f"tls-{uuid.uuid4().hex[:8]}"
    p = Producer(dict(conf, **{"acks": "all"}))
    for i in range(n):
        p.produce(topic, value=f"v{i}".encode(), partition=0)
    assert p.flush(30) == 0, "undelivered"
    c = Consumer(dict(conf, **{"group.id": "tls-smoke", "enable.auto.commit": False}))
    c.assign([TopicPartition(topic, 0, 0)])
    got = []
    while len(got) < n:
        m = c.poll(10)
        assert m is not None, f"timed out after {len(got)}"
        assert m.error() is None, m.error()
        got.append(m.value())
    c.close()
    assert got == [f"v{i}".encode() for i in range(n)]


@check
def confluent_kafka_ssl():
    confluent_round_trip({"bootstrap.servers": SSL, "security.protocol": "SSL",
                          "ssl.ca.location": CA})


@check
def confluent_kafka_mutual_tls():
    confluent_round_trip({"bootstrap.servers": SSL, "security.protocol": "SSL",
                          "ssl.ca.location": CA, "ssl.certificate.location": CERT,
                          "ssl.key.location": KEY})


@check
def confluent_kafka_sasl_ssl_plain():
    confluent_round_trip({"bootstrap.servers": SASL_SSL, "security.protocol": "SASL_SSL",
                          "ssl.ca.location": CA, "sasl.mechanism": "PLAIN",
                          "sasl.username": "admin", "sasl.password": "admin-secret"})


@check
def confluent_kafka_sasl_ssl_scram_sha_512():
    confluent_round_trip({"bootstrap.servers": SASL_SSL, "security.protocol": "SASL_SSL",
                          "ssl.ca.location": CA, "sasl.mechanism": "SCRAM-SHA-512",
                          "sasl.username": "carol", "sasl.password": "s3cret"})


@check
def kafka_python_ssl_and_sasl_ssl():
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition
    for extra in ({"bootstrap_servers": SSL, "security_protocol": "SSL"},
                  {"bootstrap_servers": SASL_SSL, "security_protocol": "SASL_SSL",
                   "sasl_mechanism": "PLAIN", "sasl_plain_username": "admin",
                   "sasl_plain_password": "admin-secret"}):
        conf = dict(extra, ssl_cafile=CA, ssl_check_hostname=True)
        topic = f"tls-kp-{uuid.uuid4().hex[:8]}"
        p = KafkaProducer(acks="all", **conf)
        for i in range(20):
            p.send(topic, value=f"k{i}".encode(), partition=0).get(30)
        p.close()
        c = KafkaConsumer(enable_auto_commit=False, consumer_timeout_ms=5000, **conf)
        tp = TopicPartition(topic, 0)
        c.assign([tp])
        c.seek_to_beginning(tp)
        got = [m.value for m in c]
        c.close()
        assert got == [f"k{i}".encode() for i in range(20)], got


@check
def kcat_ssl():
    topic = f"tls-kcat-{uuid.uuid4().hex[:8]}"
    common = ["kcat", "-b", SSL, "-X", "security.protocol=SSL", "-X", f"ssl.ca.location={CA}"]
    subprocess.run(common + ["-P", "-t", topic, "-p", "0"], input=b"a\nb\nc\n", check=True,
                   timeout=60)
    out = subprocess.run(common + ["-C", "-t", topic, "-p", "0", "-o", "beginning", "-e", "-q"],
                         check=True, capture_output=True, timeout=60).stdout
    assert out.split() == [b"a", b"b", b"c"], out


@check
def a_client_trusting_another_ca_fails_cleanly():
    from confluent_kafka.admin import AdminClient
    a = AdminClient({"bootstrap.servers": SSL, "security.protocol": "SSL",
                     "ssl.ca.location": OTHER_CA})
    try:
        a.list_topics(timeout=5)
    except Exception as e:  # noqa: BLE001 - KafkaException: transport failure
        assert "SSL" in str(e) or "Timed out" in str(e) or "transport" in str(e).lower(), e
    else:
        raise AssertionError("metadata over an untrusted certificate")


passed = sum(results)
print(f"tls: {passed} passed, {len(results) - passed} failed")
sys.exit(0 if all(results) else 1)
