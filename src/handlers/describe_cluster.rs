//! DescribeCluster (v0–1): cluster id, controller and the brokers. Never refused; the cluster's
//! authorized operations (when asked) are 0 for a principal without DESCRIBE on the cluster,
//! as Kafka computes them.

use super::RequestCtx;
use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{BrokerId, DescribeClusterRequest, DescribeClusterResponse};
use kafka_protocol::protocol::StrBytes;

const BROKERS_ENDPOINT: i8 = 1;

pub fn handle(ctx: &RequestCtx, req: DescribeClusterRequest) -> DescribeClusterResponse {
    let b = &ctx.broker;
    let mut resp = DescribeClusterResponse::default();
    if ctx.version >= 1 && req.endpoint_type != BROKERS_ENDPOINT {
        resp.error_code = 114; // UNSUPPORTED_ENDPOINT_TYPE
        resp.error_message = Some(StrBytes::from_static_str(
            "only the brokers endpoint is served",
        ));
        return resp;
    }
    if ctx.version >= 1 {
        resp.endpoint_type = BROKERS_ENDPOINT;
    }
    // As Kafka: never refused; a principal without DESCRIBE on the cluster sees 0 operations.
    resp.cluster_id = StrBytes::from_string(b.cluster_id.clone());
    resp.controller_id = BrokerId(b.controller_id());
    resp.brokers = ctx
        .brokers()
        .into_iter()
        .map(|i| {
            let mut br = DescribeClusterBroker::default();
            br.broker_id = BrokerId(i.node_id);
            br.host = StrBytes::from_string(i.host);
            br.port = i.port;
            br.rack = i.rack.map(StrBytes::from_string);
            br
        })
        .collect();
    resp.cluster_authorized_operations = match req.include_cluster_authorized_operations {
        true => ctx.cluster_authorized_operations(),
        false => i32::MIN,
    };
    resp
}
