//! ListPartitionReassignments (v0): reassignments complete when they are made (see
//! `alter_partition_reassignments`), so none is ever ongoing and the list is empty.

use kafka_protocol::messages::{
    ListPartitionReassignmentsRequest, ListPartitionReassignmentsResponse,
};

pub fn handle(
    ctx: &super::RequestCtx,
    _req: ListPartitionReassignmentsRequest,
) -> ListPartitionReassignmentsResponse {
    let mut resp = ListPartitionReassignmentsResponse::default();
    if !ctx.allowed_on_cluster(crate::auth::acl::op::DESCRIBE) {
        resp.error_code = crate::error::code::CLUSTER_AUTHORIZATION_FAILED;
        resp.error_message = Some(kafka_protocol::protocol::StrBytes::from_static_str(
            "Cluster authorization failed.",
        ));
    }
    resp
}
