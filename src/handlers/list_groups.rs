//! ListGroups (v0–4): every group, with its state from v4 (and the v4 state filter).

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
        resp.groups.push(g);
    }
    resp
}
