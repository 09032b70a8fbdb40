//! Metadata (v0–12): brokers (this one standalone; every live broker in cluster mode), cluster
//! id, controller, topics with ids and partitions with their leader and leader epoch;
//! auto-creates requested topics when allowed.

use super::RequestCtx;
use crate::broker::Topic;
use crate::error::{code, Error};
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use std::collections::BTreeMap;
use std::sync::Arc;

fn describe(ctx: &RequestCtx, t: &Topic) -> MetadataResponseTopic {
    let mut out = MetadataResponseTopic::default();
    out.name = Some(TopicName(StrBytes::from_string(t.name.clone())));
    out.topic_id = uuid::Uuid::from_bytes(t.id);
    out.topic_authorized_operations = i32::MIN;
    out.partitions = (0..t.partitions.len() as i32)
        .map(|p| {
            let mut mp = MetadataResponsePartition::default();
            let (leader, epoch) = ctx.broker.leader_of(t, p);
            mp.partition_index = p;
            mp.leader_id = BrokerId(leader);
            mp.leader_epoch = epoch;
            if leader < 0 {
                // Cluster mode, between a leader's loss and its successor: retriable.
                mp.error_code = code::LEADER_NOT_AVAILABLE;
            } else {
                let replicas: Vec<BrokerId> = ctx
                    .broker
                    .replicas(t, p, leader)
                    .into_iter()
                    .map(BrokerId)
                    .collect();
                mp.replica_nodes = replicas.clone();
                mp.isr_nodes = replicas;
            }
            mp
        })
        .collect();
    out
}

fn error_topic(name: Option<String>, id: uuid::Uuid, code: i16) -> MetadataResponseTopic {
    let mut out = MetadataResponseTopic::default();
    out.name = name.map(|n| TopicName(StrBytes::from_string(n)));
    out.topic_id = id;
    out.error_code = code;
    out.topic_authorized_operations = i32::MIN;
    out
}

pub async fn handle(ctx: &RequestCtx, req: MetadataRequest) -> MetadataResponse {
    let broker = &ctx.broker;
    let mut resp = MetadataResponse::default();
    resp.brokers = broker
        .live_brokers()
        .into_iter()
        .map(|i| {
            let mut b = MetadataResponseBroker::default();
            b.node_id = BrokerId(i.node_id);
            b.host = StrBytes::from_string(i.host);
            b.port = i.port;
            b.rack = i.rack.map(StrBytes::from_string);
            b
        })
        .collect();
    resp.cluster_id = Some(StrBytes::from_string(broker.cluster_id.clone()));
    resp.controller_id = BrokerId(broker.controller_id());
    resp.cluster_authorized_operations = i32::MIN;

    // v0: an empty list means all topics; v1+: null means all, empty means none.
    let wanted = match req.topics {
        None => None,
        Some(t) if t.is_empty() && ctx.version == 0 => None,
        Some(t) => Some(t),
    };
    let Some(wanted) = wanted else {
        resp.topics = broker.topics().iter().map(|t| describe(ctx, t)).collect();
        return resp;
    };
    // Kafka <4 semantics: v0–3 always allow auto-creation; v4+ ask via the flag.
    let allow_create =
        broker.settings.auto_create_topics && (ctx.version < 4 || req.allow_auto_topic_creation);
    for t in wanted {
        let topic: Option<Arc<Topic>> = match &t.name {
            Some(name) => broker.topic(name.as_str()),
            None => broker.topic_by_id(t.topic_id.as_bytes()),
        };
        if let Some(topic) = topic {
            resp.topics.push(describe(ctx, &topic));
            continue;
        }
        let Some(name) = t.name.as_ref().map(|n| n.as_str().to_string()) else {
            resp.topics
                .push(error_topic(None, t.topic_id, code::UNKNOWN_TOPIC_ID));
            continue;
        };
        if let Err(e) = crate::broker::topic::validate_name(&name) {
            resp.topics
                .push(error_topic(Some(name), t.topic_id, e.code()));
            continue;
        }
        if !allow_create {
            resp.topics.push(error_topic(
                Some(name),
                t.topic_id,
                code::UNKNOWN_TOPIC_OR_PARTITION,
            ));
            continue;
        }
        let parts = broker.settings.default_partitions;
        match broker.create_topic(&name, parts, BTreeMap::new()).await {
            Ok(topic) => resp.topics.push(describe(ctx, &topic)),
            Err(Error::TopicAlreadyExists(_)) => match broker.topic(&name) {
                Some(topic) => resp.topics.push(describe(ctx, &topic)),
                None => resp.topics.push(error_topic(
                    Some(name),
                    t.topic_id,
                    code::LEADER_NOT_AVAILABLE,
                )),
            },
            Err(e) => {
                tracing::warn!("auto-creating topic {name} failed: {e}");
                let c = if e.code() == code::KAFKA_STORAGE_ERROR {
                    code::LEADER_NOT_AVAILABLE
                } else {
                    e.code()
                };
                resp.topics.push(error_topic(Some(name), t.topic_id, c));
            }
        }
    }
    resp
}
