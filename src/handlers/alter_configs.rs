//! AlterConfigs (v0–2): replaces a topic's (or a group's, Kafka 4's GROUP resource) whole set
//! of dynamic configs. Broker configs are read-only here (they come from heraclitus.yaml, env
//! and flags).

use super::describe_configs::{BROKER, GROUP, TOPIC};
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
                GROUP => Error::GroupAuthorization,
                _ => Error::ClusterAuthorization,
            }),
            GROUP => {
                replace_group(ctx, r.resource_name.as_str(), &r.configs, req.validate_only).await
            }
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

/// Replace one group's config overrides with the request's (names left out are deleted).
async fn replace_group(
    ctx: &RequestCtx,
    group: &str,
    configs: &[kafka_protocol::messages::alter_configs_request::AlterableConfig],
    validate_only: bool,
) -> crate::error::Result<()> {
    if group.is_empty() {
        return Err(Error::InvalidRequest(
            "Default group resources are not allowed.".into(),
        ));
    }
    let nulls: Vec<String> = configs
        .iter()
        .filter(|c| c.value.is_none())
        .map(|c| c.name.to_string())
        .collect();
    if !nulls.is_empty() {
        return Err(Error::InvalidConfig(format!(
            "Null value not supported for group configs: {}",
            nulls.join(",")
        )));
    }
    let own: BTreeMap<String, String> = configs
        .iter()
        .map(|c| {
            (
                c.name.to_string(),
                c.value.as_ref().map(|v| v.to_string()).unwrap_or_default(),
            )
        })
        .collect();
    crate::group::configs::validate(&ctx.broker.settings.groups, &own)?;
    ctx.broker
        .alter_group_configs(validate_only, move |all| {
            let mut next = all.clone();
            if own.is_empty() {
                next.remove(group);
            } else {
                next.insert(group.to_string(), own);
            }
            Ok(next)
        })
        .await
}
