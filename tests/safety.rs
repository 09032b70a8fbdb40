//! Safety under operator actions and store faults: deleting and recreating a topic under load,
//! a PUT that lands but is reported failed, compression bombs, Fetch limits, connection,
//! partition and config limits, and back-pressure when nothing becomes durable.

mod common;

use bytes::Bytes;
use common::*;
use heraclitus::protocol::compression::Codec;
use heraclitus::protocol::records::{
    encode_batch, parse_records, split_batches, BatchMeta, OwnedRecord,
};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn one_record(value: &[u8]) -> Bytes {
    batch(&[value])
}

fn fetch_req(
    topic: &str,
    partition: i32,
    offset: i64,
    max_bytes: i32,
    part_max: i32,
) -> FetchRequest {
    let mut fp = FetchPartition::default();
    fp.partition = partition;
    fp.fetch_offset = offset;
    fp.partition_max_bytes = part_max;
    let mut ft = FetchTopic::default();
    ft.topic = TopicName(StrBytes::from_string(topic.to_string()));
    ft.partitions = vec![fp];
    let mut req = FetchRequest::default();
    req.max_wait_ms = 0;
    req.max_bytes = max_bytes;
    req.replica_id = BrokerId(-1);
    req.topics = vec![ft];
    req
}

/// Every record of partition 0 as (offset, value).
fn read_all(raw: &mut Raw, topic: &str) -> Vec<(i64, Vec<u8>)> {
    let mut out = Vec::new();
    let mut next = 0;
    loop {
        let req = fetch_req(topic, 0, next, 8 << 20, 8 << 20);
        let ResponseKind::Fetch(resp) = raw.request(ApiKey::Fetch, 12, RequestKind::Fetch(req))
        else {
            panic!()
        };
        let pd = &resp.responses[0].partitions[0];
        assert_eq!(pd.error_code, 0, "fetch {topic} at {next}");
        let records = pd.records.clone().unwrap_or_default();
        if records.is_empty() {
            assert_eq!(next, pd.high_watermark, "read up to the high watermark");
            return out;
        }
        for (_, b) in split_batches(&records) {
            let (h, recs) = parse_records(&b, 1 << 30).unwrap();
            for r in recs {
                let o = h.base_offset + r.offset_delta as i64;
                if o >= next {
                    out.push((o, r.value.map(|v| v.to_vec()).unwrap_or_default()));
                    next = o + 1;
                }
            }
        }
    }
}

fn create(raw: &mut Raw, topic: &str, partitions: i32, configs: &[(&str, &str)]) -> i16 {
    raw.create_topic_with(topic, partitions, configs).0
}

fn delete(raw: &mut Raw, topic: &str) -> i16 {
    let mut req = DeleteTopicsRequest::default();
    req.topic_names = vec![TopicName(StrBytes::from_string(topic.to_string()))];
    req.timeout_ms = 30_000;
    let ResponseKind::DeleteTopics(r) =
        raw.request(ApiKey::DeleteTopics, 4, RequestKind::DeleteTopics(req))
    else {
        panic!()
    };
    r.responses[0].error_code
}

/// Acknowledged produces: (when the ack arrived, offset, value).
type Acks = Arc<Mutex<Vec<(Instant, i64, Vec<u8>)>>>;

/// Produce one record per request from a background connection until stopped; every ack is
/// recorded with the time it arrived.
fn load(
    addr: std::net::SocketAddr,
    topic: &'static str,
    stop: Arc<AtomicBool>,
    acks: Acks,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut raw = Raw::connect(addr);
        let mut i = 0u64;
        while !stop.load(Ordering::Relaxed) {
            let v = format!("load-{i}").into_bytes();
            i += 1;
            let (code, base) = raw.produce_batch(topic, 0, one_record(&v));
            if code == 0 {
                acks.lock().unwrap().push((Instant::now(), base, v));
            } else {
                if code == 3 {
                    // As clients do: ask Metadata, which auto-creates when the broker allows.
                    let mut t = metadata_request::MetadataRequestTopic::default();
                    t.name = Some(TopicName(StrBytes::from_static_str(topic)));
                    let mut req = MetadataRequest::default();
                    req.topics = Some(vec![t]);
                    req.allow_auto_topic_creation = true;
                    raw.request(ApiKey::Metadata, 9, RequestKind::Metadata(req));
                }
                std::thread::sleep(Duration::from_millis(2));
            }
        }
    })
}

