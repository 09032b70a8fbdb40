//! Broker core end to end with real librdkafka clients (the `rdkafka` crate) and raw protocol
//! requests: produce/consume fidelity, long-poll, ListOffsets by timestamp, topic admin, and
//! hostile input.

mod common;

use common::*;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use std::time::{Duration, Instant};

fn producer(b: &TestBroker) -> BaseProducer {
    ClientConfig::new()
        .set("bootstrap.servers", b.bootstrap())
        .set("linger.ms", "5")
        .set("acks", "all")
        .create()
        .expect("producer")
}

fn consumer(b: &TestBroker) -> BaseConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", b.bootstrap())
        .set("group.id", "unused-assign-only")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        .create()
        .expect("consumer")
}

fn admin(b: &TestBroker) -> AdminClient<DefaultClientContext> {
    ClientConfig::new()
        .set("bootstrap.servers", b.bootstrap())
        .create()
        .expect("admin")
}

fn create_topic(b: &TestBroker, name: &str, partitions: i32) {
    let a = admin(b);
    let res = futures::executor::block_on(a.create_topics(
        &[NewTopic::new(name, partitions, TopicReplication::Fixed(1))],
        &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))),
    ))
    .expect("create_topics");
    assert!(res[0].is_ok(), "{res:?}");
}

type Expected = (
    Option<Vec<u8>>,
    Option<Vec<u8>>,
    Vec<(String, Option<Vec<u8>>)>,
);

fn record(i: usize) -> Expected {
    let key = if i.is_multiple_of(5) {
        None
    } else {
        Some(format!("key-{i}").into_bytes())
    };
    let value = match i % 7 {
        0 => None,
        1 => Some(Vec::new()),
        _ => Some(format!("value-{i}-{}", "x".repeat(i % 50)).into_bytes()),
    };
    let headers = if i.is_multiple_of(3) {
        vec![
            ("h".to_string(), Some(format!("{i}").into_bytes())),
            ("h".to_string(), None),
            ("other".to_string(), Some(Vec::new())),
        ]
    } else {
        vec![]
    };
    (key, value, headers)
}

/// 10,000 records over 3 partitions with keys, null and empty values and duplicate headers come
/// back byte-identical and in order.
#[test]
fn ten_thousand_records_round_trip_byte_identical() {
    let b = TestBroker::start(settings("memory://"));
    create_topic(&b, "fidelity", 3);
    let p = producer(&b);
    let n = 10_000;
    for i in 0..n {
        let (k, v, hs) = record(i);
        let mut headers = OwnedHeaders::new();
        for (hk, hv) in &hs {
            headers = headers.insert(Header {
                key: hk,
                value: hv.as_deref(),
            });
        }
        let mut rec: BaseRecord<Vec<u8>, Vec<u8>> =
            BaseRecord::to("fidelity").partition((i % 3) as i32);
        if let Some(k) = &k {
            rec = rec.key(k);
        }
        if let Some(v) = &v {
            rec = rec.payload(v);
        }
        if !hs.is_empty() {
            rec = rec.headers(headers);
        }
        loop {
            match p.send(rec) {
                Ok(()) => break,
                Err((_, r)) => {
                    p.poll(Duration::from_millis(10));
                    rec = r;
                }
            }
        }
        p.poll(Duration::ZERO);
    }
    p.flush(Duration::from_secs(30)).expect("flush");

    let c = consumer(&b);
    let mut tpl = TopicPartitionList::new();
    for part in 0..3 {
        tpl.add_partition_offset("fidelity", part, Offset::Beginning)
            .unwrap();
    }
    c.assign(&tpl).unwrap();
    let mut next = [0usize, 1, 2];
    let mut got = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    while got < n && Instant::now() < deadline {
        let Some(m) = c.poll(Duration::from_millis(500)) else {
            continue;
        };
        let m = m.expect("message");
        let part = m.partition() as usize;
        let i = next[part];
        assert_eq!(m.offset() as usize, i / 3, "offsets dense per partition");
        let (k, v, hs) = record(i);
        assert_eq!(m.key().map(|k| k.to_vec()), k, "key of record {i}");
        assert_eq!(m.payload().map(|v| v.to_vec()), v, "value of record {i}");
        let got_headers: Vec<(String, Option<Vec<u8>>)> = m
            .headers()
            .map(|h| {
                h.iter()
                    .map(|h| (h.key.to_string(), h.value.map(|v| v.to_vec())))
                    .collect()
            })
            .unwrap_or_default();
        assert_eq!(got_headers, hs, "headers of record {i}");
        next[part] += 3;
        got += 1;
    }
    assert_eq!(got, n);
}

