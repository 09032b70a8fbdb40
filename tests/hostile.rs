//! Hostile input over raw TCP: every case gets a Kafka error or a closed connection, the broker
//! never panics, and it keeps serving other clients.

mod common;

use bytes::BytesMut;
use common::*;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use std::io::Read;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

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
    // The versions Kafka 4 removed (KIP-896) that old clients still send, e.g. kafka-go 0.2.1:
    // Produce v2, Fetch v2, CreateTopics v0 — closed as Kafka 4 closes them.
    for (key, version) in [(0u8, 2u8), (1, 2), (19, 0)] {
        let mut raw = Raw::connect(b.kafka);
        raw.send_bytes(&[0, 0, 0, 10, 0, key, 0, version, 0, 0, 0, 5, 0xff, 0xff]);
        assert!(raw.is_closed(), "api {key} v{version}");
    }
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

// ---------------------------------------------------------------------------------------------
// Allocation bombs: counts and lengths read from the wire that claim far more than the frame
// holds. kafka-protocol 0.18 calls `Vec::with_capacity(count)` before decoding one element, so
// before `heraclitus::alloc` a 32-byte frame claiming 2^32 - 1 elements aborted the process
// (a failed allocation aborts; there is no panic to catch). Every case below must close the
// connection (or get an error response) promptly, commit no memory, and leave the broker
// serving.
// ---------------------------------------------------------------------------------------------

/// Upper bound for this test process's resident memory after the bombs (the broker runs in
/// process). A bomb that committed its claimed capacity would need tens of gigabytes.
const RSS_BOUND_MB: u64 = 300;

/// First version whose request (header and body) is flexible, from Kafka's message schemas;
/// checked against kafka-protocol's `request_header_version` for every case.
fn first_flexible(key: ApiKey) -> i16 {
    match key {
        ApiKey::Produce | ApiKey::Metadata => 9,
        ApiKey::Fetch => 12,
        ApiKey::ListOffsets | ApiKey::OffsetFetch | ApiKey::JoinGroup => 6,
        ApiKey::OffsetCommit => 8,
        ApiKey::FindCoordinator | ApiKey::ListGroups | ApiKey::ApiVersions => 3,
        ApiKey::LeaveGroup | ApiKey::SyncGroup | ApiKey::DeleteTopics => 4,
        ApiKey::DescribeConfigs | ApiKey::OffsetForLeaderEpoch | ApiKey::Heartbeat => 4,
        ApiKey::DescribeGroups | ApiKey::CreateTopics => 5,
        ApiKey::DeleteGroups | ApiKey::CreatePartitions | ApiKey::AlterConfigs => 2,
        ApiKey::DeleteRecords | ApiKey::DescribeLogDirs | ApiKey::InitProducerId => 2,
        ApiKey::SaslAuthenticate => 2,
        ApiKey::IncrementalAlterConfigs | ApiKey::DescribeCluster => 1,
        ApiKey::DescribeTopicPartitions | ApiKey::ListConfigResources => 0,
        ApiKey::AlterPartitionReassignments | ApiKey::ListPartitionReassignments => 0,
        ApiKey::CreateAcls | ApiKey::DescribeAcls | ApiKey::DeleteAcls => 2,
        ApiKey::ElectLeaders => 2,
        ApiKey::DescribeUserScramCredentials | ApiKey::AlterUserScramCredentials => 0,
        ApiKey::ConsumerGroupHeartbeat | ApiKey::ConsumerGroupDescribe => 0,
        ApiKey::OffsetDelete | ApiKey::SaslHandshake => i16::MAX,
        ApiKey::AddPartitionsToTxn | ApiKey::AddOffsetsToTxn => 3,
        ApiKey::EndTxn | ApiKey::TxnOffsetCommit => 3,
        ApiKey::DescribeProducers | ApiKey::DescribeTransactions => 0,
        ApiKey::ListTransactions => 0,
        other => panic!("no flexible-version entry for {other:?}"),
    }
}

/// A request frame written field by field, in wire order, up to a hostile count or length.
struct Hand {
    key: ApiKey,
    version: i16,
    flex: bool,
    /// Header then body, without the 4-byte size.
    b: Vec<u8>,
    body_at: usize,
    /// Where the hostile count starts (for the encoder cross-check).
    bomb_at: usize,
}

impl Hand {
    /// Header: api key, version, correlation id 7, client id "h"; flexible versions add an
    /// empty tagged-field section.
    fn new(key: ApiKey, version: i16) -> Hand {
        let flex = version >= first_flexible(key);
        let mut b = Vec::new();
        b.extend_from_slice(&(key as i16).to_be_bytes());
        b.extend_from_slice(&version.to_be_bytes());
        b.extend_from_slice(&7i32.to_be_bytes());
        b.extend_from_slice(&1i16.to_be_bytes());
        b.push(b'h');
        if flex {
            b.push(0);
        }
        let body_at = b.len();
        Hand {
            key,
            version,
            flex,
            b,
            body_at,
            bomb_at: 0,
        }
    }
    fn raw(mut self, bytes: &[u8]) -> Hand {
        self.b.extend_from_slice(bytes);
        self
    }
    fn i8(self, v: i8) -> Hand {
        self.raw(&v.to_be_bytes())
    }
    fn i16(self, v: i16) -> Hand {
        self.raw(&v.to_be_bytes())
    }
    fn i32(self, v: i32) -> Hand {
        self.raw(&v.to_be_bytes())
    }
    fn i64(self, v: i64) -> Hand {
        self.raw(&v.to_be_bytes())
    }
    fn uuid(self) -> Hand {
        self.raw(&[0u8; 16])
    }
    fn varint(mut self, mut u: u32) -> Hand {
        while u >= 0x80 {
            self.b.push((u as u8) | 0x80);
            u >>= 7;
        }
        self.b.push(u as u8);
        self
    }
    /// A string (compact in flexible versions).
    fn str(self, s: &str) -> Hand {
        let h = if self.flex {
            self.varint(s.len() as u32 + 1)
        } else {
            self.i16(s.len() as i16)
        };
        h.raw(s.as_bytes())
    }
    /// A null nullable string.
    fn null_str(self) -> Hand {
        if self.flex {
            self.varint(0)
        } else {
            self.i16(-1)
        }
    }
    /// An honest array count.
    fn count(self, n: u32) -> Hand {
        if self.flex {
            self.varint(n + 1)
        } else {
            self.i32(n as i32)
        }
    }
    /// The hostile array count: 2^32 - 1 (compact varint FF FF FF FF 0F, i.e. 2^32 - 2
    /// elements) in flexible versions, 2^31 - 1 (7F FF FF FF) otherwise.
    fn bomb(mut self) -> Hand {
        self.bomb_at = self.b.len();
        if self.flex {
            self.raw(&[0xff, 0xff, 0xff, 0xff, 0x0f])
        } else {
            self.raw(&[0x7f, 0xff, 0xff, 0xff])
        }
    }
    /// The frame on the wire: size, then header and body.
    fn frame(&self) -> Vec<u8> {
        let mut f = (self.b.len() as i32).to_be_bytes().to_vec();
        f.extend_from_slice(&self.b);
        f
    }
}

