//! AlterUserScramCredentials (v0): upsert and delete SCRAM credentials (the client sends the
//! salted password; the broker keeps the stored and server keys), validated with Kafka's rules
//! (`auth::credentials`), persisted before the answer and used by the next authentication.
//! One result per user; a user with an invalid change has none applied.

use super::RequestCtx;
use crate::auth::credentials::Change;
use kafka_protocol::messages::alter_user_scram_credentials_response::AlterUserScramCredentialsResult;
use kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, AlterUserScramCredentialsResponse,
};
use kafka_protocol::protocol::StrBytes;

pub async fn handle(
    ctx: &RequestCtx,
    req: AlterUserScramCredentialsRequest,
) -> AlterUserScramCredentialsResponse {
    let mut changes: Vec<Change> = req
        .deletions
        .iter()
        .map(|d| Change::Delete {
            user: d.name.to_string(),
            mechanism: d.mechanism,
        })
        .collect();
    changes.extend(req.upsertions.iter().map(|u| Change::Upsert {
        user: u.name.to_string(),
        mechanism: u.mechanism,
        iterations: u.iterations,
        salt: u.salt.to_vec(),
        salted_password: u.salted_password.to_vec(),
    }));
    let mut resp = AlterUserScramCredentialsResponse::default();
    let authorized = ctx.allowed_on_cluster(crate::auth::acl::op::ALTER);
    let stored = match authorized {
        true => ctx.broker.alter_scram_credentials(changes.clone()).await,
        false => Err(crate::error::Error::ClusterAuthorization),
    };
    let results = match stored {
        Ok(r) => r,
        Err(e) => {
            if authorized {
                tracing::warn!("AlterUserScramCredentials: {e}");
            }
            let mut users: Vec<String> = Vec::new();
            for c in &changes {
                let u = match c {
                    Change::Delete { user, .. } | Change::Upsert { user, .. } => user,
                };
                if !users.contains(u) {
                    users.push(u.clone());
                }
            }
            users
                .into_iter()
                .map(|u| (u, e.code(), Some(e.message())))
                .collect()
        }
    };
    for (user, code, msg) in results {
        let mut r = AlterUserScramCredentialsResult::default();
        r.user = StrBytes::from_string(user);
        r.error_code = code;
        r.error_message = msg.map(StrBytes::from_string);
        resp.results.push(r);
    }
    resp
}