/// Delete a topic while it is produced to, recreate it (explicitly, or by auto-creation),
/// restart: the new topic holds exactly what was acknowledged to it. The deleted topic's
/// records used to come back inside the new one (an in-flight flush of the old incarnation
/// landed in the new one's buffer and segment names collided).
fn delete_and_recreate(storage: &str, s3: Option<&S3Server>, auto_create: bool) {
    let open = || match s3 {
        Some(server) => s3_storage(server, storage),
        None => heraclitus::storage::Storage::open(storage).unwrap(),
    };
    let mut s = settings(storage);
    s.auto_create_topics = auto_create;
    // Flushes take a while: deletion happens with writes in flight.
    let b = TestBroker::start_with(s.clone(), open());
    b.storage
        .failpoints
        .put_delay_ms
        .store(30, Ordering::Relaxed);
    let mut raw = Raw::connect(b.kafka);
    assert_eq!(create(&mut raw, "phoenix", 1, &[]), 0);
    let stop = Arc::new(AtomicBool::new(false));
    let acks = Arc::new(Mutex::new(Vec::new()));
    let loaders: Vec<_> = (0..3)
        .map(|_| load(b.kafka, "phoenix", stop.clone(), acks.clone()))
        .collect();
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(delete(&mut raw, "phoenix"), 0);
    let deleted_at = Instant::now();
    if !auto_create {
        // A name whose deletion is done can be created again at once.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match create(&mut raw, "phoenix", 1, &[]) {
                0 => break,
                7 if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
                c => panic!("recreate answered {c}"),
            }
        }
    }
    std::thread::sleep(Duration::from_millis(600));
    stop.store(true, Ordering::Relaxed);
    for l in loaders {
        l.join().unwrap();
    }
    let mut expected: BTreeMap<i64, Vec<u8>> = BTreeMap::new();
    for (at, off, v) in acks.lock().unwrap().iter() {
        if *at > deleted_at {
            assert!(
                expected.insert(*off, v.clone()).is_none(),
                "two acks for offset {off}"
            );
        }
    }
    assert!(!expected.is_empty(), "the new topic was produced to");
    let before: BTreeMap<i64, Vec<u8>> = read_all(&mut raw, "phoenix").into_iter().collect();
    assert_eq!(
        before, expected,
        "the new topic holds what was acknowledged to it"
    );
    drop(raw);
    b.storage
        .failpoints
        .put_delay_ms
        .store(0, Ordering::Relaxed);
    b.stop();
    let b = TestBroker::start_with(s, open());
    let mut raw = Raw::connect(b.kafka);
    let after: BTreeMap<i64, Vec<u8>> = read_all(&mut raw, "phoenix").into_iter().collect();
    assert_eq!(
        after, expected,
        "after a restart: exactly what was acknowledged"
    );
}

/// A store on the test S3 server, configured explicitly (not through process-wide AWS_*
/// variables, which tests running in parallel would race on).
fn s3_storage(server: &S3Server, dsn: &str) -> heraclitus::storage::Storage {
    let rest = dsn.strip_prefix("s3://").unwrap();
    let (bucket, prefix) = rest.split_once('/').unwrap();
    let env: BTreeMap<&str, String> = server.env().into_iter().collect();
    let s3 = object_store::aws::AmazonS3Builder::new()
        .with_bucket_name(bucket)
        .with_endpoint(server.endpoint())
        .with_allow_http(true)
        .with_region("us-east-1")
        .with_access_key_id(&env["AWS_ACCESS_KEY_ID"])
        .with_secret_access_key(&env["AWS_SECRET_ACCESS_KEY"])
        .build()
        .unwrap();
    let store = object_store::prefix::PrefixStore::new(s3, prefix);
    heraclitus::storage::Storage::from_store(std::sync::Arc::new(store), None, dsn.to_string())
}

#[test]
fn delete_and_recreate_under_load_local_folder() {
    let dir = tempfile::tempdir().unwrap();
    delete_and_recreate(dir.path().to_str().unwrap(), None, false);
}

#[test]
fn delete_and_auto_recreate_under_load_local_folder() {
    let dir = tempfile::tempdir().unwrap();
    delete_and_recreate(dir.path().to_str().unwrap(), None, true);
}

