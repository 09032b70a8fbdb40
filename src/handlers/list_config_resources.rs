//! ListConfigResources (v0–1, KIP-1142): the resources whose configs can be described and
//! altered. v0 asks for client-metrics subscriptions only (we keep none: no client telemetry);
//! v1 filters by resource type, an empty filter meaning every type: TOPIC (every topic but the
//! internal `__consumer_offsets`, which has no configs here) and BROKER (every live broker's
//! id) and GROUP (every group with config overrides, existing or not). BROKER_LOGGER and
//! CLIENT_METRICS resources are not served, so none are listed; an unknown type is
//! INVALID_REQUEST.

use super::RequestCtx;
use crate::error::code;
use kafka_protocol::messages::list_config_resources_response::ConfigResource;
use kafka_protocol::messages::{ListConfigResourcesRequest, ListConfigResourcesResponse};
use kafka_protocol::protocol::StrBytes;

pub const TOPIC: i8 = 2;
pub const BROKER: i8 = 4;
pub const BROKER_LOGGER: i8 = 8;
pub const CLIENT_METRICS: i8 = 16;
pub const GROUP: i8 = 32;

pub async fn handle(
    ctx: &RequestCtx,
    req: ListConfigResourcesRequest,
) -> ListConfigResourcesResponse {
    let mut resp = ListConfigResourcesResponse::default();
    let types: Vec<i8> = if ctx.version == 0 {
        vec![CLIENT_METRICS]
    } else if req.resource_types.is_empty() {
        vec![TOPIC, BROKER, BROKER_LOGGER, CLIENT_METRICS, GROUP]
    } else {
        req.resource_types.clone()
    };
    if let Some(t) = types
        .iter()
        .find(|t| ![TOPIC, BROKER, BROKER_LOGGER, CLIENT_METRICS, GROUP].contains(t))
    {
        resp.error_code = code::INVALID_REQUEST;
        tracing::debug!("ListConfigResources: unknown resource type {t}");
        return resp;
    }
    if !ctx.allowed_on_cluster(crate::auth::acl::op::DESCRIBE_CONFIGS) {
        resp.error_code = code::CLUSTER_AUTHORIZATION_FAILED;
        return resp;
    }
    let groups = if types.contains(&GROUP) {
        Some(ctx.broker.group_configs_for_describe().await)
    } else {
        None
    };
    let mut push = |name: String, ty: i8| {
        let mut r = ConfigResource::default();
        r.resource_name = StrBytes::from_string(name);
        r.resource_type = ty;
        resp.config_resources.push(r);
    };
    if types.contains(&TOPIC) {
        for t in ctx.broker.topics() {
            push(t.name.clone(), TOPIC);
        }
    }
    for g in groups.iter().flat_map(|all| all.keys()) {
        push(g.clone(), GROUP);
    }
    if types.contains(&BROKER) {
        for b in ctx.broker.live_brokers() {
            push(b.node_id.to_string(), BROKER);
        }
    }
    resp
}
