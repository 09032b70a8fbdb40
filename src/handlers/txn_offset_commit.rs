//! TxnOffsetCommit (v0–3): stages consumer-group offsets in the ongoing transaction (the group
//! must have been added with AddOffsetsToTxn, else INVALID_TXN_STATE); they are persisted with
//! the transaction's state and written to the group when the transaction commits, dropped when
//! it aborts. Meanwhile OffsetFetch with require_stable answers UNSTABLE_OFFSET_COMMIT for
//! them. WRITE on the TRANSACTIONAL_ID, READ on the GROUP and on each TOPIC. Member,
//! instance and generation (v3+) are checked against the group when given (KIP-447:
//! UNKNOWN_MEMBER_ID, ILLEGAL_GENERATION, FENCED_INSTANCE_ID).

use super::{ask_txn_coordinator, RequestCtx};
use crate::auth::acl::{op, resource};
use crate::error::code;
use crate::txn::coordinator::{AddOffsets, PendingOffset};
use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_protocol::messages::{TxnOffsetCommitRequest, TxnOffsetCommitResponse};

pub async fn handle(ctx: &RequestCtx, req: TxnOffsetCommitRequest) -> TxnOffsetCommitResponse {
    let id = req.transactional_id.to_string();
    let group = req.group_id.to_string();
    let broker = &ctx.broker;
    let whole: Option<i16> = if id.is_empty() || group.is_empty() {
        Some(code::INVALID_REQUEST)
    } else if !ctx.allowed(op::WRITE, resource::TRANSACTIONAL_ID, &id) {
        Some(code::TRANSACTIONAL_ID_AUTHORIZATION_FAILED)
    } else {
        ctx.check_group(op::READ, &group).err()
    };
    let now = crate::storage::writer::now_ms();
    let mut pre: Vec<Vec<Option<i16>>> = Vec::new();
    let mut offsets = Vec::new();
    for t in &req.topics {
        let name = t.name.to_string();
        let topic = broker.topic(&name);
        let topic_ok = whole.is_some() || ctx.allowed(op::READ, resource::TOPIC, &name);
        let mut codes = Vec::new();
        for p in &t.partitions {
            let too_large = p
                .committed_metadata
                .as_ref()
                .is_some_and(|m| m.len() > crate::group::coordinator::MAX_METADATA_BYTES);
            let e = if !topic_ok {
                Some(code::TOPIC_AUTHORIZATION_FAILED)
            } else if too_large {
                Some(crate::group::coordinator::OFFSET_METADATA_TOO_LARGE)
            } else if !topic
                .as_ref()
                .is_some_and(|tp| (0..tp.partition_count()).contains(&p.partition_index))
            {
                Some(code::UNKNOWN_TOPIC_OR_PARTITION)
            } else {
                offsets.push(PendingOffset {
                    group: group.clone(),
                    topic: name.clone(),
                    partition: p.partition_index,
                    offset: p.committed_offset,
                    leader_epoch: if ctx.version >= 2 {
                        p.committed_leader_epoch
                    } else {
                        -1
                    },
                    metadata: p.committed_metadata.as_ref().map(|m| m.to_string()),
                    staged_ms: now,
                });
                None
            };
            codes.push(e);
        }
        pre.push(codes);
    }
    let member = match (&whole, offsets.is_empty()) {
        (None, false) => match broker.groups.get_or_create(&group) {
            Some(c) => c
                .send(crate::group::coordinator::CheckTxnMember {
                    member_id: req.member_id.to_string(),
                    instance_id: req.group_instance_id.as_ref().map(|s| s.to_string()),
                    generation: req.generation_id,
                })
                .await
                .unwrap_or(Err(crate::group::state::COORDINATOR_NOT_AVAILABLE))
                .err(),
            None => Some(code::NOT_COORDINATOR),
        },
        _ => None,
    };
    let result: i16 = match whole.or(member) {
        Some(c) => c,
        None if offsets.is_empty() => code::NONE,
        None => {
            let add = AddOffsets {
                transactional_id: id,
                producer_id: req.producer_id.0,
                producer_epoch: req.producer_epoch,
                offsets,
            };
            // This API has no PRODUCER_FENCED in any version: INVALID_PRODUCER_EPOCH.
            ask_txn_coordinator(ctx, add, i16::MAX).await
        }
    };
    let mut resp = TxnOffsetCommitResponse::default();
    for (t, codes) in req.topics.iter().zip(pre) {
        let mut rt = TxnOffsetCommitResponseTopic::default();
        rt.name = t.name.clone();
        for (p, e) in t.partitions.iter().zip(codes) {
            let mut rp = TxnOffsetCommitResponsePartition::default();
            rp.partition_index = p.partition_index;
            rp.error_code = match whole {
                Some(c) => c,
                None => e.unwrap_or(result),
            };
            rt.partitions.push(rp);
        }
        resp.topics.push(rt);
    }
    resp
}