/// One hostile frame, with the honest request it mimics up to the hostile count.
struct Case {
    name: String,
    hand: Hand,
    /// A request kafka-protocol encodes to the same bytes as `hand`'s body up to the hostile
    /// count, where it has an empty array instead.
    honest: RequestKind,
}

/// A request of `key` with every field at kafka-protocol's default (all arrays empty).
fn default_request(key: ApiKey) -> RequestKind {
    match key {
        ApiKey::Produce => RequestKind::Produce(Default::default()),
        ApiKey::Fetch => RequestKind::Fetch(Default::default()),
        ApiKey::ListOffsets => RequestKind::ListOffsets(Default::default()),
        ApiKey::Metadata => RequestKind::Metadata(Default::default()),
        ApiKey::OffsetCommit => RequestKind::OffsetCommit(Default::default()),
        ApiKey::OffsetFetch => RequestKind::OffsetFetch(Default::default()),
        ApiKey::FindCoordinator => RequestKind::FindCoordinator(Default::default()),
        ApiKey::JoinGroup => RequestKind::JoinGroup(Default::default()),
        ApiKey::LeaveGroup => RequestKind::LeaveGroup(Default::default()),
        ApiKey::SyncGroup => RequestKind::SyncGroup(Default::default()),
        ApiKey::DescribeGroups => RequestKind::DescribeGroups(Default::default()),
        ApiKey::ListGroups => RequestKind::ListGroups(Default::default()),
        ApiKey::CreateTopics => RequestKind::CreateTopics(Default::default()),
        ApiKey::DeleteTopics => RequestKind::DeleteTopics(Default::default()),
        ApiKey::DeleteGroups => RequestKind::DeleteGroups(Default::default()),
        ApiKey::OffsetDelete => RequestKind::OffsetDelete(Default::default()),
        ApiKey::CreatePartitions => RequestKind::CreatePartitions(Default::default()),
        ApiKey::DescribeConfigs => RequestKind::DescribeConfigs(Default::default()),
        ApiKey::AlterConfigs => RequestKind::AlterConfigs(Default::default()),
        ApiKey::IncrementalAlterConfigs => RequestKind::IncrementalAlterConfigs(Default::default()),
        ApiKey::DeleteRecords => RequestKind::DeleteRecords(Default::default()),
        ApiKey::OffsetForLeaderEpoch => RequestKind::OffsetForLeaderEpoch(Default::default()),
        ApiKey::DescribeLogDirs => RequestKind::DescribeLogDirs(Default::default()),
        ApiKey::DescribeTopicPartitions => RequestKind::DescribeTopicPartitions(Default::default()),
        ApiKey::SaslAuthenticate => RequestKind::SaslAuthenticate(Default::default()),
        ApiKey::ListConfigResources => RequestKind::ListConfigResources(Default::default()),
        ApiKey::AlterUserScramCredentials => {
            RequestKind::AlterUserScramCredentials(Default::default())
        }
        ApiKey::CreateAcls => RequestKind::CreateAcls(Default::default()),
        ApiKey::DeleteAcls => RequestKind::DeleteAcls(Default::default()),
        ApiKey::ElectLeaders => RequestKind::ElectLeaders(Default::default()),
        ApiKey::AlterPartitionReassignments => {
            RequestKind::AlterPartitionReassignments(Default::default())
        }
        ApiKey::ListPartitionReassignments => {
            RequestKind::ListPartitionReassignments(Default::default())
        }
        ApiKey::ConsumerGroupDescribe => RequestKind::ConsumerGroupDescribe(Default::default()),
        ApiKey::DescribeProducers => RequestKind::DescribeProducers(Default::default()),
        ApiKey::DescribeTransactions => RequestKind::DescribeTransactions(Default::default()),
        ApiKey::ListTransactions => RequestKind::ListTransactions(Default::default()),
        ApiKey::AddPartitionsToTxn => RequestKind::AddPartitionsToTxn(Default::default()),
        ApiKey::TxnOffsetCommit => RequestKind::TxnOffsetCommit(Default::default()),
        other => panic!("no default request for {other:?}"),
    }
}

/// A case whose honest twin has all defaults: `fields` writes the defaults that precede the
/// hostile count.
fn top(name: &str, key: ApiKey, version: i16, fields: impl FnOnce(Hand) -> Hand) -> Case {
    Case {
        name: format!("{key:?} v{version} {name}"),
        hand: fields(Hand::new(key, version)).bomb(),
        honest: default_request(key),
    }
}

/// A case with an explicit honest twin (nested arrays).
fn nested(
    name: &str,
    key: ApiKey,
    version: i16,
    honest: RequestKind,
    fields: impl FnOnce(Hand) -> Hand,
) -> Case {
    Case {
        name: format!("{key:?} v{version} {name}"),
        hand: fields(Hand::new(key, version)).bomb(),
        honest,
    }
}

