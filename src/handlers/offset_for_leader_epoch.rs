//! OffsetForLeaderEpoch (v2–4): the end offset of a leader epoch, for clients' truncation checks.
//! This single broker has led every partition since it was created, so the partition leader epoch
//! is 0 for all data: epoch 0 (or any later epoch asked for) ends at the log end offset.

use super::RequestCtx;
use crate::error::code;
use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use kafka_protocol::messages::{OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse};
use std::sync::atomic::Ordering;

/// The (only) leader epoch of every partition.
pub const LEADER_EPOCH: i32 = 0;
const UNKNOWN_LEADER_EPOCH: i16 = 75;

pub fn handle(ctx: &RequestCtx, req: OffsetForLeaderEpochRequest) -> OffsetForLeaderEpochResponse {
    let mut resp = OffsetForLeaderEpochResponse::default();
    for t in req.topics {
        let topic = ctx.broker.topic(t.topic.as_str());
        let mut rt = OffsetForLeaderTopicResult::default();
        rt.topic = t.topic.clone();
        for p in t.partitions {
            let mut e = EpochEndOffset::default();
            e.partition = p.partition;
            e.leader_epoch = -1;
            e.end_offset = -1;
            match topic.as_ref().and_then(|tp| tp.partition(p.partition)) {
                None => e.error_code = code::UNKNOWN_TOPIC_OR_PARTITION,
                Some(_) if p.current_leader_epoch > LEADER_EPOCH => {
                    e.error_code = UNKNOWN_LEADER_EPOCH
                }
                // An older current epoch (FENCED_LEADER_EPOCH) cannot exist: ours is the first.
                Some(_) if p.leader_epoch < LEADER_EPOCH => {}
                Some(part) => {
                    e.leader_epoch = LEADER_EPOCH;
                    e.end_offset = part.stats.high_watermark.load(Ordering::Relaxed);
                }
            }
            rt.partitions.push(e);
        }
        resp.topics.push(rt);
    }
    resp
}
