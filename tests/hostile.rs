//! Hostile input over raw TCP: every case gets a Kafka error or a closed connection, the broker
//! never panics, and it keeps serving other clients.

mod common;

use common::*;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

fn api_versions_ok(b: &TestBroker) {
    let mut raw = Raw::connect(b.kafka);
    let ResponseKind::ApiVersions(r) = raw.request(
        ApiKey::ApiVersions,
        3,
        RequestKind::ApiVersions(ApiVersionsRequest::default()),
    ) else {
        panic!()
    };
    assert_eq!(r.error_code, 0);
    assert!(r
        .api_keys
        .iter()
        .any(|k| k.api_key == ApiKey::Produce as i16));
}

fn produce_raw(b: &TestBroker, records: bytes::Bytes) -> i16 {
    let mut raw = Raw::connect(b.kafka);
    let mut pd = PartitionProduceData::default();
    pd.index = 0;
    pd.records = Some(records);
    let mut td = TopicProduceData::default();
    td.name = TopicName(StrBytes::from_static_str("hostile"));
    td.partition_data = vec![pd];
    let mut req = ProduceRequest::default();
    req.acks = -1;
    req.timeout_ms = 5000;
    req.topic_data = vec![td];
    let ResponseKind::Produce(r) = raw.request(ApiKey::Produce, 9, RequestKind::Produce(req))
    else {
        panic!()
    };
    r.responses[0].partition_responses[0].error_code
}

fn broker_with_topic() -> TestBroker {
    let b = TestBroker::start(settings("memory://"));
    let mut raw = Raw::connect(b.kafka);
    let mut t = kafka_protocol::messages::metadata_request::MetadataRequestTopic::default();
    t.name = Some(TopicName(StrBytes::from_static_str("hostile")));
    let mut req = MetadataRequest::default();
    req.topics = Some(vec![t]);
    req.allow_auto_topic_creation = true;
    raw.request(ApiKey::Metadata, 9, RequestKind::Metadata(req));
    b
}

#[test]
fn negative_length_closes_connection() {
    let b = broker_with_topic();
    let mut raw = Raw::connect(b.kafka);
    raw.send_bytes(&(-1i32).to_be_bytes());
    assert!(raw.is_closed());
    api_versions_ok(&b);
}

#[test]
fn length_over_cap_closes_connection_without_allocating() {
    let b = broker_with_topic();
    let mut raw = Raw::connect(b.kafka);
    raw.send_bytes(&(i32::MAX).to_be_bytes());
    assert!(raw.is_closed());
    api_versions_ok(&b);
}

#[test]
fn garbage_header_closes_connection() {
    let b = broker_with_topic();
    // Metadata v1 whose client id claims 30000 bytes that are not there.
    let mut raw = Raw::connect(b.kafka);
    let mut f = vec![0, 0, 0, 10, 0, 3, 0, 1, 0, 0, 0, 7, 0x75, 0x30];
    raw.send_bytes(&f);
    assert!(raw.is_closed());
    // Pure noise.
    let mut raw = Raw::connect(b.kafka);
    f = vec![0, 0, 0, 12, 0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4, 5, 6, 7, 8];
    raw.send_bytes(&f);
    assert!(raw.is_closed());
    api_versions_ok(&b);
}

#[test]
fn unknown_api_key_closes_connection() {
    let b = broker_with_topic();
    let mut raw = Raw::connect(b.kafka);
    raw.send_bytes(&[0, 0, 0, 10, 0x03, 0xe7, 0, 0, 0, 0, 0, 1, 0xff, 0xff]);
    assert!(raw.is_closed());
    api_versions_ok(&b);
}

#[test]
fn unsupported_versions() {
    let b = broker_with_topic();
    // ApiVersions at an unknown version: error 35 with our ranges, connection stays open.
    let mut raw = Raw::connect(b.kafka);
    raw.send_bytes(&[0, 0, 0, 10, 0, 18, 0, 99, 0, 0, 0, 5, 0xff, 0xff]);
    let f = raw.read_frame().expect("KIP-511 response");
    assert_eq!(i32::from_be_bytes(f[0..4].try_into().unwrap()), 5);
    assert_eq!(i16::from_be_bytes(f[4..6].try_into().unwrap()), 35);
    assert!(i32::from_be_bytes(f[6..10].try_into().unwrap()) > 0);
    let ResponseKind::ApiVersions(r) = raw.request(
        ApiKey::ApiVersions,
        0,
        RequestKind::ApiVersions(ApiVersionsRequest::default()),
    ) else {
        panic!()
    };
    assert_eq!(r.error_code, 0, "same connection still serves");
    // Any other API at a version we do not serve: closed, like Kafka.
    let mut raw = Raw::connect(b.kafka);
    raw.send_bytes(&[0, 0, 0, 10, 0, 3, 0, 99, 0, 0, 0, 5, 0xff, 0xff]);
    assert!(raw.is_closed());
    api_versions_ok(&b);
}

#[test]
fn truncated_batch_is_corrupt_message() {
    let b = broker_with_topic();
    let full = batch(&[b"aaaa", b"bbbb"]);
    assert_eq!(produce_raw(&b, full.slice(0..full.len() - 3)), 2);
    assert_eq!(produce_raw(&b, full.slice(0..30)), 2);
    assert_eq!(produce_raw(&b, full), 0, "an intact batch still works");
}

#[test]
fn bad_crc_is_corrupt_message() {
    let b = broker_with_topic();
    let mut v = batch(&[b"payload"]).to_vec();
    let n = v.len();
    v[n - 2] ^= 0x55;
    assert_eq!(produce_raw(&b, bytes::Bytes::from(v)), 2);
    api_versions_ok(&b);
}

#[test]
fn count_mismatch_is_invalid_record() {
    let b = broker_with_topic();
    let mut v = batch(&[b"one", b"two"]).to_vec();
    v[57..61].copy_from_slice(&3i32.to_be_bytes());
    v[23..27].copy_from_slice(&2i32.to_be_bytes());
    let crc = crc32c::crc32c(&v[21..]);
    v[17..21].copy_from_slice(&crc.to_be_bytes());
    assert_eq!(produce_raw(&b, bytes::Bytes::from(v)), 87);
}