/// APIs we serve whose request has no array at the top level.
const NO_TOP_LEVEL_ARRAY: &[ApiKey] = &[
    ApiKey::Heartbeat,
    ApiKey::ApiVersions,
    ApiKey::InitProducerId,
    ApiKey::SaslHandshake,
    ApiKey::SaslAuthenticate,
    ApiKey::DescribeCluster,
    ApiKey::DescribeAcls,
    ApiKey::AddOffsetsToTxn,
    ApiKey::EndTxn,
];

/// APIs whose arrays exist only in flexible versions (FindCoordinator v4 coordinator_keys,
/// ListGroups v4+ filters).
const ARRAYS_ONLY_FLEXIBLE: &[ApiKey] = &[ApiKey::FindCoordinator, ApiKey::ListGroups];

/// A hostile count in place of every top-level array of every API we serve: at the newest
/// served version (flexible) and at a non-flexible one. The fields before the array carry
/// kafka-protocol's defaults, so the empty-array twin is `Default::default()`.
fn top_level_bombs() -> Vec<Case> {
    use ApiKey as K;
    // A heartbeat's fields before its arrays: group_id, member_id, member_epoch, instance_id,
    // rack_id, rebalance_timeout_ms (defaults).
    let head = |h: Hand| h.str("").str("").i32(0).null_str().null_str().i32(-1);
    // A heartbeat with an empty list in place of the bombed one (the others null).
    let cgh = |names: bool, partitions: bool| {
        RequestKind::ConsumerGroupHeartbeat(
            ConsumerGroupHeartbeatRequest::default()
                .with_rebalance_timeout_ms(-1)
                .with_subscribed_topic_names(names.then(Vec::new))
                .with_topic_partitions(partitions.then(Vec::new)),
        )
    };
    let elect = || {
        RequestKind::ElectLeaders(
            ElectLeadersRequest::default().with_topic_partitions(Some(vec![])),
        )
    };
    vec![
        // Produce: transactional_id, acks, timeout_ms, topic_data.
        top("topic_data", K::Produce, 13, |h| h.null_str().i16(0).i32(0)),
        top("topic_data", K::Produce, 11, |h| h.null_str().i16(0).i32(0)),
        top("topic_data", K::Produce, 3, |h| h.null_str().i16(0).i32(0)),
        // Fetch: replica_id (<= v14), max_wait, min_bytes, max_bytes, isolation, session
        // id/epoch (v7+), topics, forgotten_topics_data (v7+).
        top("topics", K::Fetch, 18, |h| {
            h.i32(0).i32(0).i32(i32::MAX).i8(0).i32(0).i32(-1)
        }),
        top("topics", K::Fetch, 16, |h| {
            h.i32(0).i32(0).i32(i32::MAX).i8(0).i32(0).i32(-1)
        }),
        top("forgotten_topics_data", K::Fetch, 16, |h| {
            h.i32(0).i32(0).i32(i32::MAX).i8(0).i32(0).i32(-1).count(0)
        }),
        top("topics", K::Fetch, 11, |h| {
            h.i32(-1).i32(0).i32(0).i32(i32::MAX).i8(0).i32(0).i32(-1)
        }),
        top("forgotten_topics_data", K::Fetch, 11, |h| {
            h.i32(-1)
                .i32(0)
                .i32(0)
                .i32(i32::MAX)
                .i8(0)
                .i32(0)
                .i32(-1)
                .count(0)
        }),
        top("topics", K::Fetch, 4, |h| {
            h.i32(-1).i32(0).i32(0).i32(i32::MAX).i8(0)
        }),
        // AddPartitionsToTxn v0-3: transactional_id, producer_id, producer_epoch, topics.
        top("v3_and_below_topics", K::AddPartitionsToTxn, 3, |h| {
            h.str("").i64(0).i16(0)
        }),
        top("v3_and_below_topics", K::AddPartitionsToTxn, 0, |h| {
            h.str("").i64(0).i16(0)
        }),
        // TxnOffsetCommit: transactional_id, group_id, producer_id, producer_epoch, (v3+:
        // generation_id, member_id, group_instance_id), topics.
        top("topics", K::TxnOffsetCommit, 3, |h| {
            h.str("").str("").i64(0).i16(0).i32(-1).str("").null_str()
        }),
        top("topics", K::TxnOffsetCommit, 2, |h| {
            h.str("").str("").i64(0).i16(0)
        }),
        // DescribeProducers: topics; DescribeTransactions: transactional_ids; ListTransactions:
        // state_filters, then producer_id_filters.
        top("topics", K::DescribeProducers, 0, |h| h),
        top("transactional_ids", K::DescribeTransactions, 0, |h| h),
        top("state_filters", K::ListTransactions, 2, |h| h),
        top("producer_id_filters", K::ListTransactions, 2, |h| {
            h.count(0)
        }),
        // ListOffsets: replica_id, isolation_level (v2+), topics.
        top("topics", K::ListOffsets, 10, |h| h.i32(0).i8(0)),
        top("topics", K::ListOffsets, 7, |h| h.i32(0).i8(0)),
        top("topics", K::ListOffsets, 5, |h| h.i32(0).i8(0)),
        top("topics", K::ListOffsets, 1, |h| h.i32(0)),
        // Metadata: topics first.
        top("topics", K::Metadata, 13, |h| h),
        top("topics", K::Metadata, 12, |h| h),
        top("topics", K::Metadata, 8, |h| h),
        top("topics", K::Metadata, 0, |h| h),
        // OffsetCommit: group_id, generation, member_id, group_instance_id (v7+),
        // retention_time_ms (<= v4), topics.
        top("topics", K::OffsetCommit, 9, |h| {
            h.str("").i32(-1).str("").null_str()
        }),
        top("topics", K::OffsetCommit, 7, |h| {
            h.str("").i32(-1).str("").null_str()
        }),
        top("topics", K::OffsetCommit, 2, |h| {
            h.str("").i32(-1).str("").i64(-1)
        }),
        // OffsetFetch: v8+ groups; v1-7 group_id, topics.
        top("groups", K::OffsetFetch, 9, |h| h),
        top("topics", K::OffsetFetch, 7, |h| h.str("")),
        top("topics", K::OffsetFetch, 5, |h| h.str("")),
        top("topics", K::OffsetFetch, 1, |h| h.str("")),
        // FindCoordinator v4: key_type, coordinator_keys.
        top("coordinator_keys", K::FindCoordinator, 4, |h| h.i8(0)),
        // JoinGroup: group_id, session timeout, rebalance timeout (v1+), member_id,
        // group_instance_id (v5+), protocol_type, protocols.
        top("protocols", K::JoinGroup, 9, |h| {
            h.str("").i32(0).i32(-1).str("").null_str().str("")
        }),
        top("protocols", K::JoinGroup, 5, |h| {
            h.str("").i32(0).i32(-1).str("").null_str().str("")
        }),
        top("protocols", K::JoinGroup, 0, |h| {
            h.str("").i32(0).str("").str("")
        }),
        // LeaveGroup v3+: group_id, members.
        top("members", K::LeaveGroup, 5, |h| h.str("")),
        top("members", K::LeaveGroup, 3, |h| h.str("")),
        // SyncGroup: group_id, generation, member_id, group_instance_id (v3+),
        // protocol_type/name (v5), assignments.
        top("assignments", K::SyncGroup, 5, |h| {
            h.str("").i32(0).str("").null_str().null_str().null_str()
        }),
        top("assignments", K::SyncGroup, 3, |h| {
            h.str("").i32(0).str("").null_str()
        }),
        top("assignments", K::SyncGroup, 0, |h| h.str("").i32(0).str("")),
        // DescribeGroups: groups first.
        top("groups", K::DescribeGroups, 5, |h| h),
        top("groups", K::DescribeGroups, 0, |h| h),
        // ListGroups: states_filter (v4+), types_filter (v5).
        top("states_filter", K::ListGroups, 4, |h| h),
        top("states_filter", K::ListGroups, 5, |h| h),
        top("types_filter", K::ListGroups, 5, |h| h.count(0)),
        // CreateTopics: topics first.
        top("topics", K::CreateTopics, 7, |h| h),
        top("topics", K::CreateTopics, 4, |h| h),
        // DeleteTopics: v6 topics; v4-5 compact topic_names; v1-3 topic_names.
        top("topics", K::DeleteTopics, 6, |h| h),
        top("topic_names", K::DeleteTopics, 5, |h| h),
        top("topic_names", K::DeleteTopics, 1, |h| h),
        // DeleteGroups: groups_names first.
        top("groups_names", K::DeleteGroups, 2, |h| h),
        top("groups_names", K::DeleteGroups, 0, |h| h),
        // OffsetDelete v0: group_id, topics.
        top("topics", K::OffsetDelete, 0, |h| h.str("")),
        // CreatePartitions: topics first.
        top("topics", K::CreatePartitions, 3, |h| h),
        top("topics", K::CreatePartitions, 1, |h| h),
        // DescribeConfigs: resources first.
        top("resources", K::DescribeConfigs, 4, |h| h),
        top("resources", K::DescribeConfigs, 1, |h| h),
        // AlterConfigs: resources first.
        top("resources", K::AlterConfigs, 2, |h| h),
        top("resources", K::AlterConfigs, 0, |h| h),
        // IncrementalAlterConfigs: resources first.
        top("resources", K::IncrementalAlterConfigs, 1, |h| h),
        top("resources", K::IncrementalAlterConfigs, 0, |h| h),
        // DeleteRecords: topics first.
        top("topics", K::DeleteRecords, 2, |h| h),
        top("topics", K::DeleteRecords, 0, |h| h),
        // OffsetForLeaderEpoch: replica_id (v3+), topics.
        top("topics", K::OffsetForLeaderEpoch, 4, |h| h.i32(-2)),
        top("topics", K::OffsetForLeaderEpoch, 3, |h| h.i32(-2)),
        top("topics", K::OffsetForLeaderEpoch, 2, |h| h),
        // DescribeLogDirs: topics first.
        top("topics", K::DescribeLogDirs, 4, |h| h),
        top("topics", K::DescribeLogDirs, 1, |h| h),
        // DescribeTopicPartitions v0: topics first.
        top("topics", K::DescribeTopicPartitions, 0, |h| h),
        // ListConfigResources v1: resource_types first.
        top("resource_types", K::ListConfigResources, 1, |h| h),
        // CreateAcls / DeleteAcls: creations / filters first.
        top("creations", K::CreateAcls, 3, |h| h),
        top("creations", K::CreateAcls, 1, |h| h),
        top("filters", K::DeleteAcls, 3, |h| h),
        top("filters", K::DeleteAcls, 1, |h| h),
        // ElectLeaders: election_type (v1+), topic_partitions (nullable: the honest twin is an
        // empty list, not null).
        nested("topic_partitions", K::ElectLeaders, 2, elect(), |h| h.i8(0)),
        nested("topic_partitions", K::ElectLeaders, 1, elect(), |h| h.i8(0)),
        nested("topic_partitions", K::ElectLeaders, 0, elect(), |h| h),
        // AlterPartitionReassignments: timeout_ms, allow_replication_factor_change (v1), topics.
        top("topics", K::AlterPartitionReassignments, 1, |h| {
            h.i32(60000).i8(1)
        }),
        top("topics", K::AlterPartitionReassignments, 0, |h| {
            h.i32(60000)
        }),
        // DescribeUserScramCredentials v0: users (nullable); AlterUserScramCredentials v0:
        // deletions, upsertions.
        nested(
            "users",
            K::DescribeUserScramCredentials,
            0,
            RequestKind::DescribeUserScramCredentials(
                DescribeUserScramCredentialsRequest::default().with_users(Some(vec![])),
            ),
            |h| h,
        ),
        top("deletions", K::AlterUserScramCredentials, 0, |h| h),
        top("upsertions", K::AlterUserScramCredentials, 0, |h| {
            h.count(0)
        }),
        // ConsumerGroupHeartbeat: group_id, member_id, member_epoch, instance_id, rack_id,
        // rebalance_timeout_ms, subscribed_topic_names (nullable), subscribed_topic_regex
        // (v1), server_assignor, topic_partitions (nullable).
        nested(
            "subscribed_topic_names",
            K::ConsumerGroupHeartbeat,
            1,
            cgh(true, false),
            head,
        ),
        nested(
            "subscribed_topic_names",
            K::ConsumerGroupHeartbeat,
            0,
            cgh(true, false),
            head,
        ),
        // Null names, null regex (v1 only), null assignor, then the bombed partitions.
        nested(
            "topic_partitions",
            K::ConsumerGroupHeartbeat,
            1,
            cgh(false, true),
            |h| head(h).varint(0).null_str().null_str(),
        ),
        nested(
            "topic_partitions",
            K::ConsumerGroupHeartbeat,
            0,
            cgh(false, true),
            |h| head(h).varint(0).null_str(),
        ),
        // ConsumerGroupDescribe: group_ids first.
        top("group_ids", K::ConsumerGroupDescribe, 1, |h| h),
        top("group_ids", K::ConsumerGroupDescribe, 0, |h| h),
        // ListPartitionReassignments v0: timeout_ms, topics.
        nested(
            "topics",
            K::ListPartitionReassignments,
            0,
            RequestKind::ListPartitionReassignments(
                ListPartitionReassignmentsRequest::default().with_topics(Some(vec![])),
            ),
            |h| h.i32(60000),
        ),
    ]
}

