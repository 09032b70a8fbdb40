//! Durability of the log: kill -9 of the real binary mid-produce, storage failures, retention and
//! segment merging.

mod common;

use common::*;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Clone, Default)]
struct Acks(Arc<Mutex<Vec<Acked>>>);

/// (partition, offset, payload) of an acknowledged record.
type Acked = (i32, i64, Vec<u8>);

impl ClientContext for Acks {}
impl ProducerContext for Acks {
    type DeliveryOpaque = ();
    fn delivery(&self, r: &DeliveryResult<'_>, _: ()) {
        if let Ok(m) = r {
            self.0.lock().unwrap().push((
                m.partition(),
                m.offset(),
                m.payload().unwrap_or_default().to_vec(),
            ));
        }
    }
}

fn consume_all(bootstrap: &str, topic: &str, partitions: i32) -> BTreeMap<(i32, i64), Vec<u8>> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "verify")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    let mut ends = BTreeMap::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .unwrap();
        let (_, hi) = c
            .fetch_watermarks(topic, p, Duration::from_secs(10))
            .unwrap();
        ends.insert(p, hi);
    }
    c.assign(&tpl).unwrap();
    let total: i64 = ends.values().sum();
    let mut out = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    while (out.len() as i64) < total && Instant::now() < deadline {
        if let Some(Ok(m)) = c.poll(Duration::from_millis(500)) {
            out.insert(
                (m.partition(), m.offset()),
                m.payload().unwrap_or_default().to_vec(),
            );
        }
    }
    assert_eq!(
        out.len() as i64,
        total,
        "consumed everything up to the high watermarks"
    );
    out
}

/// The broker is killed with SIGKILL several times while an acks=all producer sends 50,000
/// records; after each restart on the same folder every acknowledged record is readable at its
/// original offset, byte-identical, and offsets stay dense.
#[test]
fn kill_9_loses_no_acknowledged_record() {
    let dir = tempfile::tempdir().unwrap();
    let storage = dir.path().to_str().unwrap().to_string();
    let (kport, hport) = (free_port(), free_port());
    let env = [("HERACLITUS_DEFAULT_PARTITIONS", "2")];
    let mut broker = Some(BinaryBroker::start(&storage, kport, hport, &env));
    let acks = Acks::default();
    let producer: BaseProducer<Acks> = ClientConfig::new()
        .set("bootstrap.servers", format!("127.0.0.1:{kport}"))
        .set("acks", "all")
        .set("linger.ms", "2")
        .set("message.timeout.ms", "300000")
        .set("reconnect.backoff.ms", "50")
        .set("reconnect.backoff.max.ms", "500")
        .create_with_context(acks.clone())
        .unwrap();
    let n = 50_000usize;
    // Kill points, in acknowledged records; jittered by the clock so runs differ.
    let jitter = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos()
        % 5000) as usize;
    let mut kills = vec![8_000 + jitter, 22_000 + jitter, 37_000 + jitter];
    let mut sent = 0;
    let deadline = Instant::now() + Duration::from_secs(300);
    while acks.0.lock().unwrap().len() < n {
        assert!(Instant::now() < deadline, "producer stalled");
        while sent < n && sent - acks.0.lock().unwrap().len().min(sent) < 5_000 {
            let payload = format!("record-{sent:06}-{}", "p".repeat(sent % 100));
            match producer.send(BaseRecord::<(), String>::to("crash").payload(&payload)) {
                Ok(()) => sent += 1,
                Err(_) => break,
            }
        }
        producer.poll(Duration::from_millis(5));
        let acked = acks.0.lock().unwrap().len();
        if kills.first().is_some_and(|k| acked >= *k) {
            kills.remove(0);
            broker.take().unwrap().kill9();
            std::thread::sleep(Duration::from_millis(200));
            broker = Some(BinaryBroker::start(&storage, kport, hport, &env));
        }
    }
    producer.flush(Duration::from_secs(60)).unwrap();
    assert!(kills.is_empty(), "all kills happened");
    // One more crash after the last ack, then verify from a fresh process.
    broker.take().unwrap().kill9();
    let broker = BinaryBroker::start(&storage, kport, hport, &env);
    let stored = consume_all(&broker.bootstrap(), "crash", 2);
    let acked = acks.0.lock().unwrap().clone();
    assert!(acked.len() >= n);
    for (p, off, payload) in &acked {
        assert_eq!(
            stored.get(&(*p, *off)),
            Some(payload),
            "acked record at {p}/{off}"
        );
    }
    for p in 0..2 {
        let offs: Vec<i64> = stored
            .keys()
            .filter(|(q, _)| *q == p)
            .map(|(_, o)| *o)
            .collect();
        assert_eq!(
            offs,
            (0..offs.len() as i64).collect::<Vec<_>>(),
            "partition {p} dense"
        );
    }
    // New offsets continue after the last durable one.
    let before: i64 = stored.keys().filter(|(q, _)| *q == 0).count() as i64;
    let acks2 = Acks::default();
    let p2: BaseProducer<Acks> = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .set("acks", "all")
        .create_with_context(acks2.clone())
        .unwrap();
    p2.send(
        BaseRecord::<(), str>::to("crash")
            .partition(0)
            .payload("after"),
    )
    .map_err(|(e, _)| e)
    .unwrap();
    p2.flush(Duration::from_secs(30)).unwrap();
    assert_eq!(acks2.0.lock().unwrap()[0].1, before);
}

