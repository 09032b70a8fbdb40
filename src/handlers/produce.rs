//! Produce (v3–13; v0–2 close the connection, see `SUPPORTED`; v13 names topics by id). Each partition's batch is
//! validated (magic 2, lengths, CRC-32C, codec, record count and deltas, decompression capped),
//! appended by its PartitionLeader, and answered only once durable (acks 1/-1). acks=0 gets no
//! response at all. Pipelined Produce requests of one connection are validated in parallel but
//! append in request order (`ProduceGate`), so offsets follow the order the client sent them.

use super::{err_msg, RequestCtx};
use crate::auth::acl;
use crate::broker::{Topic, OFFSETS_TOPIC};
use crate::error::{code, Error, Result};
use crate::log::leader::{Append, AppendTicket};
use crate::log::partition::AppendResult;
use crate::protocol::records::{
    recompress, validate_produce, validate_produce_with, BatchHeader, DecodeBudget, ValidatedBatch,
};

use bytes::Bytes;
use futures::StreamExt;
use kafka_protocol::messages::produce_response::{
    BatchIndexAndErrorMessage, PartitionProduceResponse, TopicProduceResponse,
};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse};
use std::sync::Arc;
use std::time::Duration;

/// Cap on a produced batch's decompressed size relative to the largest accepted batch:
/// generous for real data (text compresses ~10×), fatal for a compression bomb.
pub const DECOMPRESSION_RATIO_CAP: usize = 64;

/// Batches of one Produce request validated concurrently.
const VALIDATION_CONCURRENCY: usize = 8;

async fn validate(
    records: Option<Bytes>,
    max_bytes: usize,
    budget: DecodeBudget,
) -> Result<ValidatedBatch> {
    let records = records.ok_or_else(|| Error::InvalidRecord("null record set".into()))?;
    if records.len() > max_bytes {
        return Err(Error::MessageTooLarge(records.len()));
    }
    let cap = max_bytes
        .saturating_mul(DECOMPRESSION_RATIO_CAP)
        .max(1 << 20);
    let compressed = BatchHeader::parse(&records)
        .map(|h| h.attributes & 0x7 != 0)
        .unwrap_or(false);
    if compressed {
        // Decompression is heavy: keep it off the connection's event loop. It streams, holding
        // large records against the broker-wide decode budget.
        tokio::task::spawn_blocking(move || validate_produce_with(&records, cap, Some(&budget)))
            .await
            .map_err(|e| Error::Internal(e.to_string()))?
    } else {
        validate_produce(&records, cap)
    }
}