/// Hostile counts one level down: one honest element whose own array claims 2^32 - 1.
fn nested_bombs() -> Vec<Case> {
    use kafka_protocol::messages::{
        alter_configs_request as ac, create_partitions_request as cp, create_topics_request as ct,
        delete_records_request as dr, describe_configs_request as dc,
        describe_log_dirs_request as dl, fetch_request as fe,
        incremental_alter_configs_request as ia, list_offsets_request as lo,
        offset_commit_request as oc, offset_delete_request as od, offset_fetch_request as of,
        offset_for_leader_epoch_request as oe,
    };
    use ApiKey as K;
    let produce = || {
        RequestKind::Produce(
            ProduceRequest::default().with_topic_data(vec![TopicProduceData::default()]),
        )
    };
    let fetch =
        || RequestKind::Fetch(FetchRequest::default().with_topics(vec![fe::FetchTopic::default()]));
    let create_topics = || {
        RequestKind::CreateTopics(
            CreateTopicsRequest::default().with_topics(vec![ct::CreatableTopic::default()]),
        )
    };
    vec![
        nested(
            "topic_data[0].partition_data",
            K::Produce,
            11,
            produce(),
            |h| h.null_str().i16(0).i32(0).count(1).str(""),
        ),
        nested(
            "topic_data[0].partition_data",
            K::Produce,
            3,
            produce(),
            |h| h.null_str().i16(0).i32(0).count(1).str(""),
        ),
        nested("topics[0].partitions", K::Fetch, 16, fetch(), |h| {
            h.i32(0)
                .i32(0)
                .i32(i32::MAX)
                .i8(0)
                .i32(0)
                .i32(-1)
                .count(1)
                .uuid()
        }),
        nested("topics[0].partitions", K::Fetch, 11, fetch(), |h| {
            h.i32(-1)
                .i32(0)
                .i32(0)
                .i32(i32::MAX)
                .i8(0)
                .i32(0)
                .i32(-1)
                .count(1)
                .str("")
        }),
        nested(
            "topics[0].partitions",
            K::ListOffsets,
            7,
            RequestKind::ListOffsets(
                ListOffsetsRequest::default().with_topics(vec![lo::ListOffsetsTopic::default()]),
            ),
            |h| h.i32(0).i8(0).count(1).str(""),
        ),
        nested(
            "topics[0].partitions",
            K::OffsetCommit,
            9,
            RequestKind::OffsetCommit(
                OffsetCommitRequest::default()
                    .with_topics(vec![oc::OffsetCommitRequestTopic::default()]),
            ),
            |h| h.str("").i32(-1).str("").null_str().count(1).str(""),
        ),
        nested(
            "groups[0].topics",
            K::OffsetFetch,
            9,
            RequestKind::OffsetFetch(
                OffsetFetchRequest::default()
                    .with_groups(vec![of::OffsetFetchRequestGroup::default()]),
            ),
            |h| h.count(1).str("").null_str().i32(-1),
        ),
        nested(
            "topics[0].partition_indexes",
            K::OffsetFetch,
            5,
            RequestKind::OffsetFetch(
                OffsetFetchRequest::default()
                    .with_topics(Some(vec![of::OffsetFetchRequestTopic::default()])),
            ),
            |h| h.str("").count(1).str(""),
        ),
        nested(
            "topics[0].assignments",
            K::CreateTopics,
            7,
            create_topics(),
            |h| h.count(1).str("").i32(0).i16(0),
        ),
        nested(
            "topics[0].configs",
            K::CreateTopics,
            7,
            create_topics(),
            |h| h.count(1).str("").i32(0).i16(0).count(0),
        ),
        nested(
            "topics[0].assignments",
            K::CreateTopics,
            4,
            create_topics(),
            |h| h.count(1).str("").i32(0).i16(0),
        ),
        nested(
            "topics[0].partitions",
            K::OffsetDelete,
            0,
            RequestKind::OffsetDelete(
                OffsetDeleteRequest::default()
                    .with_topics(vec![od::OffsetDeleteRequestTopic::default()]),
            ),
            |h| h.str("").count(1).str(""),
        ),
        nested(
            "topics[0].assignments",
            K::CreatePartitions,
            3,
            RequestKind::CreatePartitions(
                CreatePartitionsRequest::default()
                    .with_topics(vec![cp::CreatePartitionsTopic::default()]),
            ),
            |h| h.count(1).str("").i32(0),
        ),
        nested(
            "resources[0].configuration_keys",
            K::DescribeConfigs,
            4,
            RequestKind::DescribeConfigs(
                DescribeConfigsRequest::default()
                    .with_resources(vec![dc::DescribeConfigsResource::default()]),
            ),
            |h| h.count(1).i8(0).str(""),
        ),
        nested(
            "resources[0].configs",
            K::AlterConfigs,
            2,
            RequestKind::AlterConfigs(
                AlterConfigsRequest::default()
                    .with_resources(vec![ac::AlterConfigsResource::default()]),
            ),
            |h| h.count(1).i8(0).str(""),
        ),
        nested(
            "resources[0].configs",
            K::IncrementalAlterConfigs,
            1,
            RequestKind::IncrementalAlterConfigs(
                IncrementalAlterConfigsRequest::default()
                    .with_resources(vec![ia::AlterConfigsResource::default()]),
            ),
            |h| h.count(1).i8(0).str(""),
        ),
        nested(
            "topics[0].partitions",
            K::DeleteRecords,
            2,
            RequestKind::DeleteRecords(
                DeleteRecordsRequest::default()
                    .with_topics(vec![dr::DeleteRecordsTopic::default()]),
            ),
            |h| h.count(1).str(""),
        ),
        nested(
            "topics[0].partitions",
            K::OffsetForLeaderEpoch,
            4,
            RequestKind::OffsetForLeaderEpoch(
                OffsetForLeaderEpochRequest::default()
                    .with_topics(vec![oe::OffsetForLeaderTopic::default()]),
            ),
            |h| h.i32(-2).count(1).str(""),
        ),
        nested(
            "topics[0].partitions",
            K::DescribeLogDirs,
            4,
            RequestKind::DescribeLogDirs(
                DescribeLogDirsRequest::default()
                    .with_topics(Some(vec![dl::DescribableLogDirTopic::default()])),
            ),
            |h| h.count(1).str(""),
        ),
    ]
}

