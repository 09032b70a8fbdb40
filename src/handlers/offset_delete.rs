//! OffsetDelete (v0): removes committed offsets of partitions the group no longer subscribes to.

use super::RequestCtx;
use crate::group::coordinator::DeleteOffsets;
use crate::group::state::COORDINATOR_NOT_AVAILABLE;
use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::{OffsetDeleteRequest, OffsetDeleteResponse};

const GROUP_ID_NOT_FOUND: i16 = 69;

pub async fn handle(ctx: &RequestCtx, req: OffsetDeleteRequest) -> OffsetDeleteResponse {
    let mut resp = OffsetDeleteResponse::default();
    if let Err(code) = ctx.broker.groups.route(req.group_id.as_str()).await {
        resp.error_code = code;
        return resp;
    }
    let Some(c) = ctx.broker.groups.get(req.group_id.as_str()) else {
        resp.error_code = GROUP_ID_NOT_FOUND;
        return resp;
    };
    let wanted: Vec<(String, i32)> = req
        .topics
        .iter()
        .flat_map(|t| {
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
    for t in req.topics {
        let mut rt = OffsetDeleteResponseTopic::default();
        rt.name = t.name.clone();
        for p in t.partitions {
            let mut rp = OffsetDeleteResponsePartition::default();
            rp.partition_index = p.partition_index;
            rp.error_code = it.next().unwrap_or(0);
            rt.partitions.push(rp);
        }
        resp.topics.push(rt);
    }
    resp
}
