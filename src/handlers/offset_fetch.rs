//! OffsetFetch (v1–9): committed offsets (with metadata) of one group, or of several groups per
//! request from v8. Partitions without a commit get offset -1. DESCRIBE on the group (and on
//! each named topic); v1 has no top-level error field, so a group error is put on every
//! requested partition, as Kafka does.

use super::RequestCtx;
use crate::auth::acl;
use crate::error::code;
use crate::group::coordinator::{CheckFetchMember, FetchOffsets};
use crate::group::state::COORDINATOR_NOT_AVAILABLE;
use crate::group::CommittedOffset;
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{OffsetFetchRequest, OffsetFetchResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

type Found = Vec<(String, i32, Option<CommittedOffset>)>;
/// Per topic: (partition, committed offset, error code).
type ByTopic = Vec<(String, Vec<(i32, Option<CommittedOffset>, i16)>)>;

/// The offsets of `group`; from v9 a consumer-protocol member names itself and its epoch
/// (UNKNOWN_MEMBER_ID / STALE_MEMBER_EPOCH when they are not current).
async fn lookup(
    ctx: &RequestCtx,
    group: &str,
    member: (Option<String>, i32),
    topics: Option<Vec<(String, Vec<i32>)>>,
) -> Result<Found, i16> {
    ctx.route_group(acl::op::DESCRIBE, group).await?;
    match ctx.broker.groups.get(group) {
        Some(c) => {
            if member.1 >= 0 {
                c.send(CheckFetchMember {
                    member_id: member.0,
                    member_epoch: member.1,
                })
                .await
                .map_err(|_| COORDINATOR_NOT_AVAILABLE)??;
            }
            c.send(FetchOffsets(topics))
                .await
                .map_err(|_| COORDINATOR_NOT_AVAILABLE)
        }
        None => Ok(topics
            .unwrap_or_default()
            .into_iter()
            .flat_map(|(t, ps)| ps.into_iter().map(move |p| (t.clone(), p, None)))
            .collect()),
    }
}

/// Group the offsets by topic. With ACLs, a topic the principal may not DESCRIBE is left out
/// of "all topics" (`explicit = false`) and answered TOPIC_AUTHORIZATION_FAILED when named.
fn group_by_topic(ctx: &RequestCtx, found: Found, explicit: bool) -> ByTopic {
    let mut out: ByTopic = Vec::new();
    let mut allowed: Vec<(String, bool)> = Vec::new();
    for (t, p, c) in found {
        let ok = match allowed.iter().find(|(n, _)| *n == t) {
            Some((_, ok)) => *ok,
            None => {
                let ok = match explicit {
                    true => ctx.allowed(acl::op::DESCRIBE, acl::resource::TOPIC, &t),
                    false => ctx.may(acl::op::DESCRIBE, acl::resource::TOPIC, &t),
                };
                allowed.push((t.clone(), ok));
                ok
            }
        };
        let entry = match ok {
            true => (p, c, code::NONE),
            false if explicit => (p, None, code::TOPIC_AUTHORIZATION_FAILED),
            false => continue,
        };
        match out.iter_mut().find(|(n, _)| *n == t) {
            Some((_, v)) => v.push(entry),
            None => out.push((t, vec![entry])),
        }
    }
    out
}

/// Kafka's UNSTABLE_OFFSET_COMMIT: a transaction will commit an offset for the partition.
const UNSTABLE_OFFSET_COMMIT: i16 = 88;

/// require_stable (v7+, read_committed consumers): partitions whose offsets an ongoing
/// transaction will commit answer UNSTABLE_OFFSET_COMMIT (retriable) with no offset, as Kafka.
fn unstable(found: ByTopic, pending: &std::collections::BTreeSet<(String, i32)>) -> ByTopic {
    if pending.is_empty() {
        return found;
    }
    found
        .into_iter()
        .map(|(t, parts)| {
            let parts = parts
                .into_iter()
                .map(
                    |(p, c, err)| match err == code::NONE && pending.contains(&(t.clone(), p)) {
                        true => (p, None, UNSTABLE_OFFSET_COMMIT),
                        false => (p, c, err),
                    },
                )
                .collect();
            (t, parts)
        })
        .collect()
}

pub async fn handle(ctx: &RequestCtx, req: OffsetFetchRequest) -> OffsetFetchResponse {
    let mut resp = OffsetFetchResponse::default();
    let stable = ctx.version >= 7 && req.require_stable;
    let pending = |group: &str| match stable {
        true => ctx
            .broker
            .txn_index
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pending_offsets(group),
        false => Default::default(),
    };
    let epoch = |c: &Option<CommittedOffset>| {
        if ctx.version >= 5 {
            c.as_ref().map_or(-1, |c| c.leader_epoch)
        } else {
            -1
        }
    };
    if ctx.version >= 8 {
        for g in req.groups {
            let topics = g.topics.map(|ts| {
                ts.into_iter()
                    .map(|t| (t.name.to_string(), t.partition_indexes))
                    .collect()
            });
            let mut rg = OffsetFetchResponseGroup::default();
            rg.group_id = g.group_id.clone();
            let explicit = topics.is_some();
            let member = (g.member_id.as_ref().map(|s| s.to_string()), g.member_epoch);
            match lookup(ctx, g.group_id.as_str(), member, topics).await {
                Err(e) => rg.error_code = e,
                Ok(found) => {
                    let found = group_by_topic(ctx, found, explicit);
                    for (t, parts) in unstable(found, &pending(g.group_id.as_str())) {
                        let mut rt = OffsetFetchResponseTopics::default();
                        rt.name = TopicName(StrBytes::from_string(t));
                        for (p, c, err) in parts {
                            let mut rp = OffsetFetchResponsePartitions::default();
                            rp.partition_index = p;
                            rp.committed_offset = c.as_ref().map_or(-1, |c| c.offset);
                            rp.committed_leader_epoch = epoch(&c);
                            rp.metadata = Some(StrBytes::from_string(
                                c.as_ref()
                                    .and_then(|c| c.metadata.clone())
                                    .unwrap_or_default(),
                            ));
                            rp.error_code = err;
                            rt.partitions.push(rp);
                        }
                        rg.topics.push(rt);
                    }
                }
            }
            resp.groups.push(rg);
        }
        return resp;
    }
    let topics = req.topics.map(|ts| {
        ts.into_iter()
            .map(|t| (t.name.to_string(), t.partition_indexes))
            .collect()
    });
    let explicit = topics.is_some();
    // v1 has no top-level error: as Kafka, a group error goes on every requested partition.
    let requested = if ctx.version < 2 {
        topics.clone().unwrap_or_default()
    } else {
        Vec::new()
    };
    match lookup(ctx, req.group_id.as_str(), (None, -1), topics).await {
        Err(e) if ctx.version >= 2 => resp.error_code = e,
        Err(e) => {
            for (t, parts) in requested {
                let mut rt = OffsetFetchResponseTopic::default();
                rt.name = TopicName(StrBytes::from_string(t));
                for p in parts {
                    let mut rp = OffsetFetchResponsePartition::default();
                    rp.partition_index = p;
                    rp.committed_offset = -1;
                    rp.committed_leader_epoch = -1;
                    rp.metadata = Some(StrBytes::default());
                    rp.error_code = e;
                    rt.partitions.push(rp);
                }
                resp.topics.push(rt);
            }
        }
        Ok(found) => {
            let found = group_by_topic(ctx, found, explicit);
            for (t, parts) in unstable(found, &pending(req.group_id.as_str())) {
                let mut rt = OffsetFetchResponseTopic::default();
                rt.name = TopicName(StrBytes::from_string(t));
                for (p, c, err) in parts {
                    let mut rp = OffsetFetchResponsePartition::default();
                    rp.partition_index = p;
                    rp.error_code = err;
                    rp.committed_offset = c.as_ref().map_or(-1, |c| c.offset);
                    rp.committed_leader_epoch = epoch(&c);
                    rp.metadata = Some(StrBytes::from_string(
                        c.as_ref()
                            .and_then(|c| c.metadata.clone())
                            .unwrap_or_default(),
                    ));
                    rt.partitions.push(rp);
                }
                resp.topics.push(rt);
            }
        }
    }
    resp
}
