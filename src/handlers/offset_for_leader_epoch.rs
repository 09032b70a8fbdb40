//! OffsetForLeaderEpoch (v2–4): the end offset of a leader epoch, for clients' truncation checks
//! (KIP-101/320). Standalone: one broker has led every partition since it was created, so epoch
//! 0 (or any later epoch asked for) ends at the log end offset. Cluster mode: each leadership
//! change starts a new epoch at the committed end (recorded in the metadata store); an epoch
//! ends where the next one starts.

use super::RequestCtx;
use crate::error::code;
use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use kafka_protocol::messages::{OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse};
use std::sync::atomic::Ordering;

/// The epoch and end offset Kafka's leader-epoch cache answers for `requested`, given the
/// partition's epochs with their start offsets (oldest first), its current epoch and its log
/// end offset: the largest epoch at most `requested`, ending where the next epoch starts.
pub fn end_offset_for(
    history: &[(i32, i64)],
    current: i32,
    end: i64,
    requested: i32,
) -> (i32, i64) {
    if requested < 0 {
        return (-1, -1);
    }
    if requested >= current || history.is_empty() {
        return (current, end);
    }
    match history.iter().find(|(e, _)| *e > requested) {
        None => (current, end),
        Some((_, next_start)) => {
            let floor = history
                .iter()
                .rev()
                .find(|(e, _)| *e <= requested)
                .map_or(requested, |(e, _)| *e);
            (floor, *next_start)
        }
    }
}

pub fn handle(ctx: &RequestCtx, req: OffsetForLeaderEpochRequest) -> OffsetForLeaderEpochResponse {
    let mut resp = OffsetForLeaderEpochResponse::default();
    for t in req.topics {
        let topic = ctx.broker.topic(t.topic.as_str());
        let mut rt = OffsetForLeaderTopicResult::default();
        rt.topic = t.topic.clone();
        let describable = ctx.allowed(
            crate::auth::acl::op::DESCRIBE,
            crate::auth::acl::resource::TOPIC,
            t.topic.as_str(),
        );
        for p in t.partitions {
            let mut e = EpochEndOffset::default();
            e.partition = p.partition;
            e.leader_epoch = -1;
            e.end_offset = -1;
            if !describable {
                e.error_code = code::TOPIC_AUTHORIZATION_FAILED;
                rt.partitions.push(e);
                continue;
            }
            let part = match topic.as_ref().map(|tp| tp.local(p.partition)) {
                None => {
                    e.error_code = code::UNKNOWN_TOPIC_OR_PARTITION;
                    rt.partitions.push(e);
                    continue;
                }
                Some(Err(err)) => {
                    e.error_code = err.code();
                    rt.partitions.push(e);
                    continue;
                }
                Some(Ok(part)) => part,
            };
            if p.current_leader_epoch > part.epoch {
                e.error_code = code::UNKNOWN_LEADER_EPOCH;
            } else if p.current_leader_epoch >= 0 && p.current_leader_epoch < part.epoch {
                e.error_code = code::FENCED_LEADER_EPOCH;
            } else {
                let hw = part.stats.high_watermark.load(Ordering::Relaxed);
                let (epoch, end) = end_offset_for(&part.epochs, part.epoch, hw, p.leader_epoch);
                e.leader_epoch = epoch;
                e.end_offset = end;
            }
            rt.partitions.push(e);
        }
        resp.topics.push(rt);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::end_offset_for;

    #[test]
    fn standalone_has_one_epoch_ending_at_the_log_end() {
        assert_eq!(end_offset_for(&[], 0, 42, 0), (0, 42));
        assert_eq!(end_offset_for(&[], 0, 42, 3), (0, 42));
        assert_eq!(end_offset_for(&[], 0, 42, -1), (-1, -1));
    }

    #[test]
    fn an_epoch_ends_where_the_next_starts() {
        let h = [(1, 0), (2, 100), (5, 250)];
        assert_eq!(end_offset_for(&h, 5, 300, 5), (5, 300));
        assert_eq!(end_offset_for(&h, 5, 300, 1), (1, 100));
        assert_eq!(end_offset_for(&h, 5, 300, 2), (2, 250));
        // An epoch that never led here: the largest earlier one, ending at the next start.
        assert_eq!(end_offset_for(&h, 5, 300, 3), (2, 250));
        // Older than every recorded epoch.
        assert_eq!(end_offset_for(&h, 5, 300, 0), (0, 0));
    }
}