fn raw_produce(b: &TestBroker, topic: &str, values: &[&[u8]]) -> i64 {
    let mut raw = Raw::connect(b.kafka);
    let req = produce_request(topic, 0, batch(values));
    match raw.request(ApiKey::Produce, 9, RequestKind::Produce(req)) {
        ResponseKind::Produce(r) => {
            let pr = &r.responses[0].partition_responses[0];
            assert_eq!(pr.error_code, 0);
            pr.base_offset
        }
        other => panic!("{other:?}"),
    }
}

/// A fetch waiting at the end of the log returns as soon as data arrives, not at max_wait_ms.
#[test]
fn long_poll_fetch_returns_when_data_arrives() {
    let b = TestBroker::start(settings("memory://"));
    create_topic(&b, "longpoll", 1);
    assert_eq!(raw_produce(&b, "longpoll", &[b"first"]), 0);
    let addr = b.kafka;
    let fetcher = std::thread::spawn(move || {
        let mut raw = Raw::connect(addr);
        let mut fp = FetchPartition::default();
        fp.partition = 0;
        fp.fetch_offset = 1;
        fp.partition_max_bytes = 1 << 20;
        let mut ft = FetchTopic::default();
        ft.topic = TopicName(StrBytes::from_static_str("longpoll"));
        ft.partitions = vec![fp];
        let mut req = FetchRequest::default();
        req.max_wait_ms = 10_000;
        req.min_bytes = 1;
        req.max_bytes = 1 << 20;
        req.replica_id = BrokerId(-1);
        req.topics = vec![ft];
        let start = Instant::now();
        let resp = raw.request(ApiKey::Fetch, 12, RequestKind::Fetch(req));
        (start.elapsed(), resp)
    });
    std::thread::sleep(Duration::from_millis(700));
    assert_eq!(raw_produce(&b, "longpoll", &[b"second"]), 1);
    let (elapsed, resp) = fetcher.join().unwrap();
    let ResponseKind::Fetch(resp) = resp else {
        panic!()
    };
    let pd = &resp.responses[0].partitions[0];
    assert_eq!(pd.error_code, 0);
    assert_eq!(pd.high_watermark, 2);
    assert_eq!(count_batches(pd.records.clone().unwrap()), 1);
    assert!(
        elapsed >= Duration::from_millis(500),
        "waited for data: {elapsed:?}"
    );
    assert!(
        elapsed < Duration::from_secs(5),
        "woken by the append, not the timeout: {elapsed:?}"
    );
}

/// ListOffsets by timestamp finds the first offset at or after the target, also after the
/// data moved to cold segments (a restart on the same folder).
#[test]
fn list_offsets_by_timestamp() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_str().unwrap().to_string();
    let base_ts = 1_700_000_000_000i64;
    {
        let b = TestBroker::start(settings(&path));
        create_topic(&b, "times", 1);
        let p = producer(&b);
        for i in 0..100i64 {
            let payload = format!("v{i}");
            p.send(
                BaseRecord::<(), String>::to("times")
                    .partition(0)
                    .payload(&payload)
                    .timestamp(base_ts + i * 1000),
            )
            .map_err(|(e, _)| e)
            .unwrap();
            if i % 10 == 9 {
                p.flush(Duration::from_secs(10)).unwrap();
            }
        }
        p.flush(Duration::from_secs(10)).unwrap();
        check_times(&b, base_ts);
        b.stop();
    }
    let b = TestBroker::start(settings(&path));
    check_times(&b, base_ts);
}

