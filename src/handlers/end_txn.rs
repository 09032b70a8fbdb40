//! EndTxn (v0–4): commit or abort the ongoing transaction. Answered once the decision is
//! persisted; the coordinator then writes the COMMIT/ABORT markers to every partition of the
//! transaction (and, for a commit, the staged group offsets) — until they are done, the id's
//! next AddPartitionsToTxn or InitProducerId gets CONCURRENT_TRANSACTIONS. WRITE on the
//! TRANSACTIONAL_ID. (v5, KIP-890's transaction version 2, is not served.)

use super::{ask_txn_coordinator, RequestCtx};
use crate::auth::acl::{op, resource};
use crate::error::code;
use crate::txn::coordinator::End;
use kafka_protocol::messages::{EndTxnRequest, EndTxnResponse};

pub async fn handle(ctx: &RequestCtx, req: EndTxnRequest) -> EndTxnResponse {
    let id = req.transactional_id.to_string();
    let mut resp = EndTxnResponse::default();
    resp.error_code = if id.is_empty() {
        code::INVALID_REQUEST
    } else if !ctx.allowed(op::WRITE, resource::TRANSACTIONAL_ID, &id) {
        code::TRANSACTIONAL_ID_AUTHORIZATION_FAILED
    } else {
        let end = End {
            transactional_id: id,
            producer_id: req.producer_id.0,
            producer_epoch: req.producer_epoch,
            commit: req.committed,
        };
        ask_txn_coordinator(ctx, end, 2).await
    };
    resp
}