pub async fn handle(ctx: &RequestCtx, mut req: ProduceRequest) -> Option<ProduceResponse> {
    let broker = ctx.broker.clone();
    let acks = req.acks;
    let timeout = Duration::from_millis(req.timeout_ms.clamp(0, 3_600_000) as u64);
    // Phase 1, concurrently: validate (and recompress) every partition's batch.
    let mut prepared = Vec::new();
    let by_id = ctx.version >= 13;
    let transactional_id: Option<Arc<str>> =
        req.transactional_id.as_ref().map(|t| t.as_str().into());
    // WRITE on the transactional id (checked only if the request carries transactional
    // records, which need it).
    let txn_denied = transactional_id
        .as_ref()
        .is_some_and(|id| !ctx.may(acl::op::WRITE, acl::resource::TRANSACTIONAL_ID, id));
    // Cluster mode: a topic created (or a partition moved here) through another broker may be
    // newer than this broker's view; look in the store before answering UNKNOWN_TOPIC or
    // NOT_LEADER.
    if broker.cluster.is_some()
        && req.topic_data.iter().any(|t| {
            let name = match by_id {
                true => match broker.topic_by_id(t.topic_id.as_bytes()) {
                    Some(tp) => tp.name.clone(),
                    None => return true,
                },
                false => t.name.to_string(),
            };
            !broker.leads_all(t.partition_data.iter().map(|p| (name.as_str(), p.index)))
        })
    {
        broker.catch_up_view().await;
    }
    for t in req.topic_data.iter_mut() {
        let topic = if by_id {
            broker.topic_by_id(t.topic_id.as_bytes())
        } else {
            broker.topic(t.name.as_str())
        };
        let internal = t.name.as_str() == OFFSETS_TOPIC;
        // WRITE on the topic (by id: on the topic the id names; an unknown id stays unknown).
        let denied = match &topic {
            Some(tp) => !ctx.allowed(acl::op::WRITE, acl::resource::TOPIC, &tp.name),
            None => !by_id && !ctx.allowed(acl::op::WRITE, acl::resource::TOPIC, t.name.as_str()),
        };
        for p in t.partition_data.iter_mut() {
            let topic = topic.clone();
            // Taken out of the request: once the leader has copied the batch into its log, the
            // request frame is released instead of being held until the batch is durable.
            let records = p.records.take();
            let idx = p.index;
            let broker = broker.clone();
            let transactional_id = transactional_id.clone();
            prepared.push(async move {
                let res: Result<(Arc<Topic>, ValidatedBatch)> = async {
                    if !matches!(acks, -1..=1) {
                        return Err(Error::InvalidRequiredAcks(acks));
                    }
                    if denied {
                        return Err(Error::TopicAuthorization);
                    }
                    let topic = topic.ok_or_else(|| match by_id {
                        true => Error::UnknownTopicId,
                        false if internal => Error::InvalidTopic(format!(
                            "cannot append to the internal topic {OFFSETS_TOPIC}"
                        )),
                        false => Error::UnknownTopicOrPartition,
                    })?;
                    topic.local(idx)?;
                    let max = topic
                        .max_message_bytes()
                        .unwrap_or(broker.settings.max_message_bytes);
                    let mut batch = validate(records, max, broker.decode_budget.clone()).await?;
                    if batch.header.is_transactional() {
                        // Kafka: transactional records need the request's transactional id,
                        // and the partition must have been added to that id's ongoing
                        // transaction (under the producer's current epoch). Anything else
                        // is refused rather than stored outside a transaction (which would
                        // hold read_committed consumers back forever).
                        let Some(id) = transactional_id.filter(|_| !txn_denied) else {
                            return Err(Error::TransactionalIdAuthorization);
                        };
                        let h = &batch.header;
                        broker
                            .txn_index
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .check(&id, h.producer_id, h.producer_epoch, &topic.name, idx)?;
                    }
                    if topic.is_compacted() && !batch.keyless.is_empty() {
                        return Err(Error::KeylessRecords(
                            format!("{}-{idx}", topic.name),
                            std::mem::take(&mut batch.keyless),
                        ));
                    }
                    if let Some(codec) = topic.compression() {
                        if batch.header.codec()? != codec {
                            // Topic compression.type wins over the producer's codec.
                            let level = broker.settings.performance.compression_level;
                            let cap = max.saturating_mul(DECOMPRESSION_RATIO_CAP).max(1 << 20);
                            let b = batch.clone();
                            batch = tokio::task::spawn_blocking(move || {
                                recompress(&b, codec, level, cap)
                            })
                            .await
                            .map_err(|e| Error::Internal(e.to_string()))??;
                        }
                    }
                    Ok((topic, batch))
                }
                .await;
                (idx, res)
            });
        }
    }
    // At most VALIDATION_CONCURRENCY batches of one request are validated at once: with
    // streaming decompression that bounds a request's decompressed bytes in flight to a few
    // windows (large records are also held against the broker-wide decode budget).
    let prepared: Vec<_> = futures::stream::iter(prepared)
        .buffered(VALIDATION_CONCURRENCY)
        .collect()
        .await;
    let deadline = tokio::time::Instant::now() + timeout.max(Duration::from_millis(1));
    // Phase 2, in the connection's request order: queue the appends with the leaders. The
    // next Produce of this connection may start only once every leader has *taken* this
    // request's batches (offsets assigned), whether or not a mailbox was full meanwhile.
    let mut gate = ctx.take_produce_gate();
    if let Some(g) = gate.as_mut() {
        g.wait_turn().await;
    }
    let appends = prepared.into_iter().map(|(idx, res)| {
        let transactional_id = transactional_id.clone();
        async move {
            let res: Result<(Arc<Topic>, u64, u64, AppendTicket)> = async {
                let (topic, batch) = res?;
                let part = topic.local(idx)?;
                let (len, count) = (
                    batch.bytes.len() as u64,
                    batch.header.record_count.max(0) as u64,
                );
                let ticket = match tokio::time::timeout_at(
                    deadline,
                    part.addr.send(Append {
                        batch,
                        transactional_id: transactional_id.clone(),
                    }),
                )
                .await
                {
                    Err(_) => Err(Error::Timeout),
                    Ok(Err(_mailbox)) => Err(Error::NotLeader),
                    Ok(Ok(r)) => r,
                }?;
                Ok((topic, len, count, ticket))
            }
            .await;
            (idx, res)
        }
    });
    let queued = futures::future::join_all(appends).await;
    if let Some(g) = gate {
        g.release();
    }
    // Phase 3: wait for durability.
    let durable = queued.into_iter().map(|(idx, res)| {
        let broker = broker.clone();
        async move {
            let res: Result<AppendResult> = async {
                let (topic, len, count, ticket) = res?;
                let r = match tokio::time::timeout_at(deadline, ticket.durable()).await {
                    Err(_) => Err(Error::Timeout),
                    Ok(r) => r,
                };
                if r.is_ok() {
                    broker
                        .metrics
                        .bytes_in
                        .with_label_values(&[topic.name.as_str()])
                        .inc_by(len);
                    broker
                        .metrics
                        .records_in
                        .with_label_values(&[topic.name.as_str()])
                        .inc_by(count);
                }
                r
            }
            .await;
            (idx, res)
        }
    });
    if acks == 0 {
        // No response, but the request's share of the unflushed-bytes budget stays held until
        // its batches are durable: an acks=0 producer is paced by flushes like any other.
        let permit = ctx.take_unflushed_permit();
        let durable: Vec<_> = durable.collect();
        actix::spawn(async move {
            futures::future::join_all(durable).await;
            drop(permit);
        });
        return None;
    }
    let results = futures::future::join_all(durable).await;
    let mut resp = ProduceResponse::default();
    let mut it = results.into_iter();
    for t in req.topic_data {
        let mut tr = TopicProduceResponse::default();
        tr.name = t.name.clone();
        tr.topic_id = t.topic_id;
        for _ in &t.partition_data {
            let Some((idx, res)) = it.next() else { break };
            let mut pr = PartitionProduceResponse::default();
            pr.index = idx;
            pr.log_append_time_ms = -1;
            match res {
                Ok(r) => {
                    pr.base_offset = r.base_offset;
                    pr.log_start_offset = r.log_start_offset;
                }
                Err(e) => {
                    if e.code() == code::KAFKA_STORAGE_ERROR
                        || e.code() == code::UNKNOWN_SERVER_ERROR
                    {
                        tracing::warn!("produce to {}-{idx} failed: {e}", topic_label(&t));
                    } else {
                        tracing::debug!("produce to {}-{idx} refused: {e}", topic_label(&t));
                    }
                    pr.error_code = e.code();
                    pr.error_message = err_msg(&e);
                    if let Error::KeylessRecords(_, records) = &e {
                        // Per record, as Kafka reports it (v8+).
                        pr.record_errors = records
                            .iter()
                            .map(|&i| {
                                let mut r = BatchIndexAndErrorMessage::default();
                                r.batch_index = i;
                                r.batch_index_error_message = err_msg(&e);
                                r
                            })
                            .collect();
                    }
                    pr.base_offset = -1;
                    pr.log_start_offset = -1;
                }
            }
            tr.partition_responses.push(pr);
        }
        resp.responses.push(tr);
    }
    if ctx.version >= 10 {
        add_leader_hints(&broker, &mut resp, by_id, ctx.brokers());
    }
    Some(resp)
}