#[test]
fn delete_and_recreate_under_load_s3() {
    let s3 = S3Server::start("phoenix");
    delete_and_recreate("s3://phoenix/prefix", Some(&s3), false);
}

#[test]
fn delete_and_auto_recreate_under_load_s3() {
    let s3 = S3Server::start("phoenix-auto");
    delete_and_recreate("s3://phoenix-auto/prefix", Some(&s3), true);
}

/// A PUT that landed but was reported failed (an S3 500 or timeout after the object was
/// stored; object_store's conditional retry then sees 412): the produce succeeds and a restart
/// keeps exactly the acknowledged records at their offsets. It used to be retried forever at
/// the same offsets (AlreadyExists reported as a failure: every produce KAFKA_STORAGE_ERROR).
#[test]
fn put_that_landed_but_failed_is_durable() {
    let dir = tempfile::tempdir().unwrap();
    let s = settings(dir.path().to_str().unwrap());
    let b = TestBroker::start(s.clone());
    let mut raw = Raw::connect(b.kafka);
    raw.create_topic("landed", &[]);
    // The retried conditional PUT finds its own object: identical bytes, durable.
    b.storage
        .failpoints
        .put_lands_then_exists
        .store(1, Ordering::Relaxed);
    assert_eq!(raw.produce_batch("landed", 0, one_record(b"a")), (0, 0));
    // The PUT landed and reported a 500: the object is removed before the error is reported,
    // the client's retry (as every Kafka client does for KAFKA_STORAGE_ERROR) gets the same
    // offset, and nothing is duplicated.
    b.storage
        .failpoints
        .put_lands_then_fails
        .store(1, Ordering::Relaxed);
    let mut attempts = 0;
    let (code, base) = loop {
        attempts += 1;
        let r = raw.produce_batch("landed", 0, one_record(b"b"));
        if r.0 != 56 || attempts > 5 {
            break r;
        }
    };
    assert_eq!((code, base), (0, 1), "after {attempts} attempt(s)");
    assert_eq!(raw.produce_batch("landed", 0, one_record(b"c")), (0, 2));
    let want = vec![(0, b"a".to_vec()), (1, b"b".to_vec()), (2, b"c".to_vec())];
    assert_eq!(read_all(&mut raw, "landed"), want);
    drop(raw);
    b.stop();
    let b = TestBroker::start(s);
    let mut raw = Raw::connect(b.kafka);
    assert_eq!(read_all(&mut raw, "landed"), want);
}

/// Peak resident memory of this process so far (VmHWM), MB: the broker runs in-process.
fn rss_mb() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = s.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace()
        .nth(1)
        .unwrap()
        .parse::<u64>()
        .unwrap()
        / 1024
}

