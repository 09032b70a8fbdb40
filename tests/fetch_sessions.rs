//! Incremental fetch sessions (KIP-227) over the raw protocol — a session is created by a full
//! fetch, incremental fetches carry only what changed, epochs and unknown sessions are refused
//! with Kafka's codes, forgotten topics leave the session, epoch -1 closes it — and with
//! kafka-python (which uses sessions) over 1,000 partitions, across a broker restart (the
//! client falls back to a full fetch).

mod common;

use common::*;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic, ForgottenTopic};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

/// One Fetch v12 (by name): (top-level error, session id, [(topic, partition, error, hw,
/// batches)]).
type Answer = (i16, i32, Vec<(String, i32, i16, i64, usize)>);

fn fetch(
    raw: &mut Raw,
    session: (i32, i32),
    parts: &[(&str, i32, i64)],
    forgotten: &[(&str, i32)],
) -> Answer {
    let mut req = FetchRequest::default();
    req.replica_id = BrokerId(-1);
    req.max_bytes = 1 << 20;
    req.max_wait_ms = 0;
    req.session_id = session.0;
    req.session_epoch = session.1;
    for (t, p, off) in parts {
        let fp = FetchPartition::default()
            .with_partition(*p)
            .with_fetch_offset(*off)
            .with_partition_max_bytes(1 << 20);
        match req.topics.iter_mut().find(|x| x.topic.as_str() == *t) {
            Some(ft) => ft.partitions.push(fp),
            None => req.topics.push(
                FetchTopic::default()
                    .with_topic(name(t))
                    .with_partitions(vec![fp]),
            ),
        }
    }
    for (t, p) in forgotten {
        req.forgotten_topics_data.push(
            ForgottenTopic::default()
                .with_topic(name(t))
                .with_partitions(vec![*p]),
        );
    }
    let ResponseKind::Fetch(r) = raw.request(ApiKey::Fetch, 12, RequestKind::Fetch(req)) else {
        panic!()
    };
    let parts = r
        .responses
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(move |p| {
                (
                    t.topic.to_string(),
                    p.partition_index,
                    p.error_code,
                    p.high_watermark,
                    p.records.clone().map_or(0, count_batches),
                )
            })
        })
        .collect();
    (r.error_code, r.session_id, parts)
}

#[test]
fn sessions_over_the_raw_protocol() {
    let b = TestBroker::start(settings("memory://"));
    let mut raw = Raw::connect(b.kafka);
    raw.create_topic_with("s", 2, &[]);
    raw.create_topic("u", &[]);
    assert_eq!(raw.produce_batch("s", 0, batch(&[b"a"])).0, 0);

    // Full fetch, epoch 0: creates a session; everything answered.
    let (err, id, parts) = fetch(
        &mut raw,
        (0, 0),
        &[("s", 0, 0), ("s", 1, 0), ("u", 0, 0)],
        &[],
    );
    assert_eq!(err, 0);
    assert!(id > 0, "a session");
    assert_eq!(
        parts,
        vec![
            ("s".into(), 0, 0, 1, 1),
            ("s".into(), 1, 0, 0, 0),
            ("u".into(), 0, 0, 0, 0)
        ]
    );
    assert!(http_get(b.http, "/metrics").1.contains("fetch_sessions 1"));

    // Incremental, nothing new (the client moved s-0 on past its record).
    let (err, sid, parts) = fetch(&mut raw, (id, 1), &[("s", 0, 1)], &[]);
    assert_eq!((err, sid), (0, id));
    assert_eq!(parts, vec![], "nothing changed");
    // New data on s-1, which the request does not name: the session still covers it.
    assert_eq!(raw.produce_batch("s", 1, batch(&[b"b"])).0, 0);
    let (_, _, parts) = fetch(&mut raw, (id, 2), &[], &[]);
    assert_eq!(parts, vec![("s".into(), 1, 0, 1, 1)]);
    // s-0 gets data too: served from the cached fetch offset (1), so only the new record.
    assert_eq!(raw.produce_batch("s", 0, batch(&[b"c"])).0, 0);
    let (_, _, parts) = fetch(&mut raw, (id, 3), &[("s", 1, 1)], &[]);
    assert_eq!(parts, vec![("s".into(), 0, 0, 2, 1)]);
    // Forget u-0; then new data there is not answered.
    let (_, _, parts) = fetch(&mut raw, (id, 4), &[("s", 0, 2)], &[("u", 0)]);
    assert_eq!(parts, vec![]);
    assert_eq!(raw.produce_batch("u", 0, batch(&[b"d"])).0, 0);
    let (_, _, parts) = fetch(&mut raw, (id, 5), &[], &[]);
    assert_eq!(parts, vec![], "u-0 left the session");

    // Wrong epoch, replayed epoch, unknown session.
    assert_eq!(fetch(&mut raw, (id, 9), &[], &[]).0, 71);
    assert_eq!(fetch(&mut raw, (id, 5), &[], &[]).0, 71);
    assert_eq!(fetch(&mut raw, (id + 1000, 1), &[], &[]).0, 70);
    // The session survives errors: the right epoch still works.
    assert_eq!(fetch(&mut raw, (id, 6), &[], &[]).0, 0);
    // Epoch -1 closes it: a sessionless full fetch.
    let (err, sid, parts) = fetch(&mut raw, (id, -1), &[("u", 0, 0)], &[]);
    assert_eq!((err, sid, parts.len()), (0, 0, 1));
    assert_eq!(fetch(&mut raw, (id, 7), &[], &[]).0, 70, "closed");
    let metrics = http_get(b.http, "/metrics").1;
    assert!(metrics.contains("fetch_sessions 0"));
    assert!(metrics.contains("fetch_session_requests_total{session=\"incremental\"} 6"));
    // Sessions are per broker, not per connection (the Java client may switch connections).
    let id = fetch(&mut raw, (0, 0), &[("s", 0, 2)], &[]).1;
    let mut other = Raw::connect(b.kafka);
    assert_eq!(fetch(&mut other, (id, 1), &[], &[]).0, 0);
}

