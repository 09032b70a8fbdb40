//! Compacted topics (`cleanup.policy=compact`) with a real client: the newest value of each key
//! survives with its offset, older ones and expired tombstones go, keyless records are refused.

mod common;

use common::*;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// (offset, key, value) of every record from the beginning of partition 0.
fn read_all(bootstrap: &str, topic: &str) -> Vec<(i64, String, Option<String>)> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "compaction-check")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let (_, hi) = c
        .fetch_watermarks(topic, 0, Duration::from_secs(10))
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning)
        .unwrap();
    c.assign(&tpl).unwrap();
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        match c.poll(Duration::from_millis(500)) {
            Some(Ok(m)) => {
                let key = String::from_utf8_lossy(m.key().unwrap_or_default()).to_string();
                let value = m.payload().map(|v| String::from_utf8_lossy(v).to_string());
                out.push((m.offset(), key, value));
                if m.offset() >= hi - 1 {
                    break;
                }
            }
            Some(Err(e)) => panic!("consume: {e}"),
            None => {}
        }
    }
    out
}

/// 100 keys × 20 versions, then tombstones for 10 keys: once cleaned, a consumer from the
/// beginning sees exactly the newest value of each key (offsets kept, gaps between them), in
/// offset order; after `delete.retention.ms` the tombstones are gone too. A keyless record is
/// refused with INVALID_RECORD. The cleaned log survives a restart.
#[test]
fn compacted_topic_keeps_the_newest_value_per_key() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = settings(dir.path().to_str().unwrap());
    s.storage.compaction_delay_ms = Some(200);
    s.storage.merge_interval_ms = 200;
    let b = TestBroker::start(s.clone());
    let mut raw = Raw::connect(b.kafka);
    raw.create_topic(
        "table",
        &[
            ("cleanup.policy", "compact"),
            ("delete.retention.ms", "3000"),
            // Under load the tombstones may reach the table layout only after a first
            // cleaning: a small dirty tail must still be cleaned (the default ratio, 0.5,
            // would wait for as many dirty bytes as clean ones).
            ("min.cleanable.dirty.ratio", "0.01"),
        ],
    );
    let p: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", b.bootstrap())
        .set("acks", "all")
        .set("linger.ms", "5")
        .create()
        .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut newest: BTreeMap<String, (i64, Option<String>)> = BTreeMap::new();
    rt.block_on(async {
        for v in 0..20 {
            let mut pending = Vec::new();
            for k in 0..100 {
                let key = format!("k{k:03}");
                let value = format!("v{v}-{key}");
                let fut = p
                    .send_result(
                        FutureRecord::to("table")
                            .partition(0)
                            .key(&key)
                            .payload(&value),
                    )
                    .map_err(|(e, _)| e)
                    .unwrap();
                pending.push((key.clone(), value.clone(), fut));
            }
            for (key, value, f) in pending {
                let off = f.await.unwrap().unwrap().offset;
                newest.insert(key, (off, Some(value)));
            }
        }
        for k in 0..10 {
            let key = format!("k{k:03}");
            let off = p
                .send(
                    FutureRecord::<str, str>::to("table").partition(0).key(&key),
                    Duration::from_secs(10),
                )
                .await
                .unwrap()
                .offset;
            newest.insert(key, (off, None));
        }
        // The last record is live: the newest record of a log is always kept.
        let off = p
            .send(
                FutureRecord::to("table")
                    .partition(0)
                    .key("k050")
                    .payload("v20-k050"),
                Duration::from_secs(10),
            )
            .await
            .unwrap()
            .offset;
        newest.insert("k050".into(), (off, Some("v20-k050".into())));
        // A record without a key: refused, per record, as Kafka does.
        let err = p
            .send(
                FutureRecord::<(), str>::to("table")
                    .partition(0)
                    .payload("no key"),
                Duration::from_secs(10),
            )
            .await
            .unwrap_err();
        assert!(
            matches!(
                err.0,
                KafkaError::MessageProduction(RDKafkaErrorCode::InvalidRecord)
            ),
            "{err:?}"
        );
    });
    let expected = |with_tombstones: bool| -> Vec<(i64, String, Option<String>)> {
        let mut v: Vec<(i64, String, Option<String>)> = newest
            .iter()
            .filter(|(_, (_, val))| with_tombstones || val.is_some())
            .map(|(k, (off, val))| (*off, k.clone(), val.clone()))
            .collect();
        v.sort();
        v
    };
    // The cleaner may already have run (its delay is 200 ms): whatever the moment, a reader
    // sees records in offset order, at most the 2,011 written, and every newest live value.
    let first = read_all(&b.bootstrap(), "table");
    assert!(first.len() <= 2011, "{} records", first.len());
    assert!(first.windows(2).all(|w| w[0].0 < w[1].0), "offset order");
    for live in expected(false) {
        assert!(first.contains(&live), "{live:?} missing before cleaning");
    }
    // Cleaned: the newest value per key, tombstones still there.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut got = read_all(&b.bootstrap(), "table");
    while got != expected(true) && got != expected(false) {
        assert!(
            Instant::now() < deadline,
            "never compacted: {} records",
            got.len()
        );
        std::thread::sleep(Duration::from_millis(300));
        got = read_all(&b.bootstrap(), "table");
    }
    // After delete.retention.ms the tombstones go as well.
    let deadline = Instant::now() + Duration::from_secs(60);
    while got != expected(false) {
        assert!(
            Instant::now() < deadline,
            "tombstones kept: {} records",
            got.len()
        );
        std::thread::sleep(Duration::from_millis(300));
        got = read_all(&b.bootstrap(), "table");
    }
    assert_eq!(got.len(), 90);
    drop(raw);
    b.stop();
    let b = TestBroker::start(s);
    assert_eq!(
        read_all(&b.bootstrap(), "table"),
        expected(false),
        "after restart"
    );
    b.stop();
}
