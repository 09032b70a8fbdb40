//! DescribeAcls (v1–3): SECURITY_DISABLED without an authorizer (see `create_acls`); with one,
//! CLUSTER DESCRIBE is required and the bindings matching the filter (Kafka's ANY/MATCH
//! semantics) are answered grouped by resource pattern — in cluster mode as the metadata store
//! holds them, so a change made through another broker is listed at once.

use super::create_acls::NO_AUTHORIZER;
use super::RequestCtx;
use crate::auth::acl::{op, Filter};
use crate::error::code;
use kafka_protocol::messages::describe_acls_response::{AclDescription, DescribeAclsResource};
use kafka_protocol::messages::{DescribeAclsRequest, DescribeAclsResponse};
use kafka_protocol::protocol::StrBytes;

pub async fn handle(ctx: &RequestCtx, req: DescribeAclsRequest) -> DescribeAclsResponse {
    let mut resp = DescribeAclsResponse::default();
    let fail = |mut resp: DescribeAclsResponse, c: i16, m: &str| {
        resp.error_code = c;
        resp.error_message = Some(StrBytes::from_string(m.to_string()));
        resp
    };
    if !ctx.broker.authorizer.enabled {
        return fail(resp, code::SECURITY_DISABLED, NO_AUTHORIZER);
    }
    if !ctx.allowed_on_cluster(op::DESCRIBE) {
        return fail(
            resp,
            code::CLUSTER_AUTHORIZATION_FAILED,
            "Cluster authorization failed.",
        );
    }
    let filter = Filter {
        resource_type: req.resource_type_filter,
        resource_name: req.resource_name_filter.map(|s| s.to_string()),
        pattern_type: req.pattern_type_filter,
        principal: req.principal_filter.map(|s| s.to_string()),
        host: req.host_filter.map(|s| s.to_string()),
        operation: req.operation,
        permission: req.permission_type,
    };
    if let Some(why) = filter.invalid() {
        return fail(resp, code::INVALID_REQUEST, why);
    }
    let acls = ctx.broker.acls_for_describe().await;
    // The set is ordered by resource pattern first: consecutive bindings share a resource.
    for b in acls.iter().filter(|b| filter.matches(b)) {
        let same = resp
            .resources
            .last()
            .is_some_and(|r: &DescribeAclsResource| {
                r.resource_type == b.resource_type
                    && r.resource_name.as_str() == b.resource_name
                    && r.pattern_type == b.pattern_type
            });
        if !same {
            let mut r = DescribeAclsResource::default();
            r.resource_type = b.resource_type;
            r.resource_name = StrBytes::from_string(b.resource_name.clone());
            r.pattern_type = b.pattern_type;
            resp.resources.push(r);
        }
        let mut a = AclDescription::default();
        a.principal = StrBytes::from_string(b.principal.clone());
        a.host = StrBytes::from_string(b.host.clone());
        a.operation = b.operation;
        a.permission_type = b.permission;
        if let Some(r) = resp.resources.last_mut() {
            r.acls.push(a);
        }
    }
    resp
}
