//! IncrementalAlterConfigs (v0–1): SET / DELETE topic configs one by one (APPEND / SUBTRACT for
//! the list-valued `cleanup.policy`), validated as a whole, then persisted and applied.

use super::describe_configs::{BROKER, TOPIC};
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
                    _ => Error::ClusterAuthorization,
                });
            }
            match r.resource_type {
                TOPIC => {}
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
