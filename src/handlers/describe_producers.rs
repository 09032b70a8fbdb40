//! DescribeProducers (v0): the producers each partition's leader knows — id, epoch, last
//! sequence, time of the last write and the first offset of an open transaction (-1 if none) —
//! as `kafka-transactions.sh describe-producers` shows them (and `find-hanging` uses). As in
//! Kafka: READ on the TOPIC (else TOPIC_AUTHORIZATION_FAILED), UNKNOWN_TOPIC_OR_PARTITION,
//! NOT_LEADER_OR_FOLLOWER where another broker leads; a repeated partition is answered once.
//! The coordinator epoch is not tracked per producer here: always -1. A transaction open on
//! the partition whose producer has no sequence state left (rebuilt from older segments) is
//! listed with epoch, last sequence and last timestamp -1.

use super::RequestCtx;
use crate::auth::acl::{op, resource};
use crate::error::code;
use crate::log::leader::DescribeProducers;
use kafka_protocol::messages::describe_producers_response::{
    PartitionResponse, ProducerState, TopicResponse,
};
use kafka_protocol::messages::{DescribeProducersRequest, DescribeProducersResponse, ProducerId};

pub async fn handle(ctx: &RequestCtx, req: DescribeProducersRequest) -> DescribeProducersResponse {
    let mut resp = DescribeProducersResponse::default();
    // Each partition answered once (repeats would multiply the response).
    let mut unique = std::collections::HashSet::new();
    for t in req.topics {
        let mut rt = TopicResponse::default();
        rt.name = t.name.clone();
        let readable = ctx.allowed(op::READ, resource::TOPIC, t.name.as_str());
        let topic = ctx.broker.topic(t.name.as_str());
        for p in t.partition_indexes {
            if !unique.insert((t.name.to_string(), p)) {
                continue;
            }
            let mut rp = PartitionResponse::default();
            rp.partition_index = p;
            let part = match (readable, topic.as_ref().map(|tp| tp.local(p))) {
                (false, _) => Err(code::TOPIC_AUTHORIZATION_FAILED),
                (true, None) => Err(code::UNKNOWN_TOPIC_OR_PARTITION),
                (true, Some(Err(e))) => Err(e.code()),
                (true, Some(Ok(part))) => Ok(part),
            };
            match part {
                Err(c) => rp.error_code = c,
                Ok(part) => match part.addr.send(DescribeProducers).await {
                    Err(_) => rp.error_code = code::NOT_LEADER_OR_FOLLOWER,
                    Ok(producers) => {
                        rp.active_producers = producers
                            .into_iter()
                            .map(|a| {
                                let mut s = ProducerState::default();
                                s.producer_id = ProducerId(a.producer_id);
                                s.producer_epoch = a.producer_epoch as i32;
                                s.last_sequence = a.last_sequence;
                                s.last_timestamp = a.last_timestamp;
                                s.coordinator_epoch = -1;
                                s.current_txn_start_offset = a.current_txn_start_offset;
                                s
                            })
                            .collect()
                    }
                },
            }
            rt.partitions.push(rp);
        }
        resp.topics.push(rt);
    }
    resp
}
