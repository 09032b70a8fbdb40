//! OffsetCommit (v2–9): group commits checked against member and generation, simple commits
//! (generation -1, no member) for assign()-based consumers; answered after the group's offsets
//! document is written.

use super::RequestCtx;
use crate::auth::acl;
use crate::error::code;
use crate::group::coordinator::Commit;
use crate::group::state::{COORDINATOR_NOT_AVAILABLE, INVALID_GROUP_ID};
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::{OffsetCommitRequest, OffsetCommitResponse};

pub async fn handle(ctx: &RequestCtx, req: OffsetCommitRequest) -> OffsetCommitResponse {
    let broker = &ctx.broker;
    // (topic index, partition index) → code for partitions refused before the coordinator.
    let mut pre: Vec<Vec<Option<i16>>> = Vec::new();
    let mut offsets = Vec::new();
    let group_ok = ctx
        .check_group(acl::op::READ, req.group_id.as_str())
        .is_ok();
    for t in &req.topics {
        let topic = broker.topic(t.name.as_str());
        let topic_ok =
            !group_ok || ctx.allowed(acl::op::READ, acl::resource::TOPIC, t.name.as_str());
        let mut codes = Vec::new();
        for p in &t.partitions {
            if !topic_ok {
                codes.push(Some(code::TOPIC_AUTHORIZATION_FAILED));
                continue;
            }
            let known = topic
                .as_ref()
                .is_some_and(|tp| (0..tp.partition_count()).contains(&p.partition_index));
            if !known {
                codes.push(Some(code::UNKNOWN_TOPIC_OR_PARTITION));
                continue;
            }
            codes.push(None);
            offsets.push((
                t.name.to_string(),
                p.partition_index,
                p.committed_offset,
                if ctx.version >= 6 {
                    p.committed_leader_epoch
                } else {
                    -1
                },
                p.committed_metadata.as_ref().map(|s| s.to_string()),
            ));
        }
        pre.push(codes);
    }
    let result: Result<Vec<i16>, i16> = if !group_ok {
        Err(code::GROUP_AUTHORIZATION_FAILED)
    } else if req.group_id.is_empty() {
        Err(INVALID_GROUP_ID)
    } else if let Err(code) = broker.groups.route(req.group_id.as_str()).await {
        Err(code)
    } else if offsets.is_empty() {
        Ok(Vec::new())
    } else {
        match broker.groups.get_or_create(req.group_id.as_str()) {
            Some(c) => c
                .send(Commit {
                    api_version: ctx.version,
                    member_id: req.member_id.to_string(),
                    instance_id: req.group_instance_id.as_ref().map(|s| s.to_string()),
                    generation: req.generation_id_or_member_epoch,
                    offsets,
                })
                .await
                .unwrap_or(Err(COORDINATOR_NOT_AVAILABLE)),
            None => Err(code::NOT_COORDINATOR),
        }
    };
    let mut resp = OffsetCommitResponse::default();
    let mut it = match &result {
        Ok(v) => v.clone().into_iter(),
        Err(_) => Vec::new().into_iter(),
    };
    for (t, codes) in req.topics.iter().zip(pre) {
        let mut rt = OffsetCommitResponseTopic::default();
        rt.name = t.name.clone();
        for (p, c) in t.partitions.iter().zip(codes) {
            let mut rp = OffsetCommitResponsePartition::default();
            rp.partition_index = p.partition_index;
            rp.error_code = match (c, &result) {
                (_, Err(code::GROUP_AUTHORIZATION_FAILED)) => code::GROUP_AUTHORIZATION_FAILED,
                (Some(c), _) => c,
                (None, Err(e)) => *e,
                (None, Ok(_)) => it.next().unwrap_or(code::UNKNOWN_SERVER_ERROR),
            };
            rt.partitions.push(rp);
        }
        resp.topics.push(rt);
    }
    resp
}
