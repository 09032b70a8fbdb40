//! AlterPartitionReassignments (v0–1). Replicas are nominal here (every broker reads the
//! object store), so a reassignment completes at once: the partition's replica list becomes
//! the one given and its leadership moves to the first of them (epoch bumped, the previous
//! leader fenced). Every replica must be a live broker, without duplicates
//! (INVALID_REPLICA_ASSIGNMENT); changing the replica count needs
//! `allow_replication_factor_change` (v1, default true; INVALID_REPLICATION_FACTOR). A null
//! replica list cancels a reassignment: none is ever pending, so NO_REASSIGNMENT_IN_PROGRESS.
//! The leader stays where it was put until the set of live brokers changes (the assignment
//! then balances again). Standalone, the only valid list is this broker.

use super::RequestCtx;
use crate::error::code;
use kafka_protocol::messages::alter_partition_reassignments_response::{
    ReassignablePartitionResponse, ReassignableTopicResponse,
};
use kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse,
};
use kafka_protocol::protocol::StrBytes;
use std::collections::HashSet;

pub const NO_REASSIGNMENT_IN_PROGRESS: i16 = 85;

pub async fn handle(
    ctx: &RequestCtx,
    req: AlterPartitionReassignmentsRequest,
) -> AlterPartitionReassignmentsResponse {
    let b = &ctx.broker;
    let mut resp = AlterPartitionReassignmentsResponse::default();
    resp.allow_replication_factor_change = req.allow_replication_factor_change;
    if !ctx.allowed_on_cluster(crate::auth::acl::op::ALTER) {
        resp.error_code = code::CLUSTER_AUTHORIZATION_FAILED;
        resp.error_message = Some(StrBytes::from_static_str("Cluster authorization failed."));
        return resp;
    }
    if req
        .topics
        .iter()
        .any(|t| b.topic(t.name.as_str()).is_none())
    {
        // A topic created through another broker may be newer than this broker's view.
        b.catch_up_view().await;
    }
    let live: HashSet<i32> = b.live_brokers().iter().map(|i| i.node_id).collect();
    for t in req.topics {
        let topic = b.topic(t.name.as_str());
        let mut tr = ReassignableTopicResponse::default();
        tr.name = t.name.clone();
        for p in t.partitions {
            let res: Result<(), (i16, String)> = async {
                let topic = topic
                    .as_ref()
                    .filter(|tp| (0..tp.partition_count()).contains(&p.partition_index))
                    .ok_or((
                        code::UNKNOWN_TOPIC_OR_PARTITION,
                        "no such partition".to_string(),
                    ))?;
                let Some(replicas) = p.replicas else {
                    return Err((
                        NO_REASSIGNMENT_IN_PROGRESS,
                        "no reassignment is in progress".into(),
                    ));
                };
                let ids: Vec<i32> = replicas.iter().map(|r| r.0).collect();
                let distinct: HashSet<i32> = ids.iter().copied().collect();
                if ids.is_empty() || distinct.len() != ids.len() {
                    return Err((
                        code::INVALID_REPLICA_ASSIGNMENT,
                        "the replica list must be non-empty, without duplicates".into(),
                    ));
                }
                if let Some(dead) = ids.iter().find(|i| !live.contains(i)) {
                    return Err((
                        code::INVALID_REPLICA_ASSIGNMENT,
                        format!("broker {dead} is not a live broker"),
                    ));
                }
                let (leader, _) = b.leader_of(topic, p.partition_index);
                let current = b
                    .assigned_replicas(topic, p.partition_index)
                    .unwrap_or_else(|| b.replicas(topic, p.partition_index, leader));
                if !req.allow_replication_factor_change && current.len() != ids.len() {
                    return Err((
                        code::INVALID_REPLICATION_FACTOR,
                        format!(
                            "the partition has {} replica(s); changing that is not allowed",
                            current.len()
                        ),
                    ));
                }
                if b.cluster.is_none() {
                    return Ok(());
                }
                match b
                    .move_leader(topic, p.partition_index, ids[0], Some(&ids))
                    .await
                {
                    Ok(Some(_)) => Ok(()),
                    Ok(None) => Err((
                        code::INVALID_REPLICA_ASSIGNMENT,
                        format!("broker {} is not a live broker", ids[0]),
                    )),
                    Err(e) => Err((e.code(), e.message())),
                }
            }
            .await;
            let mut pr = ReassignablePartitionResponse::default();
            pr.partition_index = p.partition_index;
            match res {
                Ok(()) => pr.error_message = None,
                Err((c, m)) => {
                    pr.error_code = c;
                    pr.error_message = Some(StrBytes::from_string(m));
                }
            }
            tr.partitions.push(pr);
        }
        resp.responses.push(tr);
    }
    resp
}
