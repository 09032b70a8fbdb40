//! AddOffsetsToTxn (v0–3): adds a consumer group to the ongoing transaction, so that
//! TxnOffsetCommit may then stage the group's offsets in it. WRITE on the TRANSACTIONAL_ID and
//! READ on the GROUP.

use super::{ask_txn_coordinator, RequestCtx};
use crate::auth::acl::{op, resource};
use crate::error::code;
use crate::txn::coordinator::Add;
use kafka_protocol::messages::{AddOffsetsToTxnRequest, AddOffsetsToTxnResponse};

pub async fn handle(ctx: &RequestCtx, req: AddOffsetsToTxnRequest) -> AddOffsetsToTxnResponse {
    let id = req.transactional_id.to_string();
    let mut resp = AddOffsetsToTxnResponse::default();
    resp.error_code = if id.is_empty() || req.group_id.is_empty() {
        code::INVALID_REQUEST
    } else if !ctx.allowed(op::WRITE, resource::TRANSACTIONAL_ID, &id) {
        code::TRANSACTIONAL_ID_AUTHORIZATION_FAILED
    } else if let Err(c) = ctx.check_group(op::READ, req.group_id.as_str()) {
        c
    } else {
        let add = Add {
            transactional_id: id,
            producer_id: req.producer_id.0,
            producer_epoch: req.producer_epoch,
            partitions: Vec::new(),
            groups: vec![req.group_id.to_string()],
        };
        ask_txn_coordinator(ctx, add, 2).await
    };
    resp
}