/// Check a case against kafka-protocol's encoder: the hand-built header matches the API's
/// header version, and the body up to the hostile count, followed by an empty array, is what
/// the encoder writes for the honest twin. So the count sits exactly where the decoder reads
/// an array count (the frame does not fail for some other reason).
fn check_against_encoder(c: &Case) {
    let h = &c.hand;
    assert_eq!(
        h.key.request_header_version(h.version),
        if h.flex { 2 } else { 1 },
        "{}: flexible or not",
        c.name
    );
    let mut want = h.b[h.body_at..h.bomb_at].to_vec();
    if h.flex {
        want.push(1);
    } else {
        want.extend_from_slice(&[0, 0, 0, 0]);
    }
    let mut enc = BytesMut::new();
    c.honest.encode(&mut enc, h.version).unwrap();
    assert!(
        enc.starts_with(&want),
        "{}: hand-built body {} is not a prefix of the encoder's {}",
        c.name,
        hex(&want),
        hex(&enc)
    );
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Panics on broker threads (anything not raised by this file's own assertions), recorded by a
/// process-wide hook installed once.
static BROKER_PANICS: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Held by each test that checks for broker panics, so a panic is charged to the test whose
/// broker raised it (the hook is process-wide).
static PANIC_WATCH: Mutex<()> = Mutex::new(());

/// Start watching for broker panics until the guard drops.
fn watch_broker_panics() -> std::sync::MutexGuard<'static, ()> {
    static HOOK: OnceLock<()> = OnceLock::new();
    HOOK.get_or_init(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let at = info.location().map(|l| l.to_string()).unwrap_or_default();
            if !at.starts_with("tests/") {
                let thread = std::thread::current().name().unwrap_or("?").to_string();
                BROKER_PANICS
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(format!("{info} (thread {thread})"));
            }
            previous(info);
        }));
    });
    let guard = PANIC_WATCH.lock().unwrap_or_else(|e| e.into_inner());
    BROKER_PANICS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clear();
    guard
}

