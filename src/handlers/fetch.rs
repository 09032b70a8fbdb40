//! Fetch (v4–18; v17/v18 change only what replica fetchers send): reads from the hot tail
//! (batches as produced, no re-encoding) or from cold segments through the segment cache;
//! honours `max_wait_ms`/`min_bytes` (long-poll woken by the partitions' high watermarks),
//! `max_bytes`, per-partition limits and the isolation level: read_committed reads stop at
//! the last stable offset and list the aborted transactions of the range, read_uncommitted
//! reads stop at the high watermark (and carry a null list). Only durable data (below the
//! high watermark) is ever returned. Fetch sessions (KIP-227, v7+, see
//! `broker::fetch_sessions`): a session's partitions are read whether or not the request lists
//! them, and an incremental response carries only the partitions with something new.

use super::RequestCtx;
use crate::auth::acl;
use crate::broker::fetch_sessions::{Key, Outcome, Plan, Sent, Want};
use crate::broker::{Broker, Topic, OFFSETS_TOPIC};
use crate::error::{code, Error, Result};
use crate::log::leader::{Read, ReadOut};
use crate::log::partition::ReadPlan;
use bytes::Bytes;
use futures::StreamExt;
use kafka_protocol::messages::fetch_response::{
    AbortedTransaction, FetchableTopicResponse, PartitionData,
};
use kafka_protocol::messages::{FetchRequest, FetchResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Longest long-poll we honour (Kafka clients default to 500 ms).
const MAX_WAIT_CAP: Duration = Duration::from_secs(30);

struct Target {
    topic_index: usize,
    partition: i32,
    offset: i64,
    max_bytes: usize,
    /// The leader epoch the client believes in (-1: not checked).
    leader_epoch: i32,
    topic: Option<Arc<Topic>>,
    /// `Some(partitions)` for the internal `__consumer_offsets`, whose log reads as empty.
    internal: Option<i32>,
    /// The ACLs refuse READ on the topic.
    denied: bool,
}

/// The topic of a run of partitions: name, id, the live topic, for `__consumer_offsets` its
/// partition count, and whether READ on it is denied.
type RunOf = (String, [u8; 16], Option<Arc<Topic>>, Option<i32>, bool);

/// Index entries whose first row group a cold read fetches ahead (in order).
const COLD_READ_AHEAD: usize = 8;

/// A Fetch response and, per partition (in response order), its batches as shared chunks:
/// they are spliced into the response frame by [`crate::protocol::fetch_response::encode`]
/// and written with vectored writes, never copied.
pub struct FetchReply {
    pub response: FetchResponse,
    pub records: Vec<Vec<Bytes>>,
}

pub async fn handle(ctx: &RequestCtx, req: FetchRequest) -> FetchReply {
    let broker = &ctx.broker;
    let mut resp = FetchResponse::default();
    let by_id = ctx.version >= 13;
    let key = |topic: &TopicName, id: &uuid::Uuid, partition: i32| Key {
        topic: if by_id {
            String::new()
        } else {
            topic.to_string()
        },
        topic_id: if by_id { *id.as_bytes() } else { [0; 16] },
        partition,
    };
    let wanted: Vec<(Key, Want)> = req
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(|p| {
                let want = Want {
                    fetch_offset: p.fetch_offset,
                    max_bytes: p.partition_max_bytes,
                    leader_epoch: p.current_leader_epoch,
                };
                (key(&t.topic, &t.topic_id, p.partition), want)
            })
        })
        .collect();
    // KIP-227 (v7+): the session decides which partitions this request covers.
    let plan = if ctx.version >= 7 {
        let forgotten: Vec<Key> = req
            .forgotten_topics_data
            .iter()
            .flat_map(|f| f.partitions.iter().map(|&p| key(&f.topic, &f.topic_id, p)))
            .collect();
        let begun = broker
            .fetch_sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .begin(
                req.session_id,
                req.session_epoch,
                wanted,
                forgotten,
                std::time::Instant::now(),
            );
        match begun {
            Ok(plan) => plan,
            Err(code) => {
                resp.error_code = code;
                return FetchReply {
                    response: resp,
                    records: Vec::new(),
                };
            }
        }
    } else {
        Plan {
            partitions: wanted,
            session_id: 0,
            incremental: false,
        }
    };
    resp.session_id = plan.session_id;
    let kind = match (plan.incremental, plan.session_id) {
        (true, _) => "incremental",
        (false, 0) => "none",
        (false, _) => "new",
    };
    broker
        .metrics
        .fetch_session_requests
        .with_label_values(&[kind])
        .inc();
    let offsets_id = broker.offsets_topic_id();
    let mut targets = Vec::new();
    // Partitions of one topic are consecutive in the plan: one response topic per run.
    let mut current: Option<RunOf> = None;
    for (k, w) in &plan.partitions {
        if current
            .as_ref()
            .is_none_or(|(n, id, _, _, _)| *n != k.topic || *id != k.topic_id)
        {
            let topic = if by_id {
                broker.topic_by_id(&k.topic_id)
            } else {
                broker.topic(&k.topic)
            };
            let internal = match by_id {
                true => k.topic_id == offsets_id,
                false => k.topic == OFFSETS_TOPIC,
            }
            .then(|| broker.offsets_topic_partitions().len() as i32);
            let name = match (&topic, internal) {
                (Some(t), _) => Some(t.name.as_str()),
                (None, Some(_)) => Some(OFFSETS_TOPIC),
                (None, None) => (!by_id).then_some(k.topic.as_str()),
            };
            let denied = name.is_some_and(|n| !ctx.allowed(acl::op::READ, acl::resource::TOPIC, n));
            let mut tr = FetchableTopicResponse::default();
            tr.topic = TopicName(StrBytes::from_string(k.topic.clone()));
            tr.topic_id = uuid::Uuid::from_bytes(k.topic_id);
            resp.responses.push(tr);
            current = Some((k.topic.clone(), k.topic_id, topic, internal, denied));
        }
        let Some((_, _, topic, internal, denied)) = &current else {
            continue;
        };
        targets.push(Target {
            topic_index: resp.responses.len() - 1,
            partition: k.partition,
            offset: w.fetch_offset,
            max_bytes: w.max_bytes.max(0) as usize,
            leader_epoch: w.leader_epoch,
            topic: if *denied { None } else { topic.clone() },
            internal: *internal,
            denied: *denied,
        });
    }
    // Kafka's rule: at most min(request max_bytes, broker fetch_max_bytes) — a non-positive
    // request value means 0, not unlimited — but at least one batch when one is available.
    let max_bytes = (req.max_bytes.max(0) as usize).min(broker.settings.fetch_max_bytes);
    let min_bytes = req.min_bytes.max(0) as usize;
    let wait = Duration::from_millis(req.max_wait_ms.max(0) as u64).min(MAX_WAIT_CAP);
    let deadline = Instant::now() + wait;
    let committed = req.isolation_level == 1;

    let mut watchers: Vec<watch::Receiver<i64>> = targets
        .iter()
        .filter_map(|t| {
            t.topic
                .as_ref()?
                .partition(t.partition)
                .map(|p| p.high_watermark.clone())
        })
        .collect();
    let results = loop {
        for w in watchers.iter_mut() {
            w.borrow_and_update();
        }
        let results = read_all(broker, &targets, max_bytes, by_id, committed).await;
        let total: usize = results
            .iter()
            .flat_map(|(_, chunks)| chunks.iter().map(|c| c.len()))
            .sum();
        let any_error = results.iter().any(|(r, _)| r.error_code != code::NONE);
        // min_bytes <= 0 answers at once, as Kafka does.
        if total >= min_bytes || any_error || Instant::now() >= deadline || watchers.is_empty() {
            break results;
        }
        let remaining = deadline.saturating_duration_since(Instant::now());
        let changed =
            futures::future::select_all(watchers.iter_mut().map(|w| Box::pin(w.changed())));
        match tokio::time::timeout(remaining, changed).await {
            Ok((Ok(()), _, _)) => continue,
            // Deadline reached, or a partition went away: answer with what there is now.
            _ => break read_all(broker, &targets, max_bytes, by_id, committed).await,
        }
    };
    // Partitions are listed topic by topic, in request order, so the chunk lists line up
    // with the response's partitions.
    // Incremental sessions answer only what changed for the client.
    let keep = if plan.session_id != 0 {
        let outcomes: Vec<Outcome> = results
            .iter()
            .map(|(pd, chunks)| Outcome {
                error_code: pd.error_code,
                has_records: chunks.iter().any(|c| !c.is_empty()),
                sent: Sent {
                    high_watermark: pd.high_watermark,
                    last_stable_offset: pd.last_stable_offset,
                    log_start_offset: pd.log_start_offset,
                },
            })
            .collect();
        broker
            .fetch_sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .finish(&plan, &outcomes)
    } else {
        vec![true; results.len()]
    };
    let mut records = Vec::with_capacity(results.len());
    let mut nodes = std::collections::BTreeSet::new();
    for ((t, (mut pd, chunks)), keep) in targets.iter().zip(results).zip(keep) {
        if !keep {
            continue;
        }
        // KIP-951 (v12+): point a client that asked the wrong broker at the leader.
        if ctx.version >= 12 && pd.error_code == code::NOT_LEADER_OR_FOLLOWER {
            if let Some(topic) = &t.topic {
                let (leader, epoch) = broker.leader_of(topic, t.partition);
                if leader >= 0 {
                    pd.current_leader.leader_id = leader.into();
                    pd.current_leader.leader_epoch = epoch;
                    nodes.insert(leader);
                }
            }
        }
        resp.responses[t.topic_index].partitions.push(pd);
        records.push(chunks);
    }
    if plan.incremental {
        resp.responses.retain(|t| !t.partitions.is_empty());
    }
    if ctx.version >= 16 {
        for b in ctx.brokers() {
            if nodes.contains(&b.node_id) {
                let mut n = kafka_protocol::messages::fetch_response::NodeEndpoint::default();
                n.node_id = b.node_id.into();
                n.host = b.host.into();
                n.port = b.port;
                n.rack = b.rack.map(Into::into);
                resp.node_endpoints.push(n);
            }
        }
    }
    FetchReply {
        response: resp,
        records,
    }
}