/// 16 zstd batches of zeros in one ~100 KB request (each decompresses to 32 MiB) and then
/// hostile Fetches of them. Decompression used to be unbounded in aggregate (every limit
/// counted compressed bytes: 185 MB → 746 MB for one request, 1 GB for a 1 KiB Fetch). Now
/// validation streams, row groups and flushes count decoded bytes, and the broker (running in
/// this test process) stays under the stated bound.
#[test]
fn compression_bomb_and_hostile_fetch_stay_bounded() {
    /// Resident memory the whole test may add on top of the idle broker (MB).
    const BOUND_MB: u64 = 500;
    let dir = tempfile::tempdir().unwrap();
    let b = TestBroker::start(settings(dir.path().to_str().unwrap()));
    let mut raw = Raw::connect(b.kafka);
    assert_eq!(create(&mut raw, "bomb", 16, &[]), 0);
    let zeros = OwnedRecord {
        offset: 0,
        timestamp: 1_700_000_000_000,
        key: None,
        value: Some(Bytes::from(vec![0u8; 32 << 20])),
        headers: vec![],
    };
    let bomb = Bytes::from(encode_batch(&BatchMeta::plain(0), &[zeros], Codec::Zstd, 3).unwrap());
    assert!(bomb.len() < 64 * 1024, "{} bytes", bomb.len());
    let base = rss_mb();
    let mut req = produce_request("bomb", 0, bomb.clone());
    let pd = req.topic_data[0].partition_data[0].clone();
    req.topic_data[0].partition_data = (0..16)
        .map(|p| {
            let mut d = pd.clone();
            d.index = p;
            d
        })
        .collect();
    let ResponseKind::Produce(r) = raw.request(ApiKey::Produce, 9, RequestKind::Produce(req))
    else {
        panic!()
    };
    for p in &r.responses[0].partition_responses {
        assert_eq!(p.error_code, 0, "partition {}", p.index);
    }
    let after_produce = rss_mb();
    // A 1 KiB Fetch, a max_bytes = -1 Fetch and a Fetch of all 16 partitions.
    for (max, part_max) in [(1024, 1024), (-1, -1), (0, 0)] {
        let req = fetch_req("bomb", 0, 0, max, part_max);
        let ResponseKind::Fetch(resp) = raw.request(ApiKey::Fetch, 12, RequestKind::Fetch(req))
        else {
            panic!()
        };
        let n = resp.responses[0].partitions[0]
            .records
            .as_ref()
            .map_or(0, |r| r.len());
        assert!(n > 0, "at least one batch");
        assert!(n < 40 << 20, "one batch, not more: {n}");
    }
    let mut all = fetch_req("bomb", 0, 0, 55 << 20, 55 << 20);
    let tmpl = all.topics[0].partitions[0].clone();
    all.topics[0].partitions = (0..16)
        .map(|p| {
            let mut x = tmpl.clone();
            x.partition = p;
            x
        })
        .collect();
    let ResponseKind::Fetch(resp) = raw.request(ApiKey::Fetch, 12, RequestKind::Fetch(all)) else {
        panic!()
    };
    let total: usize = resp.responses[0]
        .partitions
        .iter()
        .map(|p| p.records.as_ref().map_or(0, |r| r.len()))
        .sum();
    assert!(
        total <= 55 << 20 || total < 40 << 20,
        "fetch.max.bytes holds: {total}"
    );
    let peak = rss_mb();
    println!("peak RSS: idle {base} MB, after produce {after_produce} MB, after fetches {peak} MB");
    assert!(
        peak < base + BOUND_MB,
        "RSS grew from {base} MB to {peak} MB (bound: +{BOUND_MB} MB)"
    );
}

/// Fetch limits as Kafka has them: max_bytes <= 0 used to mean unlimited; now the response
/// is min(request, broker fetch_max_bytes) but at least one batch; min_bytes = 0 answers at
/// once instead of waiting max_wait_ms.
#[test]
fn fetch_limits_follow_kafka() {
    let mut s = settings("memory://");
    s.fetch_max_bytes = 4096;
    let b = TestBroker::start(s);
    let mut raw = Raw::connect(b.kafka);
    raw.create_topic("limits", &[]);
    let big = vec![7u8; 3000];
    for _ in 0..4 {
        assert_eq!(raw.produce_batch("limits", 0, one_record(&big)).0, 0);
    }
    let fetch_len = |raw: &mut Raw, max: i32, part_max: i32| {
        let req = fetch_req("limits", 0, 0, max, part_max);
        let ResponseKind::Fetch(resp) = raw.request(ApiKey::Fetch, 12, RequestKind::Fetch(req))
        else {
            panic!()
        };
        count_batches(
            resp.responses[0].partitions[0]
                .records
                .clone()
                .unwrap_or_default(),
        )
    };
    assert_eq!(
        fetch_len(&mut raw, -1, 1 << 20),
        1,
        "max_bytes -1 is not unlimited"
    );
    assert_eq!(fetch_len(&mut raw, 0, 1 << 20), 1, "at least one batch");
    assert_eq!(
        fetch_len(&mut raw, 1 << 30, 1 << 30),
        1,
        "broker fetch_max_bytes caps"
    );
    // min_bytes = 0 on an empty partition: answered at once, not after max_wait_ms.
    raw.create_topic("empty", &[]);
    let mut req = fetch_req("empty", 0, 0, 1 << 20, 1 << 20);
    req.min_bytes = 0;
    req.max_wait_ms = 5000;
    let t = Instant::now();
    raw.request(ApiKey::Fetch, 12, RequestKind::Fetch(req));
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
}

