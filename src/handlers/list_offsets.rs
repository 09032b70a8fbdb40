//! ListOffsets (v1–10): earliest (-2), latest (-1), max timestamp (-3, v7+), earliest local
//! (-4, v8+: the log start, all of our log is "local"), latest tiered (-5, v9+: -1, nothing is
//! tiered) and a real lookup by timestamp (the first offset whose record timestamp is at or
//! after the target), over cold segments and the hot tail. v10 only adds a timeout for tiered
//! lookups, which we never wait on. The internal `__consumer_offsets` reads as an empty log.
//! Under read_committed (isolation level 1, v2+) the log ends at the last stable offset: latest
//! is the LSO and a timestamp lookup finding an offset at or past it finds nothing, as in Kafka.

use super::RequestCtx;
use crate::auth::acl;
use crate::broker::{Broker, OFFSETS_TOPIC};
use crate::error::{Error, Result};
use crate::log::leader::GetSnapshot;
use crate::log::partition::Snapshot;
use crate::protocol::records::{parse_records, ATTR_TIMESTAMP_LOG_APPEND};
use bytes::Bytes;
use kafka_protocol::messages::list_offsets_request::ListOffsetsTopic;
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};

pub const LATEST: i64 = -1;
pub const EARLIEST: i64 = -2;
pub const MAX_TIMESTAMP: i64 = -3;
pub const EARLIEST_LOCAL: i64 = -4;
pub const LATEST_TIERED: i64 = -5;