async fn read_all(
    broker: &Broker,
    targets: &[Target],
    max_bytes: usize,
    by_id: bool,
    committed: bool,
) -> Vec<(PartitionData, Vec<Bytes>)> {
    let mut out = Vec::with_capacity(targets.len());
    let mut budget = max_bytes;
    // Only the first partition with data may exceed the limits (one whole batch).
    let mut served_any = false;
    for t in targets {
        let mut pd = PartitionData::default();
        pd.partition_index = t.partition;
        pd.high_watermark = -1;
        pd.last_stable_offset = -1;
        pd.log_start_offset = -1;
        pd.preferred_read_replica = (-1).into();
        pd.records = Some(Bytes::new());
        // Kafka: a list (maybe empty) for read_committed, null for read_uncommitted.
        pd.aborted_transactions = committed.then(Vec::new);
        let mut chunks = Vec::new();
        if t.denied {
            pd.error_code = code::TOPIC_AUTHORIZATION_FAILED;
            out.push((pd, chunks));
            continue;
        }
        if let (None, Some(n)) = (&t.topic, t.internal) {
            pd.error_code = if !(0..n).contains(&t.partition) {
                code::UNKNOWN_TOPIC_OR_PARTITION
            } else if t.offset != 0 {
                code::OFFSET_OUT_OF_RANGE
            } else {
                pd.high_watermark = 0;
                pd.last_stable_offset = 0;
                pd.log_start_offset = 0;
                code::NONE
            };
            out.push((pd, chunks));
            continue;
        }
        let Some(topic) = &t.topic else {
            pd.error_code = if by_id {
                code::UNKNOWN_TOPIC_ID
            } else {
                code::UNKNOWN_TOPIC_OR_PARTITION
            };
            out.push((pd, chunks));
            continue;
        };
        let part = match topic.local(t.partition) {
            Ok(p) => p,
            Err(e) => {
                pd.error_code = e.code();
                out.push((pd, chunks));
                continue;
            }
        };
        // KIP-320: a client that knows a newer epoch talks to a stale leader view; an older
        // one must refresh its metadata.
        if t.leader_epoch >= 0 && t.leader_epoch != part.epoch {
            pd.error_code = if t.leader_epoch > part.epoch {
                code::UNKNOWN_LEADER_EPOCH
            } else {
                code::FENCED_LEADER_EPOCH
            };
            out.push((pd, chunks));
            continue;
        }
        let hw = part.stats.high_watermark.load(Ordering::Relaxed);
        let lso = part
            .stats
            .last_stable_offset
            .load(Ordering::Relaxed)
            .min(hw);
        pd.high_watermark = hw;
        pd.last_stable_offset = lso;
        pd.log_start_offset = part.stats.log_start.load(Ordering::Relaxed);
        let limit = t.max_bytes.min(budget);
        if limit == 0 && served_any {
            out.push((pd, chunks));
            continue;
        }
        // read_committed: nothing past the last stable offset is served yet.
        let caught_up = t.offset == hw || (committed && (lso..=hw).contains(&t.offset));
        if caught_up && pd.log_start_offset <= hw {
            // Caught up: nothing to read, no message to the leader (an idle consumer of many
            // partitions costs a few atomic loads per partition).
            out.push((pd, chunks));
            continue;
        }
        match read_partition(broker, part, t.offset, limit.max(1), committed).await {
            Ok((batches, hw_now, start, cold, aborted)) => {
                let len: usize = batches.iter().map(|b| b.len()).sum();
                budget = budget.saturating_sub(len);
                served_any |= len > 0;
                if len > 0 {
                    let records: u64 = batches
                        .iter()
                        .map(|b| crate::protocol::records::count_records(b))
                        .sum();
                    broker
                        .metrics
                        .bytes_out
                        .with_label_values(&[topic.name.as_str()])
                        .inc_by(len as u64);
                    broker
                        .metrics
                        .records_out
                        .with_label_values(&[topic.name.as_str()])
                        .inc_by(records);
                    broker
                        .metrics
                        .fetch_bytes
                        .with_label_values(&[if cold { "cold" } else { "hot" }])
                        .inc_by(len as u64);
                }
                pd.high_watermark = hw_now.max(hw);
                pd.last_stable_offset = part
                    .stats
                    .last_stable_offset
                    .load(Ordering::Relaxed)
                    .max(lso)
                    .min(pd.high_watermark);
                pd.log_start_offset = start;
                if committed {
                    // Only those that may hold records of what is returned (Kafka's bound).
                    let end = batches
                        .last()
                        .and_then(|b| crate::protocol::records::BatchHeader::parse(b).ok())
                        .map_or(t.offset, |h| h.last_offset());
                    pd.aborted_transactions = Some(
                        aborted
                            .iter()
                            .filter(|a| a.first_offset <= end)
                            .map(|a| {
                                let mut t = AbortedTransaction::default();
                                t.producer_id = a.producer_id.into();
                                t.first_offset = a.first_offset;
                                t
                            })
                            .collect(),
                    );
                }
                chunks = batches;
            }
            Err(e) => pd.error_code = e.code(),
        }
        out.push((pd, chunks));
    }
    out
}

