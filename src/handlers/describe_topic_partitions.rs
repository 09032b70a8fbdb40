//! DescribeTopicPartitions (v0): topics with their partitions, paginated by
//! `response_partition_limit` and a cursor (topic name, partition), topics in name order. An empty
//! topic list means every topic.

use super::RequestCtx;
use crate::error::code;
use kafka_protocol::messages::describe_topic_partitions_response::{
    Cursor, DescribeTopicPartitionsResponsePartition, DescribeTopicPartitionsResponseTopic,
};
use kafka_protocol::messages::{
    BrokerId, DescribeTopicPartitionsRequest, DescribeTopicPartitionsResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;

/// Kafka's default `max.request.partition.size.limit`.
pub const MAX_PARTITIONS_PER_RESPONSE: i32 = 2000;

pub fn handle(
    ctx: &RequestCtx,
    req: DescribeTopicPartitionsRequest,
) -> DescribeTopicPartitionsResponse {
    let b = &ctx.broker;
    let mut names: Vec<String> = if req.topics.is_empty() {
        b.topics().iter().map(|t| t.name.clone()).collect()
    } else {
        req.topics.iter().map(|t| t.name.to_string()).collect()
    };
    names.sort();
    names.dedup();
    let (start_topic, start_part) = match &req.cursor {
        Some(c) => (Some(c.topic_name.to_string()), c.partition_index.max(0)),
        None => (None, 0),
    };
    let mut budget = req
        .response_partition_limit
        .clamp(1, MAX_PARTITIONS_PER_RESPONSE);
    let mut resp = DescribeTopicPartitionsResponse::default();
    for name in names {
        if start_topic.as_ref().is_some_and(|s| name < *s) {
            continue;
        }
        let first = if start_topic.as_deref() == Some(name.as_str()) {
            start_part
        } else {
            0
        };
        if budget == 0 {
            let mut c = Cursor::default();
            c.topic_name = TopicName(StrBytes::from_string(name.clone()));
            c.partition_index = first;
            resp.next_cursor = Some(c);
            break;
        }
        let mut t = DescribeTopicPartitionsResponseTopic::default();
        t.name = Some(TopicName(StrBytes::from_string(name.clone())));
        t.topic_authorized_operations = i32::MIN;
        let Some(topic) = b.topic(&name) else {
            t.error_code = code::UNKNOWN_TOPIC_OR_PARTITION;
            resp.topics.push(t);
            continue;
        };
        t.topic_id = uuid::Uuid::from_bytes(topic.id);
        let count = topic.partitions.len() as i32;
        for p in first..count {
            if budget == 0 {
                let mut c = Cursor::default();
                c.topic_name = TopicName(StrBytes::from_string(name.clone()));
                c.partition_index = p;
                resp.next_cursor = Some(c);
                break;
            }
            let mut dp = DescribeTopicPartitionsResponsePartition::default();
            let (leader, epoch) = b.leader_of(&topic, p);
            dp.partition_index = p;
            dp.leader_id = BrokerId(leader);
            dp.leader_epoch = epoch;
            if leader < 0 {
                dp.error_code = code::LEADER_NOT_AVAILABLE;
            } else {
                let replicas: Vec<BrokerId> = b
                    .replicas(&topic, p, leader)
                    .into_iter()
                    .map(BrokerId)
                    .collect();
                dp.replica_nodes = replicas.clone();
                dp.isr_nodes = replicas;
            }
            t.partitions.push(dp);
            budget -= 1;
        }
        resp.topics.push(t);
        if resp.next_cursor.is_some() {
            break;
        }
    }
    resp
}
