//! LeaveGroup (v0–5): one member (v0–2) or a batch of members, static ones by instance id (v3+).

use super::RequestCtx;
use crate::error::code;
use crate::group::coordinator::Leave;
use crate::group::state::{COORDINATOR_NOT_AVAILABLE, UNKNOWN_MEMBER_ID};
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::{LeaveGroupRequest, LeaveGroupResponse};

pub async fn handle(ctx: &RequestCtx, req: LeaveGroupRequest) -> LeaveGroupResponse {
    let mut resp = LeaveGroupResponse::default();
    let leaving: Vec<(String, Option<String>)> = if ctx.version >= 3 {
        req.members
            .iter()
            .map(|m| {
                (
                    m.member_id.to_string(),
                    m.group_instance_id.as_ref().map(|s| s.to_string()),
                )
            })
            .collect()
    } else {
        vec![(req.member_id.to_string(), None)]
    };
    let routed = ctx
        .route_group(crate::auth::acl::op::READ, req.group_id.as_str())
        .await;
    if let Err(code) = routed {
        resp.error_code = code;
        for (member, inst) in leaving {
            if ctx.version >= 3 {
                let mut m = MemberResponse::default();
                m.member_id = member.into();
                m.group_instance_id = inst.map(Into::into);
                m.error_code = code;
                resp.members.push(m);
            }
        }
        return resp;
    }
    let codes = match ctx.broker.groups.get(req.group_id.as_str()) {
        None => vec![UNKNOWN_MEMBER_ID; leaving.len()],
        Some(c) => c
            .send(Leave(leaving.clone()))
            .await
            .unwrap_or_else(|_| vec![COORDINATOR_NOT_AVAILABLE; leaving.len()]),
    };
    if ctx.version >= 3 {
        for ((member, inst), c) in leaving.into_iter().zip(codes) {
            let mut m = MemberResponse::default();
            m.member_id = member.into();
            m.group_instance_id = inst.map(Into::into);
            m.error_code = c;
            resp.members.push(m);
        }
    } else {
        resp.error_code = codes.first().copied().unwrap_or(code::NONE);
    }
    resp
}
