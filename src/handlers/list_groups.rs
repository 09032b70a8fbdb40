//! ListGroups (v0–5): every group, with its state from v4 and its type ("classic" or
//! "consumer", KIP-848) from v5; both filters are case-insensitive, as in Kafka.

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
        .map(|s| s.trim().to_ascii_lowercase())
        .collect();
    let types: Vec<String> = req
        .types_filter
        .iter()
        .map(|s| s.trim().to_ascii_lowercase())
        .collect();
    // Kafka: CLUSTER DESCRIBE lists every group; otherwise those the principal may DESCRIBE.
    let all = ctx.may(
        crate::auth::acl::op::DESCRIBE,
        crate::auth::acl::resource::CLUSTER,
        crate::auth::acl::CLUSTER_NAME,
    );
    for (name, c) in ctx.broker.groups.all() {
        if !all
            && !ctx.may(
                crate::auth::acl::op::DESCRIBE,
                crate::auth::acl::resource::GROUP,
                &name,
            )
        {
            continue;
        }
        let Ok(info) = c.send(Describe).await else {
            continue;
        };
        if info.group_type == "classic" && info.phase == crate::group::state::Phase::Dead {
            continue;
        }
        if !filter.is_empty() && !filter.contains(&info.state.to_ascii_lowercase()) {
            continue;
        }
        if !types.is_empty() && !types.iter().any(|t| t == info.group_type) {
            continue;
        }
        let mut g = ListedGroup::default();
        g.group_id = GroupId(StrBytes::from_string(name));
        g.protocol_type = StrBytes::from_string(info.protocol_type);
        if ctx.version >= 4 {
            g.group_state = StrBytes::from_static_str(info.state);
        }
        if ctx.version >= 5 {
            g.group_type = StrBytes::from_static_str(info.group_type);
        }
        resp.groups.push(g);
    }
    resp
}
