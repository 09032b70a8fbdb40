//! ConsumerGroupDescribe (v0–1, KIP-848): consumer-protocol groups with their epochs, assignor
//! and members (current and target assignments). A classic group, or one that does not exist,
//! is GROUP_ID_NOT_FOUND, as Kafka answers. Needs DESCRIBE on the group, and DESCRIBE on every
//! topic its members are (or will be) assigned (TOPIC_AUTHORIZATION_FAILED otherwise).

use super::RequestCtx;
use crate::auth::acl;
use crate::error::code;
use crate::group::coordinator::{ConsumerDescribe, ConsumerGroupInfo};
use crate::group::state::COORDINATOR_NOT_AVAILABLE;
use kafka_protocol::messages::consumer_group_describe_response::{
    Assignment, DescribedGroup, Member, TopicPartitions,
};
use kafka_protocol::messages::{
    ConsumerGroupDescribeRequest, ConsumerGroupDescribeResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;

fn wire(a: Vec<([u8; 16], String, Vec<i32>)>) -> Assignment {
    let mut w = Assignment::default();
    w.topic_partitions = a
        .into_iter()
        .map(|(id, name, ps)| {
            let mut tp = TopicPartitions::default();
            tp.topic_id = uuid::Uuid::from_bytes(id);
            tp.topic_name = TopicName(StrBytes::from_string(name));
            tp.partitions = ps;
            tp
        })
        .collect();
    w
}

pub async fn handle(
    ctx: &RequestCtx,
    req: ConsumerGroupDescribeRequest,
) -> ConsumerGroupDescribeResponse {
    let mut resp = ConsumerGroupDescribeResponse::default();
    for gid in req.group_ids {
        let mut g = DescribedGroup::default();
        g.group_id = gid.clone();
        g.authorized_operations = i32::MIN;
        let name = gid.to_string();
        if let Err(c) = ctx.route_group(acl::op::DESCRIBE, &name).await {
            g.error_code = c;
            resp.groups.push(g);
            continue;
        }
        let info = match ctx.broker.groups.get(&name) {
            None => Ok(ConsumerGroupInfo::Unknown),
            Some(c) => c.send(ConsumerDescribe).await,
        };
        match info {
            Err(_) => g.error_code = COORDINATOR_NOT_AVAILABLE,
            Ok(ConsumerGroupInfo::Unknown) => {
                g.error_code = code::GROUP_ID_NOT_FOUND;
                g.error_message = Some(StrBytes::from_string(format!("Group {name} not found.")));
            }
            Ok(ConsumerGroupInfo::Classic) => {
                g.error_code = code::GROUP_ID_NOT_FOUND;
                g.error_message = Some(StrBytes::from_string(format!(
                    "Group {name} is not a consumer group."
                )));
            }
            Ok(ConsumerGroupInfo::Consumer {
                state,
                group_epoch,
                assignment_epoch,
                assignor,
                members,
            }) => {
                g.group_state = StrBytes::from_static_str(state);
                g.group_epoch = group_epoch;
                g.assignment_epoch = assignment_epoch;
                g.assignor_name = StrBytes::from_string(assignor);
                if req.include_authorized_operations {
                    g.authorized_operations =
                        ctx.authorized_operations(acl::resource::GROUP, &name);
                }
                g.members = members
                    .into_iter()
                    .map(|m| {
                        let mut w = Member::default();
                        w.member_id = StrBytes::from_string(m.member_id);
                        w.instance_id = m.instance_id.map(StrBytes::from_string);
                        w.rack_id = m.rack_id.map(StrBytes::from_string);
                        w.member_epoch = m.member_epoch;
                        w.client_id = StrBytes::from_string(m.client_id);
                        w.client_host = StrBytes::from_string(m.client_host);
                        w.subscribed_topic_names = m
                            .subscribed_topic_names
                            .into_iter()
                            .map(|t| TopicName(StrBytes::from_string(t)))
                            .collect();
                        w.subscribed_topic_regex =
                            m.subscribed_topic_regex.map(StrBytes::from_string);
                        w.assignment = wire(m.assignment);
                        w.target_assignment = wire(m.target_assignment);
                        // KIP-1099: 0 = a classic member of a mixed group, 1 = consumer.
                        w.member_type = if m.classic { 0 } else { 1 };
                        w
                    })
                    .collect();
                // As Kafka: a group whose (target) assignments name a topic the principal may
                // not describe is not shown at all.
                let hidden = g.members.iter().any(|m| {
                    m.assignment
                        .topic_partitions
                        .iter()
                        .chain(&m.target_assignment.topic_partitions)
                        // A deleted topic (no name any more) reveals nothing.
                        .filter(|tp| !tp.topic_name.is_empty())
                        .any(|tp| {
                            !ctx.allowed(
                                acl::op::DESCRIBE,
                                acl::resource::TOPIC,
                                tp.topic_name.as_str(),
                            )
                        })
                });
                if hidden {
                    let mut denied = DescribedGroup::default();
                    denied.group_id = g.group_id.clone();
                    denied.authorized_operations = i32::MIN;
                    denied.error_code = code::TOPIC_AUTHORIZATION_FAILED;
                    denied.error_message = Some(StrBytes::from_static_str(
                        "The group has described topic(s) that the client is not authorized to describe.",
                    ));
                    g = denied;
                }
            }
        }
        resp.groups.push(g);
    }
    resp
}