fn assert_no_broker_panic(what: &str) {
    let p = BROKER_PANICS.lock().unwrap_or_else(|e| e.into_inner());
    assert!(p.is_empty(), "{what}: the broker panicked: {p:#?}");
}

/// (VmRSS, VmHWM) of this process in MB.
fn memory_mb() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<u64>().ok())
            .map(|kb| kb / 1024)
            .unwrap_or_else(|| panic!("{name} in /proc/self/status"))
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Reset this process's peak resident memory (VmHWM) to its current size (Linux 4.0+).
fn reset_peak_memory() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// The bombs committed no memory: resident memory now, and at its peak since
/// [`reset_peak_memory`], stays under the bound.
fn assert_memory_bounded(what: &str) {
    let (rss, hwm) = memory_mb();
    println!("{what}: VmRSS {rss} MB, VmHWM {hwm} MB");
    assert!(
        rss < RSS_BOUND_MB,
        "{what}: VmRSS {rss} MB >= {RSS_BOUND_MB} MB"
    );
    assert!(
        hwm < RSS_BOUND_MB,
        "{what}: VmHWM {hwm} MB >= {RSS_BOUND_MB} MB"
    );
}

/// What the broker did with a hostile frame.
enum Reaction {
    Closed,
    Response(bytes::Bytes),
}

/// Wait (10 s at most) for the broker to close the connection or answer; a silent open
/// connection is a hang and fails the test.
fn reaction(raw: &mut Raw, what: &str) -> Reaction {
    raw.stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut len = [0u8; 4];
    match raw.stream.read_exact(&mut len) {
        Ok(()) => {}
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) =>
        {
            panic!("{what}: no response and the connection is still open after 10 s (hang)")
        }
        Err(_) => return Reaction::Closed,
    }
    let mut body = vec![0u8; i32::from_be_bytes(len).max(0) as usize];
    raw.stream
        .read_exact(&mut body)
        .unwrap_or_else(|e| panic!("{what}: truncated response: {e}"));
    Reaction::Response(bytes::Bytes::from(body))
}