/// Connections beyond max_connections (and max_connections_per_ip) are closed at once; there
/// used to be no cap at all.
#[test]
fn connection_limits_close_extra_connections() {
    let mut s = settings("memory://");
    s.max_connections = 3;
    let b = TestBroker::start(s);
    let mut open: Vec<Raw> = (0..3).map(|_| Raw::connect(b.kafka)).collect();
    for r in open.iter_mut() {
        r.request(
            ApiKey::ApiVersions,
            3,
            RequestKind::ApiVersions(ApiVersionsRequest::default()),
        );
    }
    let mut extra = Raw::connect(b.kafka);
    assert!(extra.is_closed(), "the fourth connection is closed");
    open.pop();
    std::thread::sleep(Duration::from_millis(300));
    let mut again = Raw::connect(b.kafka);
    again.request(
        ApiKey::ApiVersions,
        3,
        RequestKind::ApiVersions(ApiVersionsRequest::default()),
    );
    drop(open);
    drop(again);
    let mut s = settings("memory://");
    s.max_connections_per_ip = 2;
    let b = TestBroker::start(s);
    let _a = Raw::connect(b.kafka);
    let _b = Raw::connect(b.kafka);
    std::thread::sleep(Duration::from_millis(100));
    let mut c = Raw::connect(b.kafka);
    assert!(c.is_closed(), "the third connection from one IP is closed");
}

/// Broker-wide partition cap and range-checked topic configs: one CreateTopics could ask for
/// 10,000 partitions per topic with no total bound, and max.message.bytes accepted any i64.
#[test]
fn partition_cap_and_config_ranges() {
    let mut s = settings("memory://");
    s.max_partitions = 10;
    let b = TestBroker::start(s);
    let mut raw = Raw::connect(b.kafka);
    assert_eq!(create(&mut raw, "eight", 8, &[]), 0);
    assert_eq!(
        create(&mut raw, "five", 5, &[]),
        44,
        "POLICY_VIOLATION beyond the cap"
    );
    assert_eq!(create(&mut raw, "two", 2, &[]), 0);
    assert_eq!(create(&mut raw, "one", 1, &[]), 44, "the cap is reached");
    let mut s = settings("memory://");
    s.max_partitions = 100;
    let b2 = TestBroker::start(s);
    let mut raw2 = Raw::connect(b2.kafka);
    assert_eq!(
        create(
            &mut raw2,
            "huge",
            1,
            &[("max.message.bytes", "99999999999")]
        ),
        40,
        "INVALID_CONFIG"
    );
    assert_eq!(
        create(&mut raw2, "neg", 1, &[("max.message.bytes", "-1")]),
        40,
        "INVALID_CONFIG"
    );
    assert_eq!(
        create(&mut raw2, "ok", 1, &[("max.message.bytes", "2097152")]),
        0
    );
}

/// Nothing bounded data that was not durable yet: an acks=0 producer was answered (not at
/// all) as soon as offsets were assigned and could fill memory while the store stalled. Now
/// the broker-wide max_unflushed_bytes stops reading Produce requests until flushes catch up.
#[test]
fn unflushed_bytes_apply_back_pressure() {
    let mut s = settings("memory://");
    s.max_unflushed_bytes = 8 << 20;
    s.max_request_bytes = 2 << 20;
    s.max_message_bytes = 1 << 20;
    let b = TestBroker::start(s);
    let mut raw = Raw::connect(b.kafka);
    raw.create_topic("stalled", &[]);
    b.storage
        .failpoints
        .put_delay_ms
        .store(60_000, Ordering::Relaxed);
    let value = vec![1u8; 900 * 1024];
    let mut req = produce_request("stalled", 0, one_record(&value));
    req.acks = 0;
    let frame = encode_request(ApiKey::Produce, 9, 1, &RequestKind::Produce(req));
    let stream = raw.stream.try_clone().unwrap();
    stream
        .set_write_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    let mut sent = 0usize;
    let mut w = &stream;
    use std::io::Write;
    while sent < 200 << 20 {
        match w.write_all(&frame) {
            Ok(()) => sent += frame.len(),
            Err(_) => break,
        }
    }
    println!("accepted {} MiB before back-pressure", sent >> 20);
    assert!(
        sent < 64 << 20,
        "writes block once 8 MiB are unflushed (plus socket buffers): {} MiB sent",
        sent >> 20
    );
    b.storage
        .failpoints
        .put_delay_ms
        .store(0, Ordering::Relaxed);
}

fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(files_under(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

fn parquet_files(root: &std::path::Path, topic: &str) -> usize {
    files_under(&root.join(format!("data/topic={topic}")))
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
        .count()
}

/// Recovery used to delete all of a topic's data when its metadata document did not parse
/// (treated as orphaned). Now the document is quarantined, the data kept, and restoring the
/// document brings the topic back intact. A deletion interrupted after its tombstone (even
/// before the metadata went) is finished; data with neither metadata nor tombstone is kept.
///
/// Runs twice: with the data still in write-ahead objects shared by both topics (the objects
/// stay: they hold data of the unknown topic), and compacted into the table layout.
#[test]
fn recovery_never_deletes_data_on_a_guess() {
    recovery_never_deletes_data_on_a_guess_with(false);
    recovery_never_deletes_data_on_a_guess_with(true);
}

fn recovery_never_deletes_data_on_a_guess_with(compacted: bool) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let mut s = settings(root.to_str().unwrap());
    if compacted {
        s.storage.compaction_delay_ms = Some(0);
        s.storage.merge_interval_ms = 100;
    } else {
        s.storage.compaction_delay_ms = Some(3_600_000);
    }
    let b = TestBroker::start(s.clone());
    let mut raw = Raw::connect(b.kafka);
    raw.create_topic("kept", &[]);
    raw.create_topic("doomed", &[]);
    for v in [b"x", b"y", b"z"] {
        assert_eq!(raw.produce_batch("kept", 0, one_record(v)).0, 0);
        assert_eq!(raw.produce_batch("doomed", 0, one_record(v)).0, 0);
    }
    drop(raw);
    let wal_files = || files_under(&root.join("wal")).len();
    // Write-ahead objects holding a topic's data (their footer lists the partitions).
    let wal_of = |topic: &str| {
        let needle = format!("\"topic\":\"{topic}\"");
        files_under(&root.join("wal"))
            .iter()
            .filter(|f| {
                let b = std::fs::read(f).unwrap_or_default();
                b.windows(needle.len()).any(|w| w == needle.as_bytes())
            })
            .count()
    };
    if compacted {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while wal_files() > 0 || parquet_files(root, "doomed") == 0 {
            assert!(std::time::Instant::now() < deadline, "never compacted");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    b.stop();
    if !compacted {
        assert!(wal_files() > 0);
        assert_eq!(parquet_files(root, "kept"), 0, "not compacted yet");
    }
    let kept_meta = root.join("meta/topics/kept.json");
    let good = std::fs::read(&kept_meta).unwrap();
    std::fs::write(&kept_meta, b"{ not json").unwrap();
    // An interrupted deletion of "doomed": its tombstone exists, its metadata still too.
    let doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(root.join("meta/topics/doomed.json")).unwrap())
            .unwrap();
    let id = doc["id"].as_str().unwrap().to_string();
    std::fs::create_dir_all(root.join("meta/deleted")).unwrap();
    std::fs::write(root.join(format!("meta/deleted/{id}.json")), b"{}").unwrap();
    let before = parquet_files(root, "kept") + wal_of("kept");
    assert!(before > 0);
    let b = TestBroker::start(s.clone());
    assert_eq!(
        parquet_files(root, "kept") + wal_of("kept"),
        before,
        "no data deleted"
    );
    let quarantined = files_under(&root.join("meta/quarantine"));
    assert_eq!(quarantined.len(), 1, "{quarantined:?}");
    assert!(!kept_meta.exists());
    assert_eq!(
        parquet_files(root, "doomed") + wal_of("doomed"),
        0,
        "the interrupted deletion finished"
    );
    assert!(!root.join("meta/topics/doomed.json").exists());
    assert!(files_under(&root.join("meta/deleted")).is_empty());
    b.stop();
    // The operator restores the document: everything is back.
    std::fs::write(&kept_meta, good).unwrap();
    let b = TestBroker::start(s);
    let mut raw = Raw::connect(b.kafka);
    let got: Vec<Vec<u8>> = read_all(&mut raw, "kept")
        .into_iter()
        .map(|r| r.1)
        .collect();
    assert_eq!(got, vec![b"x".to_vec(), b"y".to_vec(), b"z".to_vec()]);
}
