//! Admin APIs over the raw protocol: DescribeTopicPartitions pagination, OffsetForLeaderEpoch,
//! DescribeLogDirs sizes and DescribeCluster (the rest is covered by librdkafka's 0081 and the
//! confluent-kafka AdminClient smoke).

mod common;

use common::*;
use kafka_protocol::messages::describe_topic_partitions_request::{Cursor, TopicRequest};
use kafka_protocol::messages::offset_for_leader_epoch_request::{
    OffsetForLeaderPartition, OffsetForLeaderTopic,
};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use std::time::Duration;

#[test]
fn describe_partitions_epochs_log_dirs_and_cluster() {
    let mut s = settings("memory://");
    s.default_partitions = 3;
    let b = TestBroker::start(s);
    let p: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", b.bootstrap())
        .create()
        .unwrap();
    for i in 0..5 {
        p.send(
            BaseRecord::<(), String>::to("adm")
                .partition(0)
                .payload(&format!("v{i}")),
        )
        .map_err(|(e, _)| e)
        .unwrap();
    }
    p.flush(Duration::from_secs(20)).unwrap();
    let mut raw = Raw::connect(b.kafka);

    let mut req = DescribeTopicPartitionsRequest::default();
    let mut t = TopicRequest::default();
    t.name = TopicName(StrBytes::from_static_str("adm"));
    req.topics = vec![t.clone()];
    req.response_partition_limit = 2;
    let ResponseKind::DescribeTopicPartitions(r) = raw.request(
        ApiKey::DescribeTopicPartitions,
        0,
        RequestKind::DescribeTopicPartitions(req),
    ) else {
        panic!()
    };
    assert_eq!(r.topics[0].partitions.len(), 2);
    let next = r.next_cursor.expect("a cursor for the rest");
    assert_eq!(next.partition_index, 2);
    let mut req = DescribeTopicPartitionsRequest::default();
    req.topics = vec![t];
    req.response_partition_limit = 2;
    let mut c = Cursor::default();
    c.topic_name = next.topic_name.clone();
    c.partition_index = next.partition_index;
    req.cursor = Some(c);
    let ResponseKind::DescribeTopicPartitions(r) = raw.request(
        ApiKey::DescribeTopicPartitions,
        0,
        RequestKind::DescribeTopicPartitions(req),
    ) else {
        panic!()
    };
    assert_eq!(r.topics[0].partitions.len(), 1);
    assert_eq!(r.topics[0].partitions[0].partition_index, 2);
    assert!(r.next_cursor.is_none());

    let mut req = OffsetForLeaderEpochRequest::default();
    let mut ot = OffsetForLeaderTopic::default();
    ot.topic = TopicName(StrBytes::from_static_str("adm"));
    let mut op = OffsetForLeaderPartition::default();
    op.partition = 0;
    op.current_leader_epoch = 0;
    op.leader_epoch = 0;
    ot.partitions = vec![op];
    req.topics = vec![ot];
    let ResponseKind::OffsetForLeaderEpoch(r) = raw.request(
        ApiKey::OffsetForLeaderEpoch,
        4,
        RequestKind::OffsetForLeaderEpoch(req),
    ) else {
        panic!()
    };
    let e = &r.topics[0].partitions[0];
    assert_eq!((e.error_code, e.leader_epoch, e.end_offset), (0, 0, 5));

    let mut req = DescribeLogDirsRequest::default();
    req.topics = None; // null = every topic
    let ResponseKind::DescribeLogDirs(r) = raw.request(
        ApiKey::DescribeLogDirs,
        4,
        RequestKind::DescribeLogDirs(req),
    ) else {
        panic!()
    };
    let topic = r.results[0]
        .topics
        .iter()
        .find(|t| t.name.as_str() == "adm")
        .unwrap();
    let p0 = topic
        .partitions
        .iter()
        .find(|p| p.partition_index == 0)
        .unwrap();
    assert!(p0.partition_size > 0, "segment bytes reported");
    assert!(r.results[0].total_bytes >= p0.partition_size);

    let ResponseKind::DescribeCluster(r) = raw.request(
        ApiKey::DescribeCluster,
        1,
        RequestKind::DescribeCluster(DescribeClusterRequest::default()),
    ) else {
        panic!()
    };
    assert_eq!(r.error_code, 0);
    assert_eq!(r.cluster_id.len(), 22);
    assert_eq!(r.brokers.len(), 1);
}
