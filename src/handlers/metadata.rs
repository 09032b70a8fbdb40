//! Metadata (v0–13): brokers (this one standalone; every live broker in cluster mode), cluster
//! id, controller, topics with ids and partitions with their leader and leader epoch;
//! auto-creates requested topics when allowed. The internal topic `__consumer_offsets` is
//! listed with `is_internal = true` (see `Broker::offsets_topic_partitions`). With ACLs on, a
//! topic the principal may not DESCRIBE is left out of "all topics" and answered
//! TOPIC_AUTHORIZATION_FAILED when named; auto-creation needs CREATE on the cluster or the
//! topic; the `*_authorized_operations` fields are filled when asked.

use super::RequestCtx;
use crate::auth::acl::{op, resource, CLUSTER_NAME};
use crate::broker::{Topic, OFFSETS_TOPIC};
use crate::error::{code, Error};
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use std::collections::BTreeMap;
use std::sync::Arc;

fn describe(ctx: &RequestCtx, t: &Topic, ops: bool) -> MetadataResponseTopic {
    let mut out = MetadataResponseTopic::default();
    out.name = Some(TopicName(StrBytes::from_string(t.name.clone())));
    out.topic_id = uuid::Uuid::from_bytes(t.id);
    out.topic_authorized_operations = match ops {
        true => ctx.authorized_operations(resource::TOPIC, &t.name),
        false => i32::MIN,
    };
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

/// `__consumer_offsets`: one partition per coordinator (slot), led where group offsets live.
pub fn describe_offsets_topic(ctx: &RequestCtx, ops: bool) -> MetadataResponseTopic {
    let mut out = MetadataResponseTopic::default();
    out.name = Some(TopicName(StrBytes::from_static_str(OFFSETS_TOPIC)));
    out.topic_id = uuid::Uuid::from_bytes(ctx.broker.offsets_topic_id());
    out.is_internal = true;
    out.topic_authorized_operations = match ops {
        true => ctx.authorized_operations(resource::TOPIC, OFFSETS_TOPIC),
        false => i32::MIN,
    };
    out.partitions = ctx
        .broker
        .offsets_topic_partitions()
        .into_iter()
        .enumerate()
        .map(|(p, (leader, epoch))| {
            let mut mp = MetadataResponsePartition::default();
            mp.partition_index = p as i32;
            mp.leader_id = BrokerId(leader);
            mp.leader_epoch = epoch;
            if leader < 0 {
                mp.error_code = code::LEADER_NOT_AVAILABLE;
            } else {
                mp.replica_nodes = vec![BrokerId(leader)];
                mp.isr_nodes = vec![BrokerId(leader)];
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
    resp.brokers = ctx
        .brokers()
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
    resp.cluster_authorized_operations = match req.include_cluster_authorized_operations {
        true if (8..=10).contains(&ctx.version) => ctx.cluster_authorized_operations(),
        _ => i32::MIN,
    };
    let ops = ctx.version >= 8 && req.include_topic_authorized_operations;
    let may_describe = |name: &str| ctx.allowed(op::DESCRIBE, resource::TOPIC, name);

    // v0: an empty list means all topics; v1+: null means all, empty means none.
    let wanted = match req.topics {
        None => None,
        Some(t) if t.is_empty() && ctx.version == 0 => None,
        Some(t) => Some(t),
    };
    let Some(wanted) = wanted else {
        // Quietly left out when not describable (no denial is counted for a listing).
        let visible = |name: &str| ctx.may(op::DESCRIBE, resource::TOPIC, name);
        resp.topics = broker
            .topics()
            .iter()
            .filter(|t| visible(&t.name))
            .map(|t| describe(ctx, t, ops))
            .collect();
        if visible(OFFSETS_TOPIC) {
            resp.topics.push(describe_offsets_topic(ctx, ops));
        }
        return resp;
    };
    // Kafka <4 semantics: v0–3 always allow auto-creation; v4+ ask via the flag.
    let allow_create =
        broker.settings.auto_create_topics && (ctx.version < 4 || req.allow_auto_topic_creation);
    let offsets_id = uuid::Uuid::from_bytes(broker.offsets_topic_id());
    // Cluster mode: a topic created through another broker may not be in this broker's view
    // yet; a consumer told UNKNOWN_TOPIC_OR_PARTITION reports "Subscribed topic not
    // available" at once, so look again in the store before saying so.
    let unknown_here =
        |t: &kafka_protocol::messages::metadata_request::MetadataRequestTopic| match &t.name {
            Some(name) => name.as_str() != OFFSETS_TOPIC && broker.topic(name.as_str()).is_none(),
            None => t.topic_id != offsets_id && broker.topic_by_id(t.topic_id.as_bytes()).is_none(),
        };
    if broker.cluster.is_some() && wanted.iter().any(unknown_here) {
        broker.catch_up_view().await;
    }
    for t in wanted {
        let internal = match &t.name {
            Some(name) => name.as_str() == OFFSETS_TOPIC,
            None => t.topic_id == offsets_id,
        };
        let topic: Option<Arc<Topic>> = match &t.name {
            Some(name) => broker.topic(name.as_str()),
            None => broker.topic_by_id(t.topic_id.as_bytes()),
        };
        let name = match (&topic, &t.name, internal) {
            (_, _, true) => Some(OFFSETS_TOPIC),
            (Some(topic), _, _) => Some(topic.name.as_str()),
            (None, Some(n), _) => Some(n.as_str()),
            (None, None, _) => None,
        };
        if name.is_some_and(|n| !may_describe(n)) {
            let mut e = error_topic(
                t.name.as_ref().map(|n| n.to_string()),
                t.topic_id,
                code::TOPIC_AUTHORIZATION_FAILED,
            );
            e.is_internal = internal;
            resp.topics.push(e);
            continue;
        }
        if internal {
            resp.topics.push(describe_offsets_topic(ctx, ops));
            continue;
        }
        if let Some(topic) = topic {
            resp.topics.push(describe(ctx, &topic, ops));
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
        if !ctx.may(op::CREATE, resource::CLUSTER, CLUSTER_NAME)
            && !ctx.allowed(op::CREATE, resource::TOPIC, &name)
        {
            resp.topics.push(error_topic(
                Some(name),
                t.topic_id,
                code::TOPIC_AUTHORIZATION_FAILED,
            ));
            continue;
        }
        let parts = broker.settings.default_partitions;
        match broker.create_topic(&name, parts, BTreeMap::new()).await {
            Ok(topic) => resp.topics.push(describe(ctx, &topic, ops)),
            Err(Error::TopicAlreadyExists(_)) => match broker.topic(&name) {
                Some(topic) => resp.topics.push(describe(ctx, &topic, ops)),
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
