//! OffsetFetch (v1–9): committed offsets (with metadata) of one group, or of several groups per
//! request from v8. Partitions without a commit get offset -1.

use super::RequestCtx;
use crate::error::code;
use crate::group::coordinator::FetchOffsets;
use crate::group::state::COORDINATOR_NOT_AVAILABLE;
use crate::group::CommittedOffset;
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{OffsetFetchRequest, OffsetFetchResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

type Found = Vec<(String, i32, Option<CommittedOffset>)>;
type ByTopic = Vec<(String, Vec<(i32, Option<CommittedOffset>)>)>;

async fn lookup(
    ctx: &RequestCtx,
    group: &str,
    topics: Option<Vec<(String, Vec<i32>)>>,
) -> Result<Found, i16> {
    ctx.broker.groups.route(group).await?;
    match ctx.broker.groups.get(group) {
        Some(c) => c
            .send(FetchOffsets(topics))
            .await
            .map_err(|_| COORDINATOR_NOT_AVAILABLE),
        None => Ok(topics
            .unwrap_or_default()
            .into_iter()
            .flat_map(|(t, ps)| ps.into_iter().map(move |p| (t.clone(), p, None)))
            .collect()),
    }
}

fn group_by_topic(found: Found) -> ByTopic {
    let mut out: ByTopic = Vec::new();
    for (t, p, c) in found {
        match out.iter_mut().find(|(n, _)| *n == t) {
            Some((_, v)) => v.push((p, c)),
            None => out.push((t, vec![(p, c)])),
        }
    }
    out
}

pub async fn handle(ctx: &RequestCtx, req: OffsetFetchRequest) -> OffsetFetchResponse {
    let mut resp = OffsetFetchResponse::default();
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
            match lookup(ctx, g.group_id.as_str(), topics).await {
                Err(e) => rg.error_code = e,
                Ok(found) => {
                    for (t, parts) in group_by_topic(found) {
                        let mut rt = OffsetFetchResponseTopics::default();
                        rt.name = TopicName(StrBytes::from_string(t));
                        for (p, c) in parts {
                            let mut rp = OffsetFetchResponsePartitions::default();
                            rp.partition_index = p;
                            rp.committed_offset = c.as_ref().map_or(-1, |c| c.offset);
                            rp.committed_leader_epoch = epoch(&c);
                            rp.metadata = Some(StrBytes::from_string(
                                c.as_ref()
                                    .and_then(|c| c.metadata.clone())
                                    .unwrap_or_default(),
                            ));
                            rp.error_code = code::NONE;
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
    match lookup(ctx, req.group_id.as_str(), topics).await {
        Err(e) => {
            if ctx.version >= 2 {
                resp.error_code = e;
            }
        }
        Ok(found) => {
            for (t, parts) in group_by_topic(found) {
                let mut rt = OffsetFetchResponseTopic::default();
                rt.name = TopicName(StrBytes::from_string(t));
                for (p, c) in parts {
                    let mut rp = OffsetFetchResponsePartition::default();
                    rp.partition_index = p;
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