fn check_times(b: &TestBroker, base_ts: i64) {
    let c = consumer(b);
    for (target, want) in [
        (base_ts, 0),
        (base_ts + 42_500, 43),
        (base_ts + 99_000, 99),
        (base_ts + 1_000_000, -1),
    ] {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset("times", 0, Offset::Offset(target))
            .unwrap();
        let r = c
            .offsets_for_times(tpl, Duration::from_secs(10))
            .expect("offsets_for_times");
        let got = r.find_partition("times", 0).unwrap().offset();
        let want = if want < 0 {
            Offset::End
        } else {
            Offset::Offset(want)
        };
        assert_eq!(got, want, "target {target}");
    }
    let (lo, hi) = c
        .fetch_watermarks("times", 0, Duration::from_secs(10))
        .unwrap();
    assert_eq!((lo, hi), (0, 100));
}

/// A batch of one record at `ts` (the common helper's batch with its timestamps rewritten).
fn batch_at(value: &[u8], ts: i64) -> bytes::Bytes {
    let mut b = batch(&[value]).to_vec();
    b[27..35].copy_from_slice(&ts.to_be_bytes());
    b[35..43].copy_from_slice(&ts.to_be_bytes());
    let crc = crc32c::crc32c(&b[21..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    bytes::Bytes::from(b)
}

/// A timestamp lookup whose answer lies in the hot tail while older batches of the same
/// flushed segment were evicted from memory (a small hot-tail budget, as under load): the
/// scan goes on from the segment to the tail instead of stopping (librdkafka 0054 once saw
/// -1 here in a busy CI run).
#[test]
fn timestamp_lookup_reaches_the_hot_tail_past_an_evicted_batch() {
    let mut s = settings("memory://");
    s.storage.hot_tail_bytes = 1; // every durable batch but a partition's newest is evicted
    s.batching.flush_interval_ms = Some(1000);
    let b = TestBroker::start(s);
    let mut raw = Raw::connect(b.kafka);
    raw.create_topic("tail", &[]);
    raw.create_topic("warm", &[]);
    // A first flush starts at once; what arrives in the following second waits for the next.
    assert_eq!(raw.produce_batch("warm", 0, batch(&[b"w"])).0, 0);
    // Two pipelined requests within one flush interval: one segment holding both batches.
    for (i, (v, ts)) in [(&b"old"[..], 1234), (&b"new"[..], 999_999_999_999)]
        .into_iter()
        .enumerate()
    {
        let req = produce_request("tail", 0, batch_at(v, ts));
        raw.send_bytes(&encode_request(
            ApiKey::Produce,
            9,
            100 + i as i32,
            &RequestKind::Produce(req),
        ));
    }
    for want in [0, 1] {
        let (_, r) = raw.read_response(ApiKey::Produce, 9).unwrap();
        let ResponseKind::Produce(r) = r else {
            panic!()
        };
        let p = &r.responses[0].partition_responses[0];
        assert_eq!((p.error_code, p.base_offset), (0, want));
    }
    // By timestamp, and the newest timestamp (-3, v7+).
    for (target, want) in [
        (1234, (0, 1234)),
        (999_999_999_999, (1, 999_999_999_999)),
        (-3, (1, 999_999_999_999)),
    ] {
        let mut p = list_offsets_request::ListOffsetsPartition::default();
        p.partition_index = 0;
        p.timestamp = target;
        let mut t = list_offsets_request::ListOffsetsTopic::default();
        t.name = TopicName(StrBytes::from_static_str("tail"));
        t.partitions = vec![p];
        let mut req = ListOffsetsRequest::default();
        req.replica_id = BrokerId(-1);
        req.topics = vec![t];
        let ResponseKind::ListOffsets(r) =
            raw.request(ApiKey::ListOffsets, 8, RequestKind::ListOffsets(req))
        else {
            panic!()
        };
        let p = &r.topics[0].partitions[0];
        assert_eq!(
            (p.error_code, p.offset, p.timestamp),
            (0, want.0, want.1),
            "target {target}"
        );
    }
    b.stop();
}

/// CreateTopics / DeleteTopics through librdkafka's AdminClient, with Metadata reflecting them.
#[test]
fn topic_create_and_delete() {
    let b = TestBroker::start(settings("memory://"));
    let a = admin(&b);
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    let res = futures::executor::block_on(a.create_topics(
        &[
            NewTopic::new("admin-a", 4, TopicReplication::Fixed(1)).set("retention.ms", "60000"),
            NewTopic::new("bad/name", 1, TopicReplication::Fixed(1)),
            NewTopic::new("admin-b", 1, TopicReplication::Fixed(3)),
        ],
        &opts,
    ))
    .unwrap();
    assert!(res[0].is_ok());
    assert!(res[1].is_err(), "invalid name refused");
    assert!(res[2].is_err(), "replication factor 3 refused");
    let again = futures::executor::block_on(a.create_topics(
        &[NewTopic::new("admin-a", 4, TopicReplication::Fixed(1))],
        &opts,
    ))
    .unwrap();
    assert_eq!(
        again[0].as_ref().unwrap_err().1,
        rdkafka::types::RDKafkaErrorCode::TopicAlreadyExists
    );
    let md = a
        .inner()
        .fetch_metadata(Some("admin-a"), Duration::from_secs(10))
        .unwrap();
    assert_eq!(md.topics()[0].partitions().len(), 4);
    let del = futures::executor::block_on(a.delete_topics(&["admin-a", "missing"], &opts)).unwrap();
    assert!(del[0].is_ok());
    assert!(del[1].is_err());
    let mut raw = Raw::connect(b.kafka);
    let mut req = MetadataRequest::default();
    let mut t = kafka_protocol::messages::metadata_request::MetadataRequestTopic::default();
    t.name = Some(TopicName(StrBytes::from_static_str("admin-a")));
    req.topics = Some(vec![t]);
    req.allow_auto_topic_creation = false;
    let ResponseKind::Metadata(md) = raw.request(ApiKey::Metadata, 12, RequestKind::Metadata(req))
    else {
        panic!()
    };
    assert_eq!(md.topics[0].error_code, 3, "deleted topic is unknown");
}

/// A client pipelining more request bytes than `max_in_flight_bytes_per_connection` is slowed
/// down (the broker stops reading), never refused: every produce is answered, in order, and
/// offsets follow the request order even though compressed batches (validated on the blocking
/// pool, slower) alternate with uncompressed ones.
#[test]
fn pipelined_produces_beyond_the_in_flight_byte_budget_are_answered_in_order() {
    use heraclitus::protocol::compression::Codec;
    use heraclitus::protocol::records::{encode_batch, BatchMeta, OwnedRecord};
    let mut s = settings("memory://");
    s.max_in_flight_bytes_per_connection = 64 * 1024;
    let b = TestBroker::start(s);
    let mut raw = Raw::connect(b.kafka);
    raw.create_topic("budget", &[]);
    let value = vec![7u8; 3000];
    let zstd_batch = || {
        let rec = OwnedRecord {
            offset: 0,
            timestamp: 1_700_000_000_000,
            key: None,
            value: Some(bytes::Bytes::from(vec![b'z'; 512 * 1024])),
            headers: vec![],
        };
        bytes::Bytes::from(encode_batch(&BatchMeta::plain(0), &[rec], Codec::Zstd, 3).unwrap())
    };
    let n = 60;
    let mut frames = Vec::new();
    for i in 0..n {
        let records = if i % 2 == 0 {
            zstd_batch()
        } else {
            batch(&[&value[..]])
        };
        let req = produce_request("budget", 0, records);
        frames.extend(encode_request(
            ApiKey::Produce,
            9,
            1000 + i,
            &RequestKind::Produce(req),
        ));
    }
    // ~90 KiB of uncompressed requests plus 30 small zstd ones, written at once.
    raw.send_bytes(&frames);
    for i in 0..n {
        let (correlation, resp) = raw
            .read_response(ApiKey::Produce, 9)
            .expect("a response for every request");
        assert_eq!(correlation, 1000 + i, "responses in request order");
        let ResponseKind::Produce(r) = resp else {
            panic!()
        };
        let p = &r.responses[0].partition_responses[0];
        assert_eq!((p.error_code, p.base_offset), (0, i as i64));
    }
}
