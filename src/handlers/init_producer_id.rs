//! InitProducerId (v0–4): producer ids for idempotent producers (never repeated, see
//! `broker::producer_ids`), and epoch bumps for a known producer (KIP-360, v3+).
//! Transactional ids are refused: this broker has no transaction coordinator.

use super::RequestCtx;
use crate::error::code;
use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};

pub async fn handle(ctx: &RequestCtx, req: InitProducerIdRequest) -> InitProducerIdResponse {
    let mut resp = InitProducerIdResponse::default();
    resp.producer_id = ProducerId(-1);
    resp.producer_epoch = -1;
    if req.transactional_id.as_ref().is_some_and(|t| !t.is_empty()) {
        resp.error_code = code::TRANSACTIONAL_ID_AUTHORIZATION_FAILED;
        return resp;
    }
    // An idempotent producer: IDEMPOTENT_WRITE on the cluster, or WRITE on any topic (KIP-679).
    use crate::auth::acl::{op, resource};
    if !ctx.may(
        op::IDEMPOTENT_WRITE,
        resource::CLUSTER,
        crate::auth::acl::CLUSTER_NAME,
    ) && !ctx
        .broker
        .authorizer
        .allows_any(&ctx.principal, &ctx.host, op::WRITE, resource::TOPIC)
    {
        ctx.allowed_on_cluster(op::IDEMPOTENT_WRITE); // counted as a denial
        resp.error_code = code::CLUSTER_AUTHORIZATION_FAILED;
        return resp;
    }
    if ctx.version >= 3 && req.producer_id.0 >= 0 && req.producer_epoch >= 0 {
        // Bump the epoch of an existing producer; a new id once the epoch would overflow.
        if req.producer_epoch < i16::MAX - 1 {
            resp.producer_id = req.producer_id;
            resp.producer_epoch = req.producer_epoch + 1;
            return resp;
        }
    }
    match ctx.broker.allocate_producer_id().await {
        Ok(id) => {
            resp.producer_id = ProducerId(id);
            resp.producer_epoch = 0;
        }
        Err(e) => {
            tracing::warn!("InitProducerId: {e}");
            resp.error_code = crate::group::state::COORDINATOR_NOT_AVAILABLE;
        }
    }
    resp
}