fn produce(raw: &mut Raw, topic: &str, partition: i32, values: &[&[u8]]) -> (i16, i64) {
    raw.produce_batch(topic, partition, batch(values))
}

fn fetch(raw: &mut Raw, topic: &str, offset: i64) -> (i16, i64, i64, usize) {
    let mut fp = FetchPartition::default();
    fp.partition = 0;
    fp.fetch_offset = offset;
    fp.partition_max_bytes = 10 << 20;
    let mut ft = FetchTopic::default();
    ft.topic = TopicName(StrBytes::from_string(topic.to_string()));
    ft.partitions = vec![fp];
    let mut req = FetchRequest::default();
    req.max_wait_ms = 0;
    req.max_bytes = 50 << 20;
    req.replica_id = BrokerId(-1);
    req.topics = vec![ft];
    let ResponseKind::Fetch(resp) = raw.request(ApiKey::Fetch, 12, RequestKind::Fetch(req)) else {
        panic!()
    };
    let pd = &resp.responses[0].partitions[0];
    (
        pd.error_code,
        pd.high_watermark,
        pd.log_start_offset,
        count_batches(pd.records.clone().unwrap_or_default()),
    )
}

/// While segment writes fail, producers get KAFKA_STORAGE_ERROR (retriable), never an ack, and
/// nothing becomes visible; once storage is back, produce works and offsets stay dense.
#[test]
fn storage_failure_fails_produces_and_recovers() {
    let b = TestBroker::start(settings("memory://"));
    let mut raw = Raw::connect(b.kafka);
    raw.create_topic("fragile", &[]);
    assert_eq!(produce(&mut raw, "fragile", 0, &[b"a", b"b"]), (0, 0));
    b.storage.failpoints.put.store(true, Ordering::SeqCst);
    for _ in 0..3 {
        let (code, _) = produce(&mut raw, "fragile", 0, &[b"lost"]);
        assert_eq!(code, 56, "KAFKA_STORAGE_ERROR while the store fails");
    }
    assert_eq!(
        http_get(b.http, "/ready").0,
        503,
        "not ready while the store fails"
    );
    assert_eq!(
        fetch(&mut raw, "fragile", 0).1,
        2,
        "high watermark did not move"
    );
    b.storage.failpoints.put.store(false, Ordering::SeqCst);
    assert_eq!(
        produce(&mut raw, "fragile", 0, &[b"c"]),
        (0, 2),
        "offsets reused, dense"
    );
    assert_eq!(http_get(b.http, "/ready").0, 200);
    let (code, hw, _, batches) = fetch(&mut raw, "fragile", 0);
    assert_eq!((code, hw, batches), (0, 3, 2));
}