pub async fn handle(ctx: &RequestCtx, req: ListOffsetsRequest) -> ListOffsetsResponse {
    let broker = &ctx.broker;
    let committed = req.isolation_level == 1;
    let mut resp = ListOffsetsResponse::default();
    let wanted = req.topics.iter().flat_map(|t| {
        t.partitions
            .iter()
            .map(|p| (t.name.as_str(), p.partition_index))
    });
    if broker.cluster.is_some() && !broker.leads_all(wanted) {
        broker.catch_up_view().await;
    }
    for t in req.topics {
        if !ctx.allowed(acl::op::DESCRIBE, acl::resource::TOPIC, t.name.as_str()) {
            let mut tr = ListOffsetsTopicResponse::default();
            tr.name = t.name.clone();
            for p in t.partitions {
                let mut pr = no_offset(p.partition_index, -1);
                pr.error_code = Error::TopicAuthorization.code();
                tr.partitions.push(pr);
            }
            resp.topics.push(tr);
            continue;
        }
        if t.name.as_str() == OFFSETS_TOPIC {
            resp.topics.push(offsets_topic(ctx, t));
            continue;
        }
        let topic = broker.topic(t.name.as_str());
        let mut tr = ListOffsetsTopicResponse::default();
        tr.name = t.name.clone();
        for p in t.partitions {
            // The leader epoch exists from v4; earlier versions must leave it at -1.
            let mut pr = no_offset(p.partition_index, if ctx.version >= 4 { 0 } else { -1 });
            let part = topic
                .as_ref()
                .ok_or(Error::UnknownTopicOrPartition)
                .and_then(|t| t.local(p.partition_index));
            if let (Ok(part), true) = (&part, ctx.version >= 4) {
                pr.leader_epoch = part.epoch;
            }
            let res = match part {
                Err(e) => Err(e),
                Ok(part) => match part.addr.send(GetSnapshot).await {
                    Err(_) => Err(Error::NotLeader),
                    Ok(snap) => {
                        lookup(broker, &snap, p.timestamp, ctx.version)
                            .await
                            .map(|found| match found {
                                _ if !committed => found,
                                _ if p.timestamp == LATEST => (snap.last_stable_offset, -1),
                                (offset, _)
                                    if (p.timestamp >= 0 || p.timestamp == MAX_TIMESTAMP)
                                        && offset >= snap.last_stable_offset =>
                                {
                                    (-1, -1)
                                }
                                found => found,
                            })
                    }
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

/// A partition's answer before any lookup: no offset, no timestamp.
fn no_offset(partition: i32, leader_epoch: i32) -> ListOffsetsPartitionResponse {
    let mut pr = ListOffsetsPartitionResponse::default();
    pr.partition_index = partition;
    pr.timestamp = -1;
    pr.offset = -1;
    pr.leader_epoch = leader_epoch;
    pr
}

/// `__consumer_offsets`: every partition is an empty log (earliest = latest = 0).
fn offsets_topic(ctx: &RequestCtx, t: ListOffsetsTopic) -> ListOffsetsTopicResponse {
    let n = ctx.broker.offsets_topic_partitions().len() as i32;
    let mut tr = ListOffsetsTopicResponse::default();
    tr.name = t.name;
    for p in t.partitions {
        let mut pr = no_offset(p.partition_index, if ctx.version >= 4 { 0 } else { -1 });
        if !(0..n).contains(&p.partition_index) {
            pr.error_code = Error::UnknownTopicOrPartition.code();
        } else if matches!(p.timestamp, EARLIEST | LATEST | EARLIEST_LOCAL) {
            pr.offset = 0;
        }
        tr.partitions.push(pr);
    }
    tr
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
        EARLIEST_LOCAL if version >= 8 => Ok((snap.log_start, -1)),
        LATEST_TIERED if version >= 9 => Ok((-1, -1)),
        LATEST => Ok((snap.high_watermark, -1)),
        MAX_TIMESTAMP if version >= 7 => {
            let mut best: Option<(i64, i64)> = None;
            scan(
                broker,
                snap,
                move |offset, ts| {
                    if best.is_none_or(|(_, b)| ts > b) {
                        best = Some((offset, ts));
                    }
                    (false, best)
                },
                None,
            )
            .await
            .map(|b| b.unwrap_or((-1, -1)))
        }
        t if t >= 0 => scan(
            broker,
            snap,
            move |offset, ts| {
                if ts >= t {
                    return (true, Some((offset, ts)));
                }
                (false, None)
            },
            Some(t),
        )
        .await
        .map(|b| b.unwrap_or((-1, -1))),
        _ => Err(Error::InvalidRequest(format!(
            "unsupported timestamp query {target}"
        ))),
    }
}

/// What a scan carries between row groups: the visitor and the latest answer it gave.
type Scan<F> = (F, Option<(i64, i64)>);

/// Visit every visible record (offset, timestamp) in offset order until `f` says stop; `f`
/// returns (stop, answer so far) and the last answer is the result. With `min_ts`, batches
/// and segments whose newest timestamp is below it are skipped. Parsing (and decompressing
/// hot batches) runs on the blocking pool, a row group at a time, never on the event loop.
async fn scan<F>(
    broker: &Broker,
    snap: &Snapshot,
    f: F,
    min_ts: Option<i64>,
) -> Result<Option<(i64, i64)>>
where
    F: FnMut(i64, i64) -> (bool, Option<(i64, i64)>) + Send + 'static,
{
    let mut state: Scan<F> = (f, None);
    let bounds = (snap.log_start, snap.high_watermark);
    let hot_start = snap.hot.first().map_or(snap.high_watermark, |b| b.base);
    'segments: for s in &snap.segments {
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
        while let Some(group) = broker.cache.group_at(&broker.storage, s, at).await? {
            let batches: Vec<(Bytes, i64)> = group
                .iter()
                .take_while(|b| b.base_offset < hot_start)
                .map(|b| (b.bytes.clone(), b.max_timestamp))
                .collect();
            let whole = batches.len() == group.len();
            let (stop, st) = visit_all(batches, bounds, min_ts, state).await?;
            state = st;
            if stop {
                return Ok(state.1);
            }
            if !whole {
                // This segment reaches into the hot tail (its first batches were evicted from
                // memory, its last ones not): everything below the tail is visited, the rest
                // is read from the tail below.
                break 'segments;
            }
            match group.last() {
                Some(last) if last.last_offset >= at => at = last.last_offset + 1,
                _ => break,
            }
        }
    }
    let hot: Vec<(Bytes, i64)> = snap
        .hot
        .iter()
        .map(|b| (b.bytes.clone(), b.max_timestamp))
        .collect();
    let (_, state) = visit_all(hot, bounds, min_ts, state).await?;
    Ok(state.1)
}

/// Visit batches on the blocking pool; returns whether the visitor said stop.
async fn visit_all<F>(
    batches: Vec<(Bytes, i64)>,
    bounds: (i64, i64),
    min_ts: Option<i64>,
    state: Scan<F>,
) -> Result<(bool, Scan<F>)>
where
    F: FnMut(i64, i64) -> (bool, Option<(i64, i64)>) + Send + 'static,
{
    if batches.is_empty() {
        return Ok((false, state));
    }
    tokio::task::spawn_blocking(move || {
        let (mut f, mut answer) = state;
        for (bytes, max_ts) in &batches {
            let mut g = |o, t| {
                let (stop, a) = f(o, t);
                if a.is_some() {
                    answer = a;
                }
                stop
            };
            if visit(bytes, *max_ts, bounds, min_ts, &mut g)? {
                return Ok((true, (f, answer)));
            }
        }
        Ok((false, (f, answer)))
    })
    .await
    .map_err(|e| Error::Internal(e.to_string()))?
}

fn visit<F: FnMut(i64, i64) -> bool>(
    bytes: &Bytes,
    max_ts: i64,
    (log_start, high_watermark): (i64, i64),
    min_ts: Option<i64>,
    f: &mut F,
) -> Result<bool> {
    if min_ts.is_some_and(|m| max_ts < m) {
        return Ok(false);
    }
    let (h, records) = parse_records(bytes, 1 << 30)?;
    for r in records {
        let offset = h.base_offset + r.offset_delta as i64;
        if offset < log_start || offset >= high_watermark {
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
