//! DeleteGroups (v0–2): deletes empty groups and their committed offsets.

use super::RequestCtx;
use crate::group::coordinator::DeleteGroup;
use crate::group::state::COORDINATOR_NOT_AVAILABLE;
use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::{DeleteGroupsRequest, DeleteGroupsResponse};

const GROUP_ID_NOT_FOUND: i16 = 69;

pub async fn handle(ctx: &RequestCtx, req: DeleteGroupsRequest) -> DeleteGroupsResponse {
    let mut resp = DeleteGroupsResponse::default();
    for gid in req.groups_names {
        let mut r = DeletableGroupResult::default();
        r.group_id = gid.clone();
        let routed = ctx
            .route_group(crate::auth::acl::op::DELETE, gid.as_str())
            .await;
        r.error_code = match ctx.broker.groups.get(gid.as_str()) {
            _ if routed.is_err() => routed.err().unwrap_or(COORDINATOR_NOT_AVAILABLE),
            None => GROUP_ID_NOT_FOUND,
            Some(c) => {
                let code = c
                    .send(DeleteGroup)
                    .await
                    .unwrap_or(COORDINATOR_NOT_AVAILABLE);
                if code == 0 {
                    ctx.broker.groups.remove(gid.as_str());
                }
                code
            }
        };
        resp.results.push(r);
    }
    resp
}
