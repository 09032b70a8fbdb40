//! DescribeConfigs (v1–4): topic configs (own values or broker defaults, with sources and
//! synonyms), the broker's read-only configs, and group configs (Kafka 4's GROUP resource:
//! overrides or defaults, for any group name), with documentation from v3.

use super::RequestCtx;
use crate::broker::topic::{describe_broker, describe_topic, ConfigEntry};
use crate::error::code;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse};
use kafka_protocol::protocol::StrBytes;

pub const TOPIC: i8 = 2;
pub const BROKER: i8 = 4;
pub const BROKER_LOGGER: i8 = 8;
pub const GROUP: i8 = 32;

pub async fn handle(ctx: &RequestCtx, req: DescribeConfigsRequest) -> DescribeConfigsResponse {
    let b = &ctx.broker;
    let mut resp = DescribeConfigsResponse::default();
    // Group configs are read once per request (in cluster mode from the metadata store), not
    // once per GROUP resource: a request naming many groups costs one read.
    let mut groups: Option<std::sync::Arc<crate::group::configs::GroupConfigs>> = None;
    for r in req.resources {
        let mut out = DescribeConfigsResult::default();
        out.resource_type = r.resource_type;
        out.resource_name = r.resource_name.clone();
        let denied = ctx.config_denied(
            crate::auth::acl::op::DESCRIBE_CONFIGS,
            r.resource_type,
            r.resource_name.as_str(),
        );
        let entries: Result<Vec<ConfigEntry>, (i16, String)> = match r.resource_type {
            _ if denied.is_some() => {
                let (c, m) = denied.unwrap_or_default();
                Err((c, m.to_string()))
            }
            TOPIC => b
                .topic(r.resource_name.as_str())
                .map(|t| describe_topic(&b.settings, &t.configs))
                .ok_or((
                    code::UNKNOWN_TOPIC_OR_PARTITION,
                    "unknown topic".to_string(),
                )),
            BROKER => {
                let name = r.resource_name.as_str();
                if name.is_empty() || name == b.node_id().to_string() {
                    Ok(describe_broker(
                        &b.settings,
                        b.node_id(),
                        b.advertised_listeners(),
                    ))
                } else {
                    Err((code::INVALID_REQUEST, format!("unknown broker {name}")))
                }
            }
            GROUP if r.resource_name.is_empty() => Err((
                code::INVALID_REQUEST,
                "Group name must not be empty".to_string(),
            )),
            GROUP => {
                let all = match &groups {
                    Some(all) => all.clone(),
                    None => groups.insert(b.group_configs_for_describe().await).clone(),
                };
                Ok(crate::group::configs::describe(
                    &b.settings.groups,
                    all.get(r.resource_name.as_str()),
                ))
            }
            t => Err((
                code::INVALID_REQUEST,
                format!("unsupported resource type {t}"),
            )),
        };
        match entries {
            Err((c, m)) => {
                out.error_code = c;
                out.error_message = Some(StrBytes::from_string(m));
            }
            Ok(entries) => {
                let wanted: Option<Vec<String>> = r
                    .configuration_keys
                    .map(|k| k.iter().map(|s| s.to_string()).collect());
                for e in entries {
                    if wanted.as_ref().is_some_and(|w| !w.contains(&e.name)) {
                        continue;
                    }
                    let mut c = DescribeConfigsResourceResult::default();
                    c.name = StrBytes::from_string(e.name.clone());
                    c.value = Some(StrBytes::from_string(e.value.clone()));
                    c.read_only = e.read_only;
                    c.config_source = e.source;
                    if req.include_synonyms {
                        let mut own = DescribeConfigsSynonym::default();
                        own.name = StrBytes::from_string(e.name.clone());
                        own.value = Some(StrBytes::from_string(e.value.clone()));
                        own.source = e.source;
                        c.synonyms.push(own);
                        if let Some((n, v, s)) = &e.default {
                            let mut d = DescribeConfigsSynonym::default();
                            d.name = StrBytes::from_string(n.clone());
                            d.value = Some(StrBytes::from_string(v.clone()));
                            d.source = *s;
                            c.synonyms.push(d);
                        }
                    }
                    if ctx.version >= 3 {
                        c.config_type = e.config_type;
                        if req.include_documentation {
                            c.documentation = Some(StrBytes::from_string(e.doc.to_string()));
                        }
                    }
                    out.configs.push(c);
                }
            }
        }
        resp.results.push(out);
    }
    resp
}
