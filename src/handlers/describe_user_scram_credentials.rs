//! DescribeUserScramCredentials (v0): the SCRAM mechanisms and iterations of every user (a null
//! or empty list), or of the users asked for — RESOURCE_NOT_FOUND for one without a
//! credential, DUPLICATE_RESOURCE for one asked twice. Credentials of the configuration file
//! and those managed through AlterUserScramCredentials are both described.

use super::RequestCtx;
use crate::auth::credentials::{id_of, DUPLICATE_RESOURCE, RESOURCE_NOT_FOUND};
use kafka_protocol::messages::describe_user_scram_credentials_response::{
    CredentialInfo, DescribeUserScramCredentialsResult,
};
use kafka_protocol::messages::{
    DescribeUserScramCredentialsRequest, DescribeUserScramCredentialsResponse,
};
use kafka_protocol::protocol::StrBytes;

pub fn handle(
    ctx: &RequestCtx,
    req: DescribeUserScramCredentialsRequest,
) -> DescribeUserScramCredentialsResponse {
    let mut resp = DescribeUserScramCredentialsResponse::default();
    if !ctx.allowed_on_cluster(crate::auth::acl::op::DESCRIBE) {
        resp.error_code = crate::error::code::CLUSTER_AUTHORIZATION_FAILED;
        resp.error_message = Some(StrBytes::from_static_str("Cluster authorization failed."));
        return resp;
    }
    let all = ctx.broker.users.scram_users();
    let wanted: Vec<String> = match req.users {
        Some(u) if !u.is_empty() => u.iter().map(|u| u.name.to_string()).collect(),
        _ => all.keys().cloned().collect(),
    };
    for (i, user) in wanted.iter().enumerate() {
        let mut r = DescribeUserScramCredentialsResult::default();
        r.user = StrBytes::from_string(user.clone());
        if wanted[..i].contains(user) {
            continue;
        }
        if wanted[i + 1..].contains(user) {
            r.error_code = DUPLICATE_RESOURCE;
            r.error_message = Some(StrBytes::from_static_str(
                "Cannot describe SCRAM credentials for the same user twice in a single request",
            ));
        } else if let Some(creds) = all.get(user) {
            r.credential_infos = creds
                .iter()
                .map(|(m, iterations)| {
                    let mut c = CredentialInfo::default();
                    c.mechanism = id_of(*m);
                    c.iterations = *iterations as i32;
                    c
                })
                .collect();
        } else {
            r.error_code = RESOURCE_NOT_FOUND;
            r.error_message = Some(StrBytes::from_static_str(
                "Attempt to describe a user credential that does not exist",
            ));
        }
        resp.results.push(r);
    }
    resp
}
