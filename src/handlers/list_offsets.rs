//! ListOffsets (v1–7): earliest (-2), latest (-1), max timestamp (-3, v7) and a real lookup by
//! timestamp (the first offset whose record timestamp is at or after the target), over cold
//! segments and the hot tail.

use super::RequestCtx;
use crate::broker::Broker;
use crate::error::{Error, Result};
use crate::log::leader::GetSnapshot;
use crate::log::partition::Snapshot;
use crate::protocol::records::{parse_records, ATTR_TIMESTAMP_LOG_APPEND};
use bytes::Bytes;
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};

pub const LATEST: i64 = -1;
pub const EARLIEST: i64 = -2;
pub const MAX_TIMESTAMP: i64 = -3;

pub async fn handle(ctx: &RequestCtx, req: ListOffsetsRequest) -> ListOffsetsResponse {
    let broker = &ctx.broker;
    let mut resp = ListOffsetsResponse::default();
    for t in req.topics {
        let topic = broker.topic(t.name.as_str());
        let mut tr = ListOffsetsTopicResponse::default();
        tr.name = t.name.clone();
        for p in t.partitions {
            let mut pr = ListOffsetsPartitionResponse::default();
            pr.partition_index = p.partition_index;
            pr.timestamp = -1;
            pr.offset = -1;
            // The field exists from v4; earlier versions must leave it at -1.
            pr.leader_epoch = if ctx.version >= 4 { 0 } else { -1 };
            let part = topic.as_ref().and_then(|t| t.partition(p.partition_index));
            let res = match part {
                None => Err(Error::UnknownTopicOrPartition),
                Some(part) => match part.addr.send(GetSnapshot).await {
                    Err(_) => Err(Error::NotLeader),
                    Ok(snap) => lookup(broker, &snap, p.timestamp, ctx.version).await,
                },
            };
            match res {
                Ok((offset, ts)) => {
                    pr.offset = offset;
                    pr.timestamp = ts;
                }
                Err(e) => pr.error_code = e.code(),
            }
            tr.partitions.push(pr);
        }
        resp.topics.push(tr);
    }
    resp
}

/// Resolve one timestamp query to (offset, timestamp); (-1, -1) when no record qualifies.
pub async fn lookup(
    broker: &Broker,
    snap: &Snapshot,
    target: i64,
    version: i16,
) -> Result<(i64, i64)> {
    match target {
        EARLIEST => Ok((snap.log_start, -1)),
        LATEST => Ok((snap.high_watermark, -1)),
        MAX_TIMESTAMP if version >= 7 => {
            let mut best: Option<(i64, i64)> = None;
            scan(
                broker,
                snap,
                |offset, ts| {
                    if best.is_none_or(|(_, b)| ts > b) {
                        best = Some((offset, ts));
                    }
                    false
                },
                None,
            )
            .await?;
            Ok(best.unwrap_or((-1, -1)))
        }
        t if t >= 0 => {
            let mut found = None;
            scan(
                broker,
                snap,
                |offset, ts| {
                    if ts >= t {
                        found = Some((offset, ts));
                        return true;
                    }
                    false
                },
                Some(t),
            )
            .await?;
            Ok(found.unwrap_or((-1, -1)))
        }
        _ => Err(Error::InvalidRequest(format!(
            "unsupported timestamp query {target}"
        ))),
    }
}

/// Visit every visible record (offset, timestamp) in offset order until `f` returns true.
/// With `min_ts`, batches and segments whose newest timestamp is below it are skipped.
async fn scan<F: FnMut(i64, i64) -> bool>(
    broker: &Broker,
    snap: &Snapshot,
    mut f: F,
    min_ts: Option<i64>,
) -> Result<()> {
    let hot_start = snap.hot.first().map_or(snap.high_watermark, |b| b.base);
    for s in &snap.segments {
        if s.base >= hot_start {
            break;
        }
        if let (Some(min), Some(max)) = (min_ts, s.max_timestamp) {
            if max < min {
                continue;
            }
        }
        // Row group by row group, so only one is decoded and held at a time.
        let mut at = s.base;
        'segment: while let Some(group) = broker.cache.group_at(&broker.storage, s, at).await? {
            for b in group.iter() {
                if b.base_offset >= hot_start {
                    break 'segment;
                }
                if visit(&b.bytes, b.max_timestamp, snap, min_ts, &mut f)? {
                    return Ok(());
                }
            }
            match group.last() {
                Some(last) if last.last_offset >= at => at = last.last_offset + 1,
                _ => break,
            }
        }
    }
    for b in &snap.hot {
        if visit(&b.bytes, b.max_timestamp, snap, min_ts, &mut f)? {
            return Ok(());
        }
    }
    Ok(())
}

fn visit<F: FnMut(i64, i64) -> bool>(
    bytes: &Bytes,
    max_ts: i64,
    snap: &Snapshot,
    min_ts: Option<i64>,
    f: &mut F,
) -> Result<bool> {
    if min_ts.is_some_and(|m| max_ts < m) {
        return Ok(false);
    }
    let (h, records) = parse_records(bytes, 1 << 30)?;
    for r in records {
        let offset = h.base_offset + r.offset_delta as i64;
        if offset < snap.log_start || offset >= snap.high_watermark {
            continue;
        }
        let ts = if h.attributes & ATTR_TIMESTAMP_LOG_APPEND != 0 {
            h.max_timestamp
        } else {
            h.base_timestamp + r.timestamp_delta
        };
        if f(offset, ts) {
            return Ok(true);
        }
    }
    Ok(false)
}
