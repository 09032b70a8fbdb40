//! ElectLeaders (v0–2). Every broker reads every partition from the object store, so a leader
//! election is a leadership move, never a replica catching up.
//!
//! - PREFERRED (0; v0 always): the preferred leader is the first replica of the partition's
//!   replica list when one was given (CreateTopics assignments, AlterPartitionReassignments);
//!   the leadership moves there if it is live (PREFERRED_LEADER_NOT_AVAILABLE if not), and a
//!   partition already led there, or without a replica list (its leader is its first replica),
//!   answers ELECTION_NOT_NEEDED.
//! - UNCLEAN (1): a partition with a live leader answers ELECTION_NOT_NEEDED; one without runs
//!   the assignment at once (ELIGIBLE_LEADERS_NOT_AVAILABLE when no broker is live).
//!
//! Standalone, this broker leads everything: ELECTION_NOT_NEEDED. With a null partition list
//! (all partitions), only the partitions an election was run for are listed, as Kafka does.

use super::RequestCtx;
use crate::broker::Topic;
use crate::error::code;
use kafka_protocol::messages::elect_leaders_response::{PartitionResult, ReplicaElectionResult};
use kafka_protocol::messages::{ElectLeadersRequest, ElectLeadersResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use std::sync::Arc;

pub const PREFERRED_LEADER_NOT_AVAILABLE: i16 = 80;
pub const ELIGIBLE_LEADERS_NOT_AVAILABLE: i16 = 83;
pub const ELECTION_NOT_NEEDED: i16 = 84;
const UNCLEAN: i8 = 1;

pub async fn handle(ctx: &RequestCtx, req: ElectLeadersRequest) -> ElectLeadersResponse {
    let b = &ctx.broker;
    let unclean = ctx.version >= 1 && req.election_type == UNCLEAN;
    let authorized = ctx.allowed_on_cluster(crate::auth::acl::op::ALTER);
    // Unauthorized: only what the request named is answered (no topic list leaks).
    let all = req.topic_partitions.is_none() && authorized;
    let named_unknown = req
        .topic_partitions
        .as_ref()
        .is_some_and(|tps| tps.iter().any(|t| b.topic(t.topic.as_str()).is_none()));
    if all || named_unknown {
        // Topics created through another broker may be newer than this broker's view.
        b.catch_up_view().await;
    }
    let wanted: Vec<(String, Vec<i32>)> = match req.topic_partitions {
        Some(tps) => tps
            .into_iter()
            .map(|t| (t.topic.to_string(), t.partitions))
            .collect(),
        None if !authorized => Vec::new(),
        None => b
            .topics()
            .iter()
            .map(|t| (t.name.clone(), (0..t.partition_count()).collect()))
            .collect(),
    };
    let mut resp = ElectLeadersResponse::default();
    if !authorized && ctx.version >= 1 {
        resp.error_code = code::CLUSTER_AUTHORIZATION_FAILED;
    }
    for (name, parts) in wanted {
        let topic = b.topic(&name);
        let mut tr = ReplicaElectionResult::default();
        tr.topic = TopicName(StrBytes::from_string(name.clone()));
        for p in parts {
            let (err, msg) = match &topic {
                _ if !authorized => (
                    code::CLUSTER_AUTHORIZATION_FAILED,
                    "Cluster authorization failed.".to_string(),
                ),
                Some(t) if (0..t.partition_count()).contains(&p) => elect(ctx, t, p, unclean).await,
                _ => (
                    code::UNKNOWN_TOPIC_OR_PARTITION,
                    format!("{name}-{p} does not exist"),
                ),
            };
            if all && err == ELECTION_NOT_NEEDED {
                continue;
            }
            let mut pr = PartitionResult::default();
            pr.partition_id = p;
            pr.error_code = err;
            pr.error_message = (err != code::NONE).then(|| StrBytes::from_string(msg));
            tr.partition_result.push(pr);
        }
        if !tr.partition_result.is_empty() || !all {
            resp.replica_election_results.push(tr);
        }
    }
    resp
}

/// One partition's election: (error code, message).
async fn elect(ctx: &RequestCtx, t: &Arc<Topic>, p: i32, unclean: bool) -> (i16, String) {
    let b = &ctx.broker;
    if b.cluster.is_none() {
        return (ELECTION_NOT_NEEDED, "the only broker leads it".into());
    }
    let (leader, _) = b.leader_of(t, p);
    if unclean {
        if leader >= 0 {
            return (ELECTION_NOT_NEEDED, format!("led by broker {leader}"));
        }
        return match b.assign_now().await {
            Err(e) => (e.code(), e.message()),
            Ok(_) if b.leader_of(t, p).0 >= 0 => (code::NONE, String::new()),
            Ok(_) => (
                ELIGIBLE_LEADERS_NOT_AVAILABLE,
                "no live broker can lead it".into(),
            ),
        };
    }
    let Some(preferred) = b.assigned_replicas(t, p).and_then(|r| r.first().copied()) else {
        return (
            ELECTION_NOT_NEEDED,
            "its leader is its preferred replica".into(),
        );
    };
    if preferred == leader {
        return (
            ELECTION_NOT_NEEDED,
            format!("already led by its preferred replica {preferred}"),
        );
    }
    match b.move_leader(t, p, preferred, None).await {
        Ok(Some(_)) => (code::NONE, String::new()),
        Ok(None) => (
            PREFERRED_LEADER_NOT_AVAILABLE,
            format!("preferred replica {preferred} is not live"),
        ),
        Err(e) => (e.code(), e.message()),
    }
}
