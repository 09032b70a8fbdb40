//! DeleteAcls (v1–3): SECURITY_DISABLED without an authorizer (see `create_acls`); with one,
//! CLUSTER ALTER is required, each filter (Kafka's ANY/MATCH semantics) removes what it
//! matches, and the result lists the removed bindings. The new set is persisted before the
//! answer.

use super::create_acls::NO_AUTHORIZER;
use super::RequestCtx;
use crate::auth::acl::{self, op, Filter};
use crate::error::code;
use kafka_protocol::messages::delete_acls_response::{
    DeleteAclsFilterResult, DeleteAclsMatchingAcl,
};
use kafka_protocol::messages::{DeleteAclsRequest, DeleteAclsResponse};
use kafka_protocol::protocol::StrBytes;

fn failed(c: i16, m: &str) -> DeleteAclsFilterResult {
    let mut r = DeleteAclsFilterResult::default();
    r.error_code = c;
    r.error_message = Some(StrBytes::from_string(m.to_string()));
    r
}

pub async fn handle(ctx: &RequestCtx, req: DeleteAclsRequest) -> DeleteAclsResponse {
    let mut resp = DeleteAclsResponse::default();
    if !ctx.broker.authorizer.enabled {
        resp.filter_results = req
            .filters
            .iter()
            .map(|_| failed(code::SECURITY_DISABLED, NO_AUTHORIZER))
            .collect();
        return resp;
    }
    if !ctx.allowed_on_cluster(op::ALTER) {
        resp.filter_results = req
            .filters
            .iter()
            .map(|_| {
                failed(
                    code::CLUSTER_AUTHORIZATION_FAILED,
                    "Cluster authorization failed.",
                )
            })
            .collect();
        return resp;
    }
    let filters: Vec<Filter> = req
        .filters
        .iter()
        .map(|f| Filter {
            resource_type: f.resource_type_filter,
            resource_name: f.resource_name_filter.as_ref().map(|s| s.to_string()),
            pattern_type: f.pattern_type_filter,
            principal: f.principal_filter.as_ref().map(|s| s.to_string()),
            host: f.host_filter.as_ref().map(|s| s.to_string()),
            operation: f.operation,
            permission: f.permission_type,
        })
        .collect();
    let valid: Vec<Filter> = filters
        .iter()
        .filter(|f| f.invalid().is_none())
        .cloned()
        .collect();
    let removed = ctx
        .broker
        .alter_acls(|current| acl::delete(current, &valid))
        .await;
    let mut removed = match removed {
        Ok(r) => r.into_iter(),
        Err(e) => {
            resp.filter_results = filters
                .iter()
                .map(|_| failed(e.code(), &e.to_string()))
                .collect();
            return resp;
        }
    };
    resp.filter_results = filters
        .iter()
        .map(|f| {
            if let Some(why) = f.invalid() {
                return failed(code::INVALID_REQUEST, why);
            }
            let mut r = DeleteAclsFilterResult::default();
            r.matching_acls = removed
                .next()
                .unwrap_or_default()
                .into_iter()
                .map(|b| {
                    let mut m = DeleteAclsMatchingAcl::default();
                    m.resource_type = b.resource_type;
                    m.resource_name = StrBytes::from_string(b.resource_name);
                    m.pattern_type = b.pattern_type;
                    m.principal = StrBytes::from_string(b.principal);
                    m.host = StrBytes::from_string(b.host);
                    m.operation = b.operation;
                    m.permission_type = b.permission;
                    m
                })
                .collect();
            r
        })
        .collect();
    resp
}
