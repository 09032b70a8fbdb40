//! InitProducerId (v0–4): producer ids for idempotent producers (never repeated, see
//! `broker::producer_ids`), and epoch bumps for a known producer (KIP-360, v3+). With a
//! transactional id (standalone mode) the transaction coordinator answers: the id's producer
//! id with a bumped epoch, fencing an older instance (its ongoing transaction is aborted
//! first: CONCURRENT_TRANSACTIONS until then, clients retry). WRITE on the TRANSACTIONAL_ID.
//! Cluster mode refuses transactional ids (TRANSACTIONAL_ID_AUTHORIZATION_FAILED).

use super::RequestCtx;
use crate::error::code;
use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};

pub async fn handle(ctx: &RequestCtx, req: InitProducerIdRequest) -> InitProducerIdResponse {
    let mut resp = InitProducerIdResponse::default();
    resp.producer_id = ProducerId(-1);
    resp.producer_epoch = -1;
    // An empty transactional id is read as none (what the protocol's default encodes).
    if let Some(id) = req.transactional_id.as_ref().filter(|t| !t.is_empty()) {
        let id = id.to_string();
        let presented = if ctx.version >= 3 {
            (req.producer_id.0, req.producer_epoch)
        } else {
            (-1, -1)
        };
        // A KIP-360 pair with only one half set is malformed.
        resp.error_code = if (presented.0 < 0) != (presented.1 < 0) {
            code::INVALID_REQUEST
        } else if !ctx.allowed(
            crate::auth::acl::op::WRITE,
            crate::auth::acl::resource::TRANSACTIONAL_ID,
            &id,
        ) {
            code::TRANSACTIONAL_ID_AUTHORIZATION_FAILED
        } else {
            match ctx.broker.transactions.get() {
                None => code::TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
                Some(c) => {
                    // A producer id for a new transactional id (or an exhausted epoch); one
                    // unused now and then is harmless (ids are never reused anyway).
                    let fresh = match ctx.broker.allocate_producer_id().await {
                        Ok(p) => p,
                        Err(e) => {
                            tracing::warn!("InitProducerId: {e}");
                            resp.error_code = crate::group::state::COORDINATOR_NOT_AVAILABLE;
                            return resp;
                        }
                    };
                    match c
                        .send(crate::txn::coordinator::Init {
                            transactional_id: id,
                            timeout_ms: req.transaction_timeout_ms,
                            presented,
                            fresh_id: fresh,
                        })
                        .await
                    {
                        Ok(Ok((pid, epoch))) => {
                            resp.producer_id = ProducerId(pid);
                            resp.producer_epoch = epoch;
                            code::NONE
                        }
                        Ok(Err(e)) => crate::txn::coordinator::fenced_code(e, ctx.version, 4),
                        Err(_) => crate::group::state::COORDINATOR_NOT_AVAILABLE,
                    }
                }
            }
        };
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
