//! OffsetDelete (v0): removes committed offsets of partitions the group no longer subscribes to.

use super::RequestCtx;
use crate::auth::acl;
use crate::group::coordinator::DeleteOffsets;
use crate::group::state::COORDINATOR_NOT_AVAILABLE;
use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::{OffsetDeleteRequest, OffsetDeleteResponse};

const GROUP_ID_NOT_FOUND: i16 = 69;

pub async fn handle(ctx: &RequestCtx, req: OffsetDeleteRequest) -> OffsetDeleteResponse {
    let mut resp = OffsetDeleteResponse::default();
    if let Err(code) = ctx
        .route_group(acl::op::DELETE, req.group_id.as_str())
        .await
    {
        resp.error_code = code;
        return resp;
    }
    let Some(c) = ctx.broker.groups.get(req.group_id.as_str()) else {
        resp.error_code = GROUP_ID_NOT_FOUND;
        return resp;
    };
    // READ on each topic; a refused topic's offsets stay (TOPIC_AUTHORIZATION_FAILED).
    let readable: Vec<bool> = req
        .topics
        .iter()
        .map(|t| ctx.allowed(acl::op::READ, acl::resource::TOPIC, t.name.as_str()))
        .collect();
    let wanted: Vec<(String, i32)> = req
        .topics
        .iter()
        .zip(&readable)
        .filter(|(_, ok)| **ok)
        .flat_map(|(t, _)| {
            t.partitions
                .iter()
                .map(move |p| (t.name.to_string(), p.partition_index))
        })
        .collect();
    let codes = match c.send(DeleteOffsets(wanted)).await {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => {
            resp.error_code = e;
            return resp;
        }
        Err(_) => {
            resp.error_code = COORDINATOR_NOT_AVAILABLE;
            return resp;
        }
    };
    let mut it = codes.into_iter();
    for (t, ok) in req.topics.into_iter().zip(readable) {
        let mut rt = OffsetDeleteResponseTopic::default();
        rt.name = t.name.clone();
        for p in t.partitions {
            let mut rp = OffsetDeleteResponsePartition::default();
            rp.partition_index = p.partition_index;
            rp.error_code = match ok {
                true => it.next().unwrap_or(0),
                false => crate::error::code::TOPIC_AUTHORIZATION_FAILED,
            };
            rt.partitions.push(rp);
        }
        resp.topics.push(rt);
    }
    resp
}
