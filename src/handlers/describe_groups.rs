//! DescribeGroups (v0–5): state, protocol and (when Stable) members with their metadata and
//! assignments. An unknown group is reported as Dead, as Kafka does before v6.

use super::RequestCtx;
use crate::auth::acl;
use crate::group::coordinator::Describe;
use crate::group::state::COORDINATOR_NOT_AVAILABLE;
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::{DescribeGroupsRequest, DescribeGroupsResponse};
use kafka_protocol::protocol::StrBytes;

pub async fn handle(ctx: &RequestCtx, req: DescribeGroupsRequest) -> DescribeGroupsResponse {
    let mut resp = DescribeGroupsResponse::default();
    for gid in req.groups {
        let mut g = DescribedGroup::default();
        g.group_id = gid.clone();
        g.group_state = StrBytes::from_static_str("Dead");
        g.authorized_operations = i32::MIN;
        if let Err(code) = ctx.route_group(acl::op::DESCRIBE, gid.as_str()).await {
            if code == crate::error::code::GROUP_AUTHORIZATION_FAILED {
                g.group_state = StrBytes::default(); // as Kafka: nothing about the group
            }
            g.error_code = code;
            resp.groups.push(g);
            continue;
        }
        if ctx.version >= 3 && req.include_authorized_operations {
            g.authorized_operations = ctx.authorized_operations(acl::resource::GROUP, gid.as_str());
        }
        if let Some(c) = ctx.broker.groups.get(gid.as_str()) {
            match c.send(Describe).await {
                Ok(info) => {
                    g.group_state = StrBytes::from_static_str(info.phase.name());
                    g.protocol_type = StrBytes::from_string(info.protocol_type);
                    g.protocol_data = StrBytes::from_string(info.protocol_name);
                    g.members = info
                        .members
                        .into_iter()
                        .map(|m| {
                            let mut d = DescribedGroupMember::default();
                            d.member_id = StrBytes::from_string(m.member_id);
                            if ctx.version >= 4 {
                                d.group_instance_id = m.instance_id.map(StrBytes::from_string);
                            }
                            d.client_id = StrBytes::from_string(m.client_id);
                            d.client_host = StrBytes::from_string(m.client_host);
                            d.member_metadata = m.metadata;
                            d.member_assignment = m.assignment;
                            d
                        })
                        .collect();
                }
                Err(_) => g.error_code = COORDINATOR_NOT_AVAILABLE,
            }
        }
        resp.groups.push(g);
    }
    resp
}
