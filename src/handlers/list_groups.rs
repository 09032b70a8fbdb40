//! ListGroups (v0–5): every group, with its state from v4 (state filter) and its type from v5
//! (always "classic": the KIP-848 consumer protocol is not served; type filter honoured).

use super::RequestCtx;
use crate::group::coordinator::Describe;
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{GroupId, ListGroupsRequest, ListGroupsResponse};
use kafka_protocol::protocol::StrBytes;

pub async fn handle(ctx: &RequestCtx, req: ListGroupsRequest) -> ListGroupsResponse {
    let mut resp = ListGroupsResponse::default();
    let filter: Vec<String> = req
        .states_filter
        .iter()
        .map(|s| s.to_ascii_lowercase())
        .collect();
    let types: Vec<String> = req
        .types_filter
        .iter()
        .map(|s| s.to_ascii_lowercase())
        .collect();
    if !types.is_empty() && !types.iter().any(|t| t == "classic") {
        return resp;
    }
    for (name, c) in ctx.broker.groups.all() {
        let Ok(info) = c.send(Describe).await else {
            continue;
        };
        if info.phase == crate::group::state::Phase::Dead {
            continue;
        }
        if !filter.is_empty() && !filter.contains(&info.phase.name().to_ascii_lowercase()) {
            continue;
        }
        let mut g = ListedGroup::default();
        g.group_id = GroupId(StrBytes::from_string(name));
        g.protocol_type = StrBytes::from_string(info.protocol_type);
        if ctx.version >= 4 {
            g.group_state = StrBytes::from_static_str(info.phase.name());
        }
        if ctx.version >= 5 {
            g.group_type = StrBytes::from_static_str("classic");
        }
        resp.groups.push(g);
    }
    resp
}
