//! Durability of the log: kill -9 of the real binary mid-produce, storage failures, retention and
//! segment merging.

mod common;

use common::*;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
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
    kill_9_run(&storage, &[], 2, 50_000);
}

/// The same over 200 partitions, with the compactor rewriting write-ahead objects while the
/// broker is killed (so kills land between its steps too).
#[test]
fn kill_9_over_200_partitions_local_folder() {
    let dir = tempfile::tempdir().unwrap();
    let storage = dir.path().to_str().unwrap().to_string();
    kill_9_run(&storage, &COMPACT_OFTEN, 200, 30_000);
}

/// The same on S3 (the in-process S3 server on loopback).
#[test]
fn kill_9_over_200_partitions_s3() {
    let s3 = S3Server::start("kill9");
    let env_owned = s3.env();
    let mut env: Vec<(&str, &str)> = env_owned.iter().map(|(k, v)| (*k, v.as_str())).collect();
    env.extend(COMPACT_OFTEN);
    kill_9_run("s3://kill9/broker", &env, 200, 20_000);
}

/// Compaction a second after data was written, checked every 200 ms.
const COMPACT_OFTEN: [(&str, &str); 2] = [
    ("HERACLITUS_STORAGE__COMPACTION_DELAY_MS", "1000"),
    ("HERACLITUS_STORAGE__MERGE_INTERVAL_MS", "200"),
];