/// Send one hostile frame on a fresh connection: the connection must close (or the response
/// must carry an error), and the broker must still answer ApiVersions.
fn expect_refused(b: &TestBroker, what: &str, key: ApiKey, version: i16, frame: &[u8]) {
    let mut raw = Raw::connect(b.kafka);
    raw.send_bytes(frame);
    if let Reaction::Response(mut body) = reaction(&mut raw, what) {
        let _header = <ResponseHeader as kafka_protocol::protocol::Decodable>::decode(
            &mut body,
            key.response_header_version(version),
        )
        .unwrap_or_else(|e| panic!("{what}: undecodable response header: {e}"));
        let resp = ResponseKind::decode(key, &mut body, version)
            .unwrap_or_else(|e| panic!("{what}: undecodable response: {e}"));
        let errors = heraclitus::handlers::response_errors(&resp);
        assert!(
            errors.iter().any(|&c| c != 0),
            "{what}: the broker accepted the frame {}: {resp:?}",
            hex(frame)
        );
    }
    api_versions_ok(b);
    assert_no_broker_panic(what);
}

fn run_bombs(cases: &[Case], what: &str) {
    let _watch = watch_broker_panics();
    for c in cases {
        check_against_encoder(c);
    }
    let b = TestBroker::start(settings("memory://"));
    reset_peak_memory();
    for c in cases {
        let frame = c.hand.frame();
        let what = format!("{} ({} bytes: {})", c.name, frame.len(), hex(&frame));
        expect_refused(&b, &what, c.hand.key, c.hand.version, &frame);
    }
    assert_memory_bounded(what);
    b.stop();
}

/// A 32-byte Produce frame claiming 2^32 - 1 topics aborted the process (kafka-protocol's
/// `Vec::with_capacity` of hundreds of GB); the same held for every array count of every API.
/// Each top-level array of each served API, flexible and not, now closes the connection.
#[test]
fn top_level_array_count_bombs_close_the_connection() {
    let cases = top_level_bombs();
    // Every served API with a top-level array is covered, at its newest version, and at a
    // non-flexible version when it has one with the array.
    for s in heraclitus::handlers::SUPPORTED {
        if NO_TOP_LEVEL_ARRAY.contains(&s.key) {
            continue;
        }
        let versions: Vec<i16> = cases
            .iter()
            .filter(|c| c.hand.key == s.key)
            .map(|c| c.hand.version)
            .collect();
        assert!(
            versions.contains(&s.max),
            "{:?}: no bomb at v{} (have {versions:?})",
            s.key,
            s.max
        );
        if s.min < first_flexible(s.key) && !ARRAYS_ONLY_FLEXIBLE.contains(&s.key) {
            assert!(
                versions.iter().any(|&v| v < first_flexible(s.key)),
                "{:?}: no non-flexible bomb (have {versions:?})",
                s.key
            );
        }
    }
    run_bombs(&cases, "top-level array bombs");
}

/// A Produce frame with one topic whose partition_data claimed 2^32 - 1 elements aborted the
/// process just like a top-level count: nested arrays (one honest element, then a hostile
/// inner count) now close the connection too.
#[test]
fn nested_array_count_bombs_close_the_connection() {
    run_bombs(&nested_bombs(), "nested array bombs");
}

/// A compact string claiming 2^31 bytes (or any length past the frame's end) and a records
/// field claiming 2^31 - 1 bytes must fail to decode without allocating the claimed length:
/// topic names, client ids, header tagged fields, records, SASL tokens and group metadata.
#[test]
fn string_and_bytes_length_bombs_close_the_connection() {
    let _watch = watch_broker_panics();
    use ApiKey as K;
    // Compact lengths are stored plus one.
    let two_31_plus_1 = (1u32 << 31) + 1;
    let cases: Vec<(&str, Hand)> = vec![
        (
            "topic name compact string claiming 2^31 bytes",
            Hand::new(K::Produce, 11)
                .null_str()
                .i16(-1)
                .i32(1000)
                .count(1)
                .varint(two_31_plus_1),
        ),
        (
            "topic name compact string claiming 2^32 - 2 bytes",
            Hand::new(K::Produce, 9)
                .null_str()
                .i16(-1)
                .i32(1000)
                .count(1)
                .raw(&[0xff, 0xff, 0xff, 0xff, 0x0f]),
        ),
        (
            "topic name string claiming 32767 bytes",
            Hand::new(K::Produce, 8)
                .null_str()
                .i16(-1)
                .i32(1000)
                .count(1)
                .i16(i16::MAX),
        ),
        (
            "records compact bytes claiming 2^31 - 1 bytes",
            Hand::new(K::Produce, 11)
                .null_str()
                .i16(-1)
                .i32(1000)
                .count(1)
                .str("hostile")
                .count(1)
                .i32(0)
                .varint(1 << 31),
        ),
        (
            "records bytes claiming 2^31 - 1 bytes",
            Hand::new(K::Produce, 8)
                .null_str()
                .i16(-1)
                .i32(1000)
                .count(1)
                .str("hostile")
                .count(1)
                .i32(0)
                .i32(i32::MAX),
        ),
        (
            "transactional id compact string claiming 2^32 - 2 bytes",
            Hand::new(K::Produce, 11).raw(&[0xff, 0xff, 0xff, 0xff, 0x0f]),
        ),
        (
            "topic name string claiming 32767 bytes",
            Hand::new(K::Metadata, 8).count(1).i16(i16::MAX),
        ),
        (
            "group id compact string claiming 2^31 bytes",
            Hand::new(K::JoinGroup, 9).varint(two_31_plus_1),
        ),
        (
            "protocol metadata compact bytes claiming 2^31 - 1 bytes",
            Hand::new(K::JoinGroup, 9)
                .str("g")
                .i32(10_000)
                .i32(10_000)
                .str("")
                .null_str()
                .str("consumer")
                .count(1)
                .str("range")
                .varint(1 << 31),
        ),
        (
            "assignment bytes claiming 2^31 - 1 bytes",
            Hand::new(K::SyncGroup, 3)
                .str("g")
                .i32(1)
                .str("m")
                .null_str()
                .count(1)
                .str("m")
                .i32(i32::MAX),
        ),
        (
            "auth bytes compact bytes claiming 2^31 - 1 bytes",
            Hand::new(K::SaslAuthenticate, 2).varint(1 << 31),
        ),
        (
            "auth bytes claiming 2^31 - 1 bytes",
            Hand::new(K::SaslAuthenticate, 1).i32(i32::MAX),
        ),
        (
            "config value compact string claiming 2^31 bytes",
            Hand::new(K::CreateTopics, 7)
                .count(1)
                .str("t")
                .i32(1)
                .i16(1)
                .count(0)
                .count(1)
                .str("retention.ms")
                .varint(two_31_plus_1),
        ),
    ];
    let b = TestBroker::start(settings("memory://"));
    reset_peak_memory();
    for (name, hand) in &cases {
        let frame = hand.frame();
        let what = format!(
            "{:?} v{} {name} ({} bytes: {})",
            hand.key,
            hand.version,
            frame.len(),
            hex(&frame)
        );
        expect_refused(&b, &what, hand.key, hand.version, &frame);
    }
    // Header fields: client id claiming 32767 bytes; a header tagged field claiming 2^32 - 1.
    let mut client_id = Hand::new(K::Metadata, 12);
    client_id.b.truncate(8);
    let client_id = client_id.i16(i16::MAX).raw(b"h");
    let mut tagged = Hand::new(K::Metadata, 12);
    tagged.b.pop();
    let tagged = tagged
        .varint(1)
        .varint(0)
        .raw(&[0xff, 0xff, 0xff, 0xff, 0x0f]);
    for (name, hand) in [
        ("client id claiming 32767 bytes", client_id),
        ("header tagged field claiming 2^32 - 1 bytes", tagged),
    ] {
        let frame = hand.frame();
        let what = format!("Metadata v12 {name} ({})", hex(&frame));
        expect_refused(&b, &what, K::Metadata, 12, &frame);
    }
    assert_memory_bounded("string and bytes length bombs");
    b.stop();
}