/// A produced topic's name for logs: its name, or its id from v13 on.
fn topic_label(t: &kafka_protocol::messages::produce_request::TopicProduceData) -> String {
    if t.name.is_empty() {
        t.topic_id.to_string()
    } else {
        t.name.to_string()
    }
}

/// KIP-951: a NOT_LEADER_OR_FOLLOWER answer names the current leader and its endpoint, so
/// the client retries there without a Metadata round trip (cluster mode).
fn add_leader_hints(
    broker: &crate::broker::Broker,
    resp: &mut ProduceResponse,
    by_id: bool,
    brokers: Vec<crate::cluster::store::BrokerInfo>,
) {
    use kafka_protocol::messages::produce_response::{LeaderIdAndEpoch, NodeEndpoint};
    use kafka_protocol::messages::BrokerId;
    let mut nodes = std::collections::BTreeSet::new();
    for t in resp.responses.iter_mut() {
        let topic = if by_id {
            broker.topic_by_id(t.topic_id.as_bytes())
        } else {
            broker.topic(t.name.as_str())
        };
        let Some(topic) = topic else {
            continue;
        };
        for p in t.partition_responses.iter_mut() {
            if p.error_code != code::NOT_LEADER_OR_FOLLOWER {
                continue;
            }
            let (leader, epoch) = broker.leader_of(&topic, p.index);
            if leader >= 0 {
                let mut l = LeaderIdAndEpoch::default();
                l.leader_id = BrokerId(leader);
                l.leader_epoch = epoch;
                p.current_leader = l;
                nodes.insert(leader);
            }
        }
    }
    for b in brokers {
        if nodes.contains(&b.node_id) {
            let mut n = NodeEndpoint::default();
            n.node_id = BrokerId(b.node_id);
            n.host = b.host.into();
            n.port = b.port;
            n.rack = b.rack.map(Into::into);
            resp.node_endpoints.push(n);
        }
    }
}
