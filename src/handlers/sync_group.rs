//! SyncGroup (v0–5): the leader hands out assignments; followers park until it does.

use super::RequestCtx;
use crate::group::coordinator::Sync;
use crate::group::state::{COORDINATOR_NOT_AVAILABLE, UNKNOWN_MEMBER_ID};
use kafka_protocol::messages::{SyncGroupRequest, SyncGroupResponse};
use kafka_protocol::protocol::StrBytes;

pub async fn handle(ctx: &RequestCtx, req: SyncGroupRequest) -> SyncGroupResponse {
    let mut resp = SyncGroupResponse::default();
    let routed = ctx
        .route_group(crate::auth::acl::op::READ, req.group_id.as_str())
        .await;
    if let Err(code) = routed {
        resp.error_code = code;
        return resp;
    }
    let Some(coord) = ctx.broker.groups.get(req.group_id.as_str()) else {
        resp.error_code = UNKNOWN_MEMBER_ID;
        return resp;
    };
    let msg = Sync {
        member_id: req.member_id.to_string(),
        instance_id: req.group_instance_id.as_ref().map(|s| s.to_string()),
        generation: req.generation_id,
        protocol_type: req.protocol_type.as_ref().map(|s| s.to_string()),
        protocol_name: req.protocol_name.as_ref().map(|s| s.to_string()),
        assignments: req
            .assignments
            .into_iter()
            .map(|a| (a.member_id.to_string(), a.assignment))
            .collect(),
    };
    match coord.send(msg).await {
        Ok(r) => {
            resp.error_code = r.error;
            resp.assignment = r.assignment;
            if ctx.version >= 5 {
                resp.protocol_type = req.protocol_type.clone();
                resp.protocol_name = req.protocol_name.clone().or(Some(StrBytes::default()));
                if r.error != 0 {
                    resp.protocol_type = None;
                    resp.protocol_name = None;
                }
            }
        }
        Err(_) => resp.error_code = COORDINATOR_NOT_AVAILABLE,
    }
    resp
}