/// What a partition read returns: batches, high watermark, log start, whether they were
/// rebuilt from storage, and (read_committed) the aborted transactions of the range.
type PartitionRead = (
    Vec<Bytes>,
    i64,
    i64,
    bool,
    Vec<crate::log::transactions::Aborted>,
);

/// Read up to `limit` bytes from `offset` (at least one whole batch when any is available),
/// up to the last stable offset for read_committed (`committed`), else the high watermark.
async fn read_partition(
    broker: &Broker,
    part: &crate::broker::Partition,
    offset: i64,
    limit: usize,
    committed: bool,
) -> Result<PartitionRead> {
    let ReadOut {
        plan,
        upto,
        aborted,
    } = part
        .addr
        .send(Read {
            offset,
            max_bytes: limit,
            committed,
        })
        .await
        .map_err(|_| Error::NotLeader)??;
    let hw = part.stats.high_watermark.load(Ordering::Relaxed);
    let start = part.stats.log_start.load(Ordering::Relaxed);
    let cold = matches!(plan, ReadPlan::Cold(_));
    let chunks: Vec<Bytes> = match plan {
        ReadPlan::Hot(chunks) => chunks,
        ReadPlan::Cold(segments) => {
            // Row group by row group: only what this response serves is decoded. The first row
            // group of the next few entries is fetched ahead, in order: a log that a leader
            // took over is many small write-ahead parts, each a ranged GET, and one at a time
            // their latency would bound a consumer catching up.
            let storage = &broker.storage;
            let cache = &broker.cache;
            let mut reads = futures::stream::iter(segments)
                .map(|s| async move {
                    let start = offset.max(s.base);
                    let first = cache.group_at(storage, &s, start).await;
                    (s, start, first)
                })
                .buffered(COLD_READ_AHEAD);
            let mut chunks = Vec::new();
            let mut size = 0usize;
            'outer: while let Some((s, mut at, first)) = reads.next().await {
                let mut next = first?;
                while let Some(group) = next {
                    for b in group.iter() {
                        if b.last_offset < offset {
                            continue;
                        }
                        if b.base_offset >= upto {
                            // Past the last stable offset (read_committed).
                            break 'outer;
                        }
                        if !chunks.is_empty() && size + b.bytes.len() > limit {
                            break 'outer;
                        }
                        size += b.bytes.len();
                        if part.epoch != 0 {
                            // Cluster mode: served batches carry the serving leader's epoch
                            // (every offset it serves is below the start of the next epoch).
                            let mut v = bytes::BytesMut::from(&b.bytes[..]);
                            crate::protocol::records::set_partition_leader_epoch(
                                &mut v, part.epoch,
                            );
                            chunks.push(v.freeze());
                        } else {
                            chunks.push(b.bytes.clone());
                        }
                    }
                    match group.last() {
                        Some(last) if last.last_offset >= at => at = last.last_offset + 1,
                        _ => break,
                    }
                    if size >= limit {
                        break 'outer;
                    }
                    next = cache.group_at(storage, &s, at).await?;
                }
            }
            chunks
        }
    };
    Ok((chunks, hw, start, cold, aborted))
}