#[test]
fn sessions_can_be_turned_off() {
    let mut s = settings("memory://");
    s.fetch_session_cache_slots = 0;
    let b = TestBroker::start(s);
    let mut raw = Raw::connect(b.kafka);
    raw.create_topic("off", &[]);
    let (err, id, parts) = fetch(&mut raw, (0, 0), &[("off", 0, 0)], &[]);
    assert_eq!((err, id, parts.len()), (0, 0, 1), "full fetches only");
}

/// kafka-python uses fetch sessions: a consumer of 1,000 partitions reads every record once
/// with incremental fetches accepted, and the same consumer goes on across a broker restart
/// (sessions are not persisted: its next incremental fetch gets FETCH_SESSION_ID_NOT_FOUND and
/// it falls back to a full fetch and a new session).
#[test]
#[ignore = "needs kafka-python (run by .ci/run)"]
fn kafka_python_consumer_of_1000_partitions() {
    use std::io::{BufRead, BufReader, Write};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_str().unwrap().to_string();
    let (kafka_port, http_port) = (free_port(), free_port());
    let http: std::net::SocketAddr = format!("127.0.0.1:{http_port}").parse().unwrap();
    let b = BinaryBroker::start(&path, kafka_port, http_port, &[]);
    let script = r#"
import sys, time
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
B = sys.argv[1]
N = 1000
a = KafkaAdminClient(bootstrap_servers=B)
a.create_topics([NewTopic("wide", N, 1)])
a.close()

def produce(start):
    p = KafkaProducer(bootstrap_servers=B, acks="all", linger_ms=20)
    for i in range(start, start + N):
        p.send("wide", value=str(i).encode(), partition=i % N)
    p.flush(60)
    p.close()

c = KafkaConsumer(bootstrap_servers=B, enable_auto_commit=False, fetch_max_wait_ms=100,
                  reconnect_backoff_max_ms=500)
c.assign([TopicPartition("wide", i) for i in range(N)])
for i in range(N):
    c.seek(TopicPartition("wide", i), 0)
seen = set()

def consume(total, idle):
    deadline = time.time() + 120
    while len(seen) < total and time.time() < deadline:
        for tp, msgs in c.poll(timeout_ms=500).items():
            for m in msgs:
                seen.add(int(m.value))
    assert seen == set(range(total)), f"{len(seen)} of {total}"
    end = time.time() + idle
    while time.time() < end:
        assert not c.poll(timeout_ms=100), "nothing more"

produce(0)
consume(N, 2)
print("RESTART", flush=True)
sys.stdin.readline()
produce(N)
consume(2 * N, 2)
c.close()
print("OK", len(seen), flush=True)
"#;
    let mut py = std::process::Command::new(python())
        .args(["-c", script, &format!("127.0.0.1:{kafka_port}")])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python");
    let mut out = BufReader::new(py.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "RESTART", "first half consumed");
    let count = |kind: &str| -> f64 {
        let metrics = http_get(http, "/metrics").1;
        let prefix = format!("heraclitus_fetch_session_requests_total{{session=\"{kind}\"}} ");
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(prefix.as_str()))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0.0)
    };
    assert!(count("new") >= 1.0, "a session was created");
    assert!(
        count("incremental") >= 5.0,
        "incremental fetches: {}",
        count("incremental")
    );
    let refused = http_get(http, "/metrics").1.lines().any(|l| {
        l.contains("errors_total")
            && l.contains("api=\"Fetch\"")
            && (l.contains("code=\"70\"") || l.contains("code=\"71\""))
    });
    assert!(!refused, "every incremental fetch was accepted");
    b.terminate();
    let b = BinaryBroker::start(&path, kafka_port, http_port, &[]);
    py.stdin.take().unwrap().write_all(b"go\n").unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut out, &mut rest).unwrap();
    assert!(py.wait().unwrap().success(), "second half: {rest}");
    assert!(rest.contains("OK 2000"), "{rest}");
    // The stale session was refused once, then a new one served incremental fetches again.
    assert!(count("new") >= 1.0 && count("incremental") >= 5.0);
    b.terminate();
}
