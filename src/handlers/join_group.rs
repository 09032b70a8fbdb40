//! JoinGroup (v0–9): parks until the group's join barrier completes (see `group::state`).

use super::RequestCtx;
use crate::group::coordinator::Join;
use crate::group::state::{JoinRequest, INVALID_GROUP_ID};
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::{JoinGroupRequest, JoinGroupResponse};
use kafka_protocol::protocol::StrBytes;

pub async fn handle(ctx: &RequestCtx, req: JoinGroupRequest) -> JoinGroupResponse {
    let mut resp = JoinGroupResponse::default();
    resp.generation_id = -1;
    if req.group_id.is_empty() {
        resp.error_code = INVALID_GROUP_ID;
        resp.member_id = req.member_id;
        return resp;
    }
    let rebalance = if ctx.version >= 1 {
        req.rebalance_timeout_ms
    } else {
        req.session_timeout_ms
    };
    let jr = JoinRequest {
        member_id: req.member_id.to_string(),
        instance_id: req.group_instance_id.as_ref().map(|s| s.to_string()),
        client_id: ctx.client_id(),
        client_host: format!("/{}", ctx.peer.ip()),
        session_timeout_ms: req.session_timeout_ms,
        rebalance_timeout_ms: rebalance,
        protocol_type: req.protocol_type.to_string(),
        protocols: req
            .protocols
            .iter()
            .map(|p| (p.name.to_string(), p.metadata.clone()))
            .collect(),
        require_known_member_id: ctx.version >= 4,
    };
    let groups = &ctx.broker.groups;
    let routed = ctx
        .route_group(crate::auth::acl::op::READ, req.group_id.as_str())
        .await;
    let coord = match routed {
        Ok(()) => groups.get_or_create(req.group_id.as_str()),
        Err(code) => {
            resp.error_code = code;
            resp.member_id = req.member_id;
            return resp;
        }
    };
    let r = match coord {
        Some(coord) => coord
            .send(Join(jr, super::consumer_group_heartbeat::topics_view(ctx)))
            .await
            .ok(),
        None => None,
    }
    .unwrap_or_else(|| {
        crate::group::state::JoinResult::error(
            crate::group::state::COORDINATOR_NOT_AVAILABLE,
            req.member_id.as_str(),
        )
    });
    resp.error_code = r.error;
    resp.generation_id = r.generation;
    resp.protocol_type = r.protocol_type.map(StrBytes::from_string);
    resp.protocol_name = r.protocol_name.map(StrBytes::from_string);
    if ctx.version < 7 && resp.protocol_name.is_none() {
        // Before v7 the field is not nullable.
        resp.protocol_name = Some(StrBytes::default());
    }
    resp.leader = StrBytes::from_string(r.leader);
    resp.member_id = StrBytes::from_string(r.member_id);
    resp.members = r
        .members
        .into_iter()
        .map(|(id, inst, md)| {
            let mut m = JoinGroupResponseMember::default();
            m.member_id = StrBytes::from_string(id);
            if ctx.version >= 5 {
                m.group_instance_id = inst.map(StrBytes::from_string);
            }
            m.metadata = md;
            m
        })
        .collect();
    resp
}
