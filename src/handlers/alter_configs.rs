//! AlterConfigs (v0–2): replaces a topic's whole set of dynamic configs. Broker configs are
//! read-only here (they come from heraclitus.yaml, env and flags).

use super::describe_configs::{BROKER, TOPIC};
use super::{err_msg, RequestCtx};
use crate::error::Error;
use kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{AlterConfigsRequest, AlterConfigsResponse};
use std::collections::BTreeMap;

pub async fn handle(ctx: &RequestCtx, req: AlterConfigsRequest) -> AlterConfigsResponse {
    let mut resp = AlterConfigsResponse::default();
    for r in req.resources {
        let mut out = AlterConfigsResourceResponse::default();
        out.resource_type = r.resource_type;
        out.resource_name = r.resource_name.clone();
        let denied = ctx.config_denied(
            crate::auth::acl::op::ALTER_CONFIGS,
            r.resource_type,
            r.resource_name.as_str(),
        );
        let res = match r.resource_type {
            _ if denied.is_some() => Err(match r.resource_type {
                TOPIC => Error::TopicAuthorization,
                _ => Error::ClusterAuthorization,
            }),
            TOPIC => {
                let configs: BTreeMap<String, String> = r
                    .configs
                    .iter()
                    .filter_map(|c| {
                        c.value
                            .as_ref()
                            .map(|v| (c.name.to_string(), v.to_string()))
                    })
                    .collect();
                ctx.broker
                    .set_topic_configs(r.resource_name.as_str(), configs, req.validate_only)
                    .await
            }
            BROKER => Err(Error::InvalidConfig(
                "broker configs are read-only (set them in heraclitus.yaml)".into(),
            )),
            t => Err(Error::InvalidRequest(format!(
                "unsupported resource type {t}"
            ))),
        };
        if let Err(e) = res {
            out.error_code = e.code();
            out.error_message = err_msg(&e);
        }
        resp.responses.push(out);
    }
    resp
}