/// retention.bytes deletes whole old segments; the log start offset moves, fetches below it get
/// OFFSET_OUT_OF_RANGE, what remains is intact. Small segments are merged into larger ones with
/// contents unchanged, including across a restart.
#[test]
fn retention_and_merging() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_str().unwrap().to_string();
    let mut s = settings(&path);
    s.retention.check_interval_ms = 100;
    s.storage.merge_interval_ms = 100;
    s.storage.merge_min_segments = 4;
    s.storage.merge_target_bytes = 1 << 20;
    s.storage.compaction_delay_ms = Some(200);
    let b = TestBroker::start(s.clone());
    let mut raw = Raw::connect(b.kafka);
    // Compaction: 10 produces → 10 write-ahead parts → compacted into the table layout.
    // The test batches carry 2023 timestamps: keep them regardless of age.
    raw.create_topic("merged", &[("retention.ms", "-1")]);
    for i in 0..10u8 {
        let v = vec![i; 100];
        assert_eq!(produce(&mut raw, "merged", 0, &[&v, &v]).0, 0);
    }
    let seg_dir = partition_dir(dir.path(), "merged", 0);
    let count = || std::fs::read_dir(&seg_dir).unwrap().count();
    let deadline = Instant::now() + Duration::from_secs(30);
    // Merges take runs of at least 4 segments and never the newest one: depending on when the
    // merge timer fires, 10 segments end as 2 to 4 (e.g. [0-3] [4-7] [8] [9] under load).
    while count() > 4 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(count() <= 4, "segments merged: {} left", count());
    let (code, hw, start, batches) = fetch(&mut raw, "merged", 0);
    assert_eq!((code, hw, start), (0, 20, 0));
    assert!(batches >= 1);
    // Retention: retention.bytes small enough to keep only the newest segments.
    raw.create_topic("retained", &[("retention.bytes", "1")]);
    for i in 0..5u8 {
        assert_eq!(produce(&mut raw, "retained", 0, &[&[i; 10]]).0, 0);
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while fetch(&mut raw, "retained", 4).2 < 4 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let (_, hw, start, _) = fetch(&mut raw, "retained", 4);
    assert_eq!((hw, start), (5, 4), "only the newest segment is kept");
    assert_eq!(
        fetch(&mut raw, "retained", 0).0,
        1,
        "OFFSET_OUT_OF_RANGE below the log start"
    );
    drop(raw);
    b.stop();
    // After a restart: merged contents and the moved log start survive.
    let b = TestBroker::start(s);
    let mut raw = Raw::connect(b.kafka);
    let (code, hw, start, _) = fetch(&mut raw, "merged", 0);
    assert_eq!((code, hw, start), (0, 20, 0));
    let mut next = 0;
    let mut seen = 0;
    while next < 20 {
        let mut fp = FetchPartition::default();
        fp.fetch_offset = next;
        fp.partition_max_bytes = 1 << 20;
        let mut ft = FetchTopic::default();
        ft.topic = TopicName(StrBytes::from_static_str("merged"));
        ft.partitions = vec![fp];
        let mut req = FetchRequest::default();
        req.max_bytes = 1 << 20;
        req.replica_id = BrokerId(-1);
        req.topics = vec![ft];
        let ResponseKind::Fetch(r) = raw.request(ApiKey::Fetch, 12, RequestKind::Fetch(req)) else {
            panic!()
        };
        let recs = r.responses[0].partitions[0].records.clone().unwrap();
        let mut buf = recs.clone();
        let sets = kafka_protocol::records::RecordBatchDecoder::decode_all(&mut buf).unwrap();
        for set in sets {
            for rec in set.records {
                if rec.offset < next {
                    continue;
                }
                assert_eq!(rec.offset, next);
                let i = (next / 2) as u8;
                assert_eq!(
                    rec.value.as_deref(),
                    Some(&vec![i; 100][..]),
                    "offset {next}"
                );
                next += 1;
                seen += 1;
            }
        }
    }
    assert_eq!(seen, 20);
    assert_eq!(fetch(&mut raw, "retained", 0).2, 4);
}
