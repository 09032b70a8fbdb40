//! DescribeTopicPartitions (v0): topics with their partitions, paginated by
//! `response_partition_limit` and a cursor (topic name, partition), topics in name order. An empty
//! topic list means every topic, the internal `__consumer_offsets` included.

use super::RequestCtx;
use crate::broker::OFFSETS_TOPIC;
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
    use crate::auth::acl::{op, resource};
    let listing = req.topics.is_empty();
    let mut names: Vec<String> = if listing {
        let mut all: Vec<String> = b.topics().iter().map(|t| t.name.clone()).collect();
        all.push(OFFSETS_TOPIC.to_string());
        // Topics the principal may not describe are left out of a listing.
        all.retain(|n| ctx.may(op::DESCRIBE, resource::TOPIC, n));
        all
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
        if !listing && !ctx.allowed(op::DESCRIBE, resource::TOPIC, &name) {
            t.error_code = code::TOPIC_AUTHORIZATION_FAILED;
            t.topic_authorized_operations = i32::MIN;
            resp.topics.push(t);
            continue;
        }
        t.topic_authorized_operations = ctx.authorized_operations(resource::TOPIC, &name);
        // Each partition's (leader, epoch, replicas).
        let parts: Vec<(i32, i32, Vec<i32>)> = if name == OFFSETS_TOPIC {
            t.topic_id = uuid::Uuid::from_bytes(b.offsets_topic_id());
            t.is_internal = true;
            b.offsets_topic_partitions()
                .into_iter()
                .map(|(l, e)| (l, e, vec![l]))
                .collect()
        } else if let Some(topic) = b.topic(&name) {
            t.topic_id = uuid::Uuid::from_bytes(topic.id);
            (0..topic.partitions.len() as i32)
                .map(|p| {
                    let (l, e) = b.leader_of(&topic, p);
                    (l, e, b.replicas(&topic, p, l))
                })
                .collect()
        } else {
            t.error_code = code::UNKNOWN_TOPIC_OR_PARTITION;
            resp.topics.push(t);
            continue;
        };
        let count = parts.len() as i32;
        for p in first..count {
            if budget == 0 {
                let mut c = Cursor::default();
                c.topic_name = TopicName(StrBytes::from_string(name.clone()));
                c.partition_index = p;
                resp.next_cursor = Some(c);
                break;
            }
            let mut dp = DescribeTopicPartitionsResponsePartition::default();
            let (leader, epoch, replicas) = &parts[p as usize];
            dp.partition_index = p;
            dp.leader_id = BrokerId(*leader);
            dp.leader_epoch = *epoch;
            if *leader < 0 {
                dp.error_code = code::LEADER_NOT_AVAILABLE;
            } else {
                let replicas: Vec<BrokerId> = replicas.iter().copied().map(BrokerId).collect();
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