// ---------------------------------------------------------------------------------------------
// SASL raw tokens: after a v0 SaslHandshake the frame codec accepts frames shorter than a
// request header (raw tokens have none).
// ---------------------------------------------------------------------------------------------

fn sasl_settings() -> heraclitus::config::Settings {
    let mut s = settings("memory://");
    s.auth.enabled = true;
    s.auth.plain_username = "alice".into();
    s.auth.plain_password = "wonderland".into();
    s
}

/// A connection that did a SaslHandshake v0 for PLAIN: it now speaks raw tokens.
fn raw_token_connection(b: &TestBroker) -> Raw {
    let mut raw = Raw::connect(b.kafka);
    let mut hs = SaslHandshakeRequest::default();
    hs.mechanism = StrBytes::from_static_str("PLAIN");
    let ResponseKind::SaslHandshake(h) =
        raw.request(ApiKey::SaslHandshake, 0, RequestKind::SaslHandshake(hs))
    else {
        panic!()
    };
    assert_eq!(h.error_code, 0);
    raw
}

fn sized(payload: &[u8]) -> Vec<u8> {
    let mut f = (payload.len() as i32).to_be_bytes().to_vec();
    f.extend_from_slice(payload);
    f
}

fn expect_closed(raw: &mut Raw, what: &str) {
    match reaction(raw, what) {
        Reaction::Closed => {}
        Reaction::Response(r) => panic!("{what}: expected the connection closed, got {}", hex(&r)),
    }
}

/// After a failed raw SASL token the connection no longer expects tokens, yet the codec still
/// let frames of 1-7 bytes through, and reading their request header (api key, version,
/// correlation id: 8 bytes) out of range panicked the connection. The failing token and the
/// short frame arrive together (one write), so the short frame is read before the close.
#[test]
fn sasl_short_frame_after_a_failed_raw_token() {
    let _watch = watch_broker_panics();
    let b = TestBroker::start(sasl_settings());
    for n in 1..=7usize {
        let what = format!("failed raw token then a {n}-byte frame");
        let mut raw = raw_token_connection(&b);
        let mut bytes = sized(b"\0alice\0wrong-password");
        bytes.extend_from_slice(&sized(&vec![0u8; n]));
        raw.send_bytes(&bytes);
        expect_closed(&mut raw, &what);
        api_versions_ok(&b);
        assert_no_broker_panic(&what);
    }
    b.stop();
}

/// Frames of 1-7 bytes as the raw SASL token itself (right after a v0 handshake), and after a
/// successful raw-token authentication (when the codec's header minimum applies again): each
/// closes the connection without a panic.
#[test]
fn sasl_short_frames_as_raw_tokens() {
    let _watch = watch_broker_panics();
    let b = TestBroker::start(sasl_settings());
    for n in 1..=7usize {
        for fill in [0u8, b'a'] {
            let what = format!("a {n}-byte raw token of {fill:#04x}");
            let mut raw = raw_token_connection(&b);
            raw.send_bytes(&sized(&vec![fill; n]));
            expect_closed(&mut raw, &what);
            api_versions_ok(&b);
            assert_no_broker_panic(&what);
        }
        let what = format!("a {n}-byte frame after raw-token authentication");
        let mut raw = raw_token_connection(&b);
        raw.send_bytes(&sized(b"\0alice\0wonderland"));
        let tok = raw.read_frame().expect("final (empty) PLAIN token");
        assert!(tok.is_empty());
        raw.send_bytes(&sized(&vec![0u8; n]));
        expect_closed(&mut raw, &what);
        api_versions_ok(&b);
        assert_no_broker_panic(&what);
    }
    b.stop();
}
