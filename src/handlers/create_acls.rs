//! CreateAcls (v1–3). Without an authorizer (`authorization.enabled: false`), like a Kafka
//! broker without `authorizer.class.name`, every creation is answered SECURITY_DISABLED with
//! Kafka's message. With one: CLUSTER ALTER is required (CLUSTER_AUTHORIZATION_FAILED), each
//! binding is validated with Kafka's rules (INVALID_REQUEST) and the valid ones are persisted
//! before the answer, and apply to the next request on every broker.

use super::RequestCtx;
use crate::auth::acl::{self, op, Binding};
use crate::error::code;
use kafka_protocol::messages::create_acls_response::AclCreationResult;
use kafka_protocol::messages::{CreateAclsRequest, CreateAclsResponse};
use kafka_protocol::protocol::StrBytes;

/// Kafka's answer when ACL APIs reach a broker without an authorizer.
pub const NO_AUTHORIZER: &str = "No Authorizer is configured.";

fn result(error_code: i16, message: Option<String>) -> AclCreationResult {
    let mut r = AclCreationResult::default();
    r.error_code = error_code;
    r.error_message = message.map(StrBytes::from_string);
    r
}

pub async fn handle(ctx: &RequestCtx, req: CreateAclsRequest) -> CreateAclsResponse {
    let mut resp = CreateAclsResponse::default();
    let all = |c: i16, m: &str| -> Vec<AclCreationResult> {
        req.creations
            .iter()
            .map(|_| result(c, Some(m.to_string())))
            .collect()
    };
    if !ctx.broker.authorizer.enabled {
        resp.results = all(code::SECURITY_DISABLED, NO_AUTHORIZER);
        return resp;
    }
    if !ctx.allowed_on_cluster(op::ALTER) {
        resp.results = all(
            code::CLUSTER_AUTHORIZATION_FAILED,
            "Cluster authorization failed.",
        );
        return resp;
    }
    let bindings: Vec<Binding> = req
        .creations
        .iter()
        .map(|c| Binding {
            resource_type: c.resource_type,
            resource_name: c.resource_name.to_string(),
            pattern_type: c.resource_pattern_type,
            principal: c.principal.to_string(),
            host: c.host.to_string(),
            operation: c.operation,
            permission: c.permission_type,
        })
        .collect();
    let errors: Vec<Option<String>> = bindings.iter().map(acl::invalid_binding).collect();
    let valid: Vec<Binding> = bindings
        .iter()
        .zip(&errors)
        .filter(|(_, e)| e.is_none())
        .map(|(b, _)| b.clone())
        .collect();
    let stored = if valid.is_empty() {
        Ok(())
    } else {
        ctx.broker
            .alter_acls(|current| (acl::create(current, &valid), ()))
            .await
    };
    resp.results = errors
        .into_iter()
        .map(|e| match (e, &stored) {
            (Some(why), _) => result(code::INVALID_REQUEST, Some(why)),
            (None, Ok(())) => result(code::NONE, None),
            (None, Err(e)) => result(e.code(), Some(e.to_string())),
        })
        .collect();
    resp
}