fn kill_9_run(storage: &str, env: &[(&str, &str)], partitions: i32, n: usize) {
    let parts = partitions.to_string();
    let mut env: Vec<(&str, &str)> = env.to_vec();
    env.push(("HERACLITUS_DEFAULT_PARTITIONS", &parts));
    let (kport, hport) = (free_port(), free_port());
    let mut broker = Some(BinaryBroker::start(storage, kport, hport, &env));
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
    // Kill points, in acknowledged records; jittered by the clock so runs differ.
    let jitter = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as usize)
        % (n / 10);
    let mut kills = vec![n / 6 + jitter, n * 4 / 9 + jitter, n * 3 / 4 + jitter];
    let mut sent = 0;
    let deadline = Instant::now() + Duration::from_secs(400);
    while acks.0.lock().unwrap().len() < n {
        assert!(Instant::now() < deadline, "producer stalled");
        while sent < n && sent - acks.0.lock().unwrap().len().min(sent) < 5_000 {
            let payload = format!("record-{sent:06}-{}", "p".repeat(sent % 100));
            let rec = BaseRecord::<(), String>::to("crash")
                .partition(sent as i32 % partitions)
                .payload(&payload);
            match producer.send(rec) {
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
            broker = Some(BinaryBroker::start(storage, kport, hport, &env));
        }
    }
    producer.flush(Duration::from_secs(60)).unwrap();
    assert!(kills.is_empty(), "all kills happened");
    // One more crash after the last ack, then verify from a fresh process.
    broker.take().unwrap().kill9();
    let broker = BinaryBroker::start(storage, kport, hport, &env);
    let stored = consume_all(&broker.bootstrap(), "crash", partitions);
    let acked = acks.0.lock().unwrap().clone();
    assert!(acked.len() >= n);
    for (p, off, payload) in &acked {
        assert_eq!(
            stored.get(&(*p, *off)),
            Some(payload),
            "acked record at {p}/{off}"
        );
    }
    assert_dense(&stored, partitions);
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

fn assert_dense(stored: &BTreeMap<(i32, i64), Vec<u8>>, partitions: i32) {
    for p in 0..partitions {
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
}

/// The broker kills itself at each step of compaction (and right after a write-ahead object
/// landed, before any produce was acknowledged): before and after the segment's PUT, after the
/// index swap, after deleting an input. After a restart every acknowledged record is at its
/// offset exactly once, and once compaction has run again no write-ahead object or
/// overlapping segment is left behind.
#[test]
fn crash_at_every_compaction_step_loses_and_duplicates_nothing() {
    for step in [
        "flush.after_put",
        "compact.before_put",
        "compact.after_put",
        "compact.after_swap",
        "compact.after_delete",
    ] {
        let dir = tempfile::tempdir().unwrap();
        let storage = dir.path().to_str().unwrap().to_string();
        let (kport, hport) = (free_port(), free_port());
        let env = vec![
            ("HERACLITUS_DEFAULT_PARTITIONS", "4"),
            ("HERACLITUS_STORAGE__COMPACTION_DELAY_MS", "300"),
            ("HERACLITUS_STORAGE__MERGE_INTERVAL_MS", "100"),
        ];
        let crashing = {
            let mut e = env.clone();
            e.push(("CRASH_AT", step));
            e
        };
        // A first batch of data, written before the crash point is armed for flushes.
        let mut broker = if step == "flush.after_put" {
            BinaryBroker::start(&storage, kport, hport, &env)
        } else {
            BinaryBroker::start(&storage, kport, hport, &crashing)
        };
        let acks = Acks::default();
        let producer: BaseProducer<Acks> = ClientConfig::new()
            .set("bootstrap.servers", broker.bootstrap())
            .set("acks", "all")
            .set("linger.ms", "5")
            .set("message.timeout.ms", "5000")
            .set("retries", "0")
            .create_with_context(acks.clone())
            .unwrap();
        for i in 0..400 {
            let payload = format!("{step}-{i}");
            let _ = producer.send(
                BaseRecord::<(), String>::to("steps")
                    .partition(i % 4)
                    .payload(&payload),
            );
            producer.poll(Duration::ZERO);
        }
        let _ = producer.flush(Duration::from_secs(10));
        if step == "flush.after_put" {
            broker.kill9();
            broker = BinaryBroker::start(&storage, kport, hport, &crashing);
            let _ = producer.send(
                BaseRecord::<(), str>::to("steps")
                    .partition(0)
                    .payload("unacknowledged"),
            );
            let _ = producer.flush(Duration::from_secs(5));
        }
        // The broker dies at the crash point.
        let deadline = Instant::now() + Duration::from_secs(60);
        while broker.child.try_wait().unwrap().is_none() {
            assert!(
                Instant::now() < deadline,
                "{step}: the crash point was never reached"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        drop(producer);
        let acked = acks.0.lock().unwrap().clone();
        assert!(acked.len() >= 100, "{step}: {} acked", acked.len());
        let broker = BinaryBroker::start(&storage, kport, hport, &env);
        let stored = consume_all(&broker.bootstrap(), "steps", 4);
        for (p, off, payload) in &acked {
            assert_eq!(stored.get(&(*p, *off)), Some(payload), "{step}: {p}/{off}");
        }
        assert_dense(&stored, 4);
        let mut values: Vec<&Vec<u8>> = stored.values().collect();
        values.sort();
        values.dedup();
        assert_eq!(values.len(), stored.len(), "{step}: no record stored twice");
        // The next run compacts everything: no write-ahead object is left, and no two
        // segments of a partition overlap.
        let wal = dir.path().join("wal");
        let deadline = Instant::now() + Duration::from_secs(60);
        while std::fs::read_dir(&wal).map_or(0, |d| d.count()) > 0 {
            assert!(
                Instant::now() < deadline,
                "{step}: write-ahead objects left behind"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        for p in 0..4 {
            let mut ranges: Vec<(i64, i64)> =
                std::fs::read_dir(partition_dir(dir.path(), "steps", p))
                    .unwrap()
                    .flatten()
                    .filter_map(|e| {
                        let name = e.file_name().to_string_lossy().to_string();
                        let (a, b) = name.strip_suffix(".parquet")?.split_once('-')?;
                        Some((a.parse().ok()?, b.parse().ok()?))
                    })
                    .collect();
            ranges.sort();
            for w in ranges.windows(2) {
                assert!(w[0].1 < w[1].0, "{step}: segments overlap: {ranges:?}");
            }
        }
        drop(broker);
    }
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
    // The partition's folder appears with the first compacted segment (compaction_delay_ms after
    // the produce): until then count it as "not merged yet".
    let count = || std::fs::read_dir(&seg_dir).map_or(usize::MAX, |d| d.count());
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

/// The value of a Prometheus sample line starting with `series` on `/metrics`.
fn metric(http: std::net::SocketAddr, series: &str) -> f64 {
    let (_, body) = http_get(http, "/metrics");
    body.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0.0)
}

/// PUTs follow flushes, not partitions: 20 Produce requests, each with a batch for every one
/// of 1,000 partitions (20,000 partition appends), are written with at most one PUT per flush
/// — one write-ahead object holds all the partitions a flush had buffered.
#[test]
fn one_put_per_flush_whatever_the_partition_count() {
    let mut s = settings("memory://");
    s.storage.compaction_delay_ms = Some(3_600_000);
    s.storage.checkpoint_interval_ms = 3_600_000;
    let b = TestBroker::start(s);
    let mut raw = Raw::connect(b.kafka);
    // The test batches carry 2023 timestamps: keep them whatever their age.
    assert_eq!(
        raw.create_topic_with("wide", 1000, &[("retention.ms", "-1")])
            .0,
        0
    );
    let puts = "heraclitus_object_store_operations_total{op=\"put\"}";
    let flushes = "heraclitus_segment_flushes_total";
    let (puts0, flushes0) = (metric(b.http, puts), metric(b.http, flushes));
    for round in 0..20 {
        let r = produce_everywhere(&mut raw, "wide", 1000, round);
        let parts = &r.responses[0].partition_responses;
        assert_eq!(parts.len(), 1000);
        assert!(parts
            .iter()
            .all(|p| p.error_code == 0 && p.base_offset == round));
    }
    let puts = metric(b.http, puts) - puts0;
    let flushes = metric(b.http, flushes) - flushes0;
    eprintln!("20,000 partition appends: {flushes} flushes, {puts} PUTs");
    assert!(flushes >= 1.0);
    assert!(puts <= flushes, "{puts} PUTs for {flushes} flushes");
    assert!(flushes <= 200.0, "{flushes} flushes for 20 requests");
    // Everything is readable back from the write-ahead objects.
    assert_eq!(fetch_partition(&mut raw, "wide", 999, 0), 20);
    b.stop();
}

/// Records readable from `offset` of one partition (one Fetch, hot or cold).
fn fetch_partition(raw: &mut Raw, topic: &str, partition: i32, offset: i64) -> usize {
    let mut fp = FetchPartition::default();
    fp.partition = partition;
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
    assert_eq!(pd.error_code, 0);
    count_batches(pd.records.clone().unwrap_or_default())
}

/// The compactor reads each write-ahead object whole, once: compacting 200 partitions spread
/// over every object costs one GET per object (not one per partition and object), and a PUT
/// per partition per compaction round; afterwards no write-ahead object is left and every record is
/// readable from the table.
#[test]
fn compaction_gets_follow_objects_not_partitions() {
    let mut s = settings("memory://");
    s.storage.compaction_delay_ms = Some(1_000);
    s.storage.merge_interval_ms = 200;
    s.storage.checkpoint_interval_ms = 3_600_000;
    let b = TestBroker::start(s);
    let mut raw = Raw::connect(b.kafka);
    assert_eq!(
        raw.create_topic_with("spread", 200, &[("retention.ms", "-1")])
            .0,
        0
    );
    let gets = "heraclitus_object_store_operations_total{op=\"get\"}";
    let puts = "heraclitus_object_store_operations_total{op=\"put\"}";
    let (gets0, puts0) = (metric(b.http, gets), metric(b.http, puts));
    let flushes0 = metric(b.http, "heraclitus_segment_flushes_total");
    for round in 0..10 {
        let r = produce_everywhere(&mut raw, "spread", 200, round);
        assert!(r.responses[0]
            .partition_responses
            .iter()
            .all(|p| p.error_code == 0));
    }
    let objects = metric(b.http, "heraclitus_segment_flushes_total") - flushes0;
    let deadline = Instant::now() + Duration::from_secs(60);
    while metric(b.http, "heraclitus_compactions_total") < 200.0
        || metric(b.http, "heraclitus_wal_objects") > 0.0
    {
        assert!(Instant::now() < deadline, "not compacted");
        std::thread::sleep(Duration::from_millis(200));
    }
    let gets = metric(b.http, gets) - gets0;
    let puts = metric(b.http, puts) - puts0 - objects;
    eprintln!("{objects} write-ahead objects over 200 partitions: compaction made {gets} GETs, {puts} PUTs");
    assert!(gets <= objects + 5.0, "{gets} GETs for {objects} objects");
    // One PUT per partition per compaction round (objects become due over a few intervals).
    assert!(
        (200.0..=200.0 * 5.0).contains(&puts),
        "{puts} PUTs for 200 partitions"
    );
    for p in [0, 99, 199] {
        assert_eq!(
            fetch_partition(&mut raw, "spread", p, 0),
            10,
            "partition {p}"
        );
    }
    b.stop();
}

/// One Produce request (acks=-1) with a one-record batch `r{round}-{p}` for each of
/// `partitions` partitions of `topic`.
fn produce_everywhere(raw: &mut Raw, topic: &str, partitions: i32, round: i64) -> ProduceResponse {
    let mut td = TopicProduceData::default();
    td.name = TopicName(StrBytes::from_string(topic.to_string()));
    td.partition_data = (0..partitions)
        .map(|p| {
            let mut pd = PartitionProduceData::default();
            pd.index = p;
            pd.records = Some(batch(&[format!("r{round}-{p}").as_bytes()]));
            pd
        })
        .collect();
    let mut req = ProduceRequest::default();
    req.acks = -1;
    req.timeout_ms = 10_000;
    req.topic_data = vec![td];
    let ResponseKind::Produce(r) = raw.request(ApiKey::Produce, 9, RequestKind::Produce(req))
    else {
        panic!()
    };
    r
}
