//! IncrementalAlterConfigs (v0–1): SET / DELETE topic configs one by one (APPEND / SUBTRACT for
//! the list-valued `cleanup.policy`), validated as a whole, then persisted and applied. Group
//! configs (GROUP resource) take SET and DELETE (as in Kafka, APPEND / SUBTRACT are refused), for
//! any group name; see `group::configs`.

use super::describe_configs::{BROKER, GROUP, TOPIC};
use super::{err_msg, RequestCtx};
use crate::error::{Error, Result};
use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse};

const SET: i8 = 0;
const DELETE: i8 = 1;
const APPEND: i8 = 2;
const SUBTRACT: i8 = 3;

pub async fn handle(
    ctx: &RequestCtx,
    req: IncrementalAlterConfigsRequest,
) -> IncrementalAlterConfigsResponse {
    let mut resp = IncrementalAlterConfigsResponse::default();
    for r in req.resources {
        let mut out = AlterConfigsResourceResponse::default();
        out.resource_type = r.resource_type;
        out.resource_name = r.resource_name.clone();
        let denied = ctx.config_denied(
            crate::auth::acl::op::ALTER_CONFIGS,
            r.resource_type,
            r.resource_name.as_str(),
        );
        let res: Result<()> = async {
            if denied.is_some() {
                return Err(match r.resource_type {
                    TOPIC => Error::TopicAuthorization,
                    GROUP => Error::GroupAuthorization,
                    _ => Error::ClusterAuthorization,
                });
            }
            match r.resource_type {
                TOPIC => {}
                GROUP => {
                    let changes: Vec<(String, i8, Option<String>)> = r
                        .configs
                        .iter()
                        .map(|c| {
                            (
                                c.name.to_string(),
                                c.config_operation,
                                c.value.as_ref().map(|v| v.to_string()),
                            )
                        })
                        .collect();
                    return alter_group(ctx, r.resource_name.as_str(), changes, req.validate_only)
                        .await;
                }
                BROKER => {
                    return Err(Error::InvalidConfig(
                        "broker configs are read-only (set them in heraclitus.yaml)".into(),
                    ))
                }
                t => {
                    return Err(Error::InvalidRequest(format!(
                        "unsupported resource type {t}"
                    )))
                }
            }
            let topic = ctx
                .broker
                .topic(r.resource_name.as_str())
                .ok_or(Error::UnknownTopicOrPartition)?;
            let mut configs = topic.configs.clone();
            for c in &r.configs {
                let name = c.name.to_string();
                let value = c.value.as_ref().map(|v| v.to_string());
                match c.config_operation {
                    SET => {
                        let v = value.ok_or_else(|| {
                            Error::InvalidConfig(format!("SET {name} needs a value"))
                        })?;
                        configs.insert(name, v);
                    }
                    DELETE => {
                        configs.remove(&name);
                    }
                    APPEND | SUBTRACT if name == "cleanup.policy" => {
                        let current = configs
                            .get(&name)
                            .cloned()
                            .unwrap_or_else(|| "delete".into());
                        let mut items: Vec<String> = current
                            .split(',')
                            .map(|s| s.trim().to_string())
                            .filter(|s| !s.is_empty())
                            .collect();
                        for v in value
                            .unwrap_or_default()
                            .split(',')
                            .map(|s| s.trim().to_string())
                        {
                            if c.config_operation == APPEND {
                                if !items.contains(&v) {
                                    items.push(v);
                                }
                            } else {
                                items.retain(|i| *i != v);
                            }
                        }
                        configs.insert(name, items.join(","));
                    }
                    APPEND | SUBTRACT => {
                        return Err(Error::InvalidConfig(format!("{name} is not a list config")))
                    }
                    op => {
                        return Err(Error::InvalidRequest(format!(
                            "unknown config operation {op}"
                        )))
                    }
                }
            }
            ctx.broker
                .set_topic_configs(r.resource_name.as_str(), configs, req.validate_only)
                .await
        }
        .await;
        if let Err(e) = res {
            out.error_code = e.code();
            out.error_message = err_msg(&e);
        }
        resp.responses.push(out);
    }
    resp
}

/// Apply SET / DELETE changes to one group's config overrides, validate the result as a
/// whole (`group::configs::validate`) and persist it.
async fn alter_group(
    ctx: &RequestCtx,
    group: &str,
    changes: Vec<(String, i8, Option<String>)>,
    validate_only: bool,
) -> Result<()> {
    if group.is_empty() {
        return Err(Error::InvalidRequest(
            "Default group resources are not allowed.".into(),
        ));
    }
    let mut seen = std::collections::HashSet::new();
    if !changes.iter().all(|(name, ..)| seen.insert(name.as_str())) {
        return Err(Error::InvalidRequest(
            "Error due to duplicate config keys".into(),
        ));
    }
    let nulls: Vec<&str> = changes
        .iter()
        .filter(|(_, op, v)| *op != DELETE && v.is_none())
        .map(|(name, ..)| name.as_str())
        .collect();
    if !nulls.is_empty() {
        return Err(Error::InvalidRequest(format!(
            "Null value not supported for : {}",
            nulls.join(", ")
        )));
    }
    let settings = ctx.broker.settings.groups.clone();
    ctx.broker
        .alter_group_configs(validate_only, move |all| {
            let mut next = all.clone();
            let own = next.entry(group.to_string()).or_default();
            for (name, op, value) in changes {
                match op {
                    SET => {
                        own.insert(name, value.unwrap_or_default());
                    }
                    DELETE => {
                        own.remove(&name);
                    }
                    APPEND | SUBTRACT => {
                        let verb = if op == APPEND { "APPEND" } else { "SUBTRACT" };
                        return Err(Error::InvalidConfig(format!(
                            "Can't {verb} to key {name} because its type is not LIST."
                        )));
                    }
                    op => {
                        return Err(Error::InvalidRequest(format!(
                            "unknown config operation {op}"
                        )))
                    }
                }
            }
            crate::group::configs::validate(&settings, own)?;
            if own.is_empty() {
                next.remove(group);
            }
            Ok(next)
        })
        .await
}
