//! Heartbeat (v0–4): keeps a member's session alive; tells it when to rejoin.

use super::RequestCtx;
use crate::group::coordinator::Heartbeat;
use crate::group::state::{COORDINATOR_NOT_AVAILABLE, UNKNOWN_MEMBER_ID};
use kafka_protocol::messages::{HeartbeatRequest, HeartbeatResponse};

pub async fn handle(ctx: &RequestCtx, req: HeartbeatRequest) -> HeartbeatResponse {
    let mut resp = HeartbeatResponse::default();
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
    resp.error_code = coord
        .send(Heartbeat {
            member_id: req.member_id.to_string(),
            instance_id: req.group_instance_id.as_ref().map(|s| s.to_string()),
            generation: req.generation_id,
        })
        .await
        .unwrap_or(COORDINATOR_NOT_AVAILABLE);
    resp
}
