//! ConsumerGroupHeartbeat (v0–1, KIP-848): joins, heartbeats and leaves of consumer-protocol
//! members; the group's state machine is `group::consumer`, run by the group's coordinator.
//! Needs READ on the group and DESCRIBE on each topic subscribed by name; a regex matches
//! only topics the principal may DESCRIBE.

use super::RequestCtx;
use crate::auth::acl;
use crate::error::code;
use crate::group::assignor::Assignment;
use crate::group::consumer::{HeartbeatRequest, TopicFilter, Topics};
use crate::group::coordinator::ConsumerHeartbeat;
use crate::group::state::COORDINATOR_NOT_AVAILABLE;
use kafka_protocol::messages::consumer_group_heartbeat_response::{
    Assignment as Wire, TopicPartitions,
};
use kafka_protocol::messages::{ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse};
use kafka_protocol::protocol::StrBytes;
use std::sync::Arc;

fn error(code: i16, message: Option<String>) -> ConsumerGroupHeartbeatResponse {
    let mut r = ConsumerGroupHeartbeatResponse::default();
    r.error_code = code;
    r.error_message = message.map(StrBytes::from_string);
    r.member_epoch = -1;
    r
}

/// The broker's topics now, as consumer groups see them.
pub fn topics_view(ctx: &RequestCtx) -> Arc<Topics> {
    Arc::new(
        ctx.broker
            .topics()
            .iter()
            .map(|t| (t.name.clone(), (t.id, t.partition_count())))
            .collect(),
    )
}

pub async fn handle(
    ctx: &RequestCtx,
    req: ConsumerGroupHeartbeatRequest,
) -> ConsumerGroupHeartbeatResponse {
    let group = req.group_id.to_string();
    if group.is_empty() {
        return error(
            code::INVALID_REQUEST,
            Some("GroupId can't be empty.".into()),
        );
    }
    if let Err(c) = ctx.route_group(acl::op::READ, &group).await {
        return error(c, None);
    }
    if let Some(names) = &req.subscribed_topic_names {
        if names
            .iter()
            .any(|t| !ctx.allowed(acl::op::DESCRIBE, acl::resource::TOPIC, t.as_str()))
        {
            return error(code::TOPIC_AUTHORIZATION_FAILED, None);
        }
    }
    let owned = req.topic_partitions.as_ref().map(|tps| {
        let mut a = Assignment::new();
        for tp in tps {
            a.entry(*tp.topic_id.as_bytes())
                .or_default()
                .extend(tp.partitions.iter().copied());
        }
        a
    });
    let request = HeartbeatRequest {
        version: ctx.version,
        member_id: req.member_id.to_string(),
        member_epoch: req.member_epoch,
        instance_id: req.instance_id.as_ref().map(|s| s.to_string()),
        rack_id: req.rack_id.as_ref().map(|s| s.to_string()),
        rebalance_timeout_ms: req.rebalance_timeout_ms,
        subscribed_topic_names: req
            .subscribed_topic_names
            .as_ref()
            .map(|ts| ts.iter().map(|t| t.to_string()).collect()),
        subscribed_topic_regex: req.subscribed_topic_regex.as_ref().map(|s| s.to_string()),
        server_assignor: req.server_assignor.as_ref().map(|s| s.to_string()),
        owned,
        client_id: ctx.client_id(),
        client_host: format!("/{}", ctx.peer.ip()),
    };
    let Some(coord) = ctx.broker.groups.get_or_create(&group) else {
        return error(code::NOT_COORDINATOR, None);
    };
    let topics = topics_view(ctx);
    let timeouts = ctx.broker.consumer_group_timeouts(&group);
    // Regexes resolve to the topics this principal may DESCRIBE, as in Kafka.
    let describable = ctx.broker.authorizer.enabled.then(|| {
        // Weak: the group keeps the filter; the broker owns the groups.
        let broker = Arc::downgrade(&ctx.broker);
        let (principal, host) = (ctx.principal.clone(), ctx.host.clone());
        TopicFilter(Arc::new(move |t: &str| {
            broker.upgrade().is_some_and(|b| {
                b.authorizer.allows(
                    &principal,
                    &host,
                    acl::op::DESCRIBE,
                    acl::resource::TOPIC,
                    t,
                )
            })
        }))
    });
    let Ok(r) = coord
        .send(ConsumerHeartbeat {
            request,
            topics,
            timeouts,
            describable,
        })
        .await
    else {
        return error(COORDINATOR_NOT_AVAILABLE, None);
    };
    let mut resp = ConsumerGroupHeartbeatResponse::default();
    resp.error_code = r.error;
    resp.error_message = r.message.map(StrBytes::from_string);
    resp.member_id = r.member_id.map(StrBytes::from_string);
    resp.member_epoch = if r.error == code::NONE {
        r.member_epoch
    } else {
        -1
    };
    resp.heartbeat_interval_ms = r.heartbeat_interval_ms;
    resp.assignment = r.assignment.map(|a| {
        let mut w = Wire::default();
        w.topic_partitions = a
            .into_iter()
            .map(|(id, ps)| {
                let mut tp = TopicPartitions::default();
                tp.topic_id = uuid::Uuid::from_bytes(id);
                tp.partitions = ps.into_iter().collect();
                tp
            })
            .collect();
        w
    });
    resp
}
