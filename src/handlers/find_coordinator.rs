//! FindCoordinator (v0–4): standalone, this broker coordinates every group; in cluster mode the
//! broker holding the group's coordinator slot does. v4 answers batched keys. Transaction
//! coordinators are not available (no transactions).

use super::RequestCtx;
use crate::error::code;
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::protocol::StrBytes;

const GROUP: i8 = 0;

pub fn handle(ctx: &RequestCtx, req: FindCoordinatorRequest) -> FindCoordinatorResponse {
    let b = &ctx.broker;
    let me = (
        BrokerId(b.node_id()),
        StrBytes::from_string(b.advertised_host().to_string()),
        b.advertised_port() as i32,
    );
    // The coordinator of a group key: (node, host, port), or None while its slot has no
    // live leader (retriable COORDINATOR_NOT_AVAILABLE).
    let locate = |key: &str| match &b.cluster {
        None => Some(me.clone()),
        Some(c) => c
            .coordinator_of(key)
            .map(|i| (BrokerId(i.node_id), StrBytes::from_string(i.host), i.port)),
    };
    let mut resp = FindCoordinatorResponse::default();
    let answer = |key_type: i8| -> (i16, Option<StrBytes>) {
        if key_type == GROUP {
            (code::NONE, None)
        } else {
            (
                crate::group::state::COORDINATOR_NOT_AVAILABLE,
                Some(StrBytes::from_static_str(
                    "transactions are not supported by this broker",
                )),
            )
        }
    };
    if ctx.version >= 4 {
        for key in req.coordinator_keys {
            let (mut err, mut msg) = answer(req.key_type);
            let found = locate(key.as_str());
            if err == code::NONE && found.is_none() {
                err = crate::group::state::COORDINATOR_NOT_AVAILABLE;
                msg = Some(StrBytes::from_static_str(
                    "the group's coordinator is moving",
                ));
            }
            let mut c = Coordinator::default();
            c.key = key;
            c.error_code = err;
            c.error_message = msg;
            if let (code::NONE, Some((node, host, port))) = (err, found) {
                c.node_id = node;
                c.host = host;
                c.port = port;
            } else {
                c.node_id = BrokerId(-1);
                c.port = -1;
            }
            resp.coordinators.push(c);
        }
    } else {
        let (mut err, mut msg) = answer(req.key_type);
        let found = locate(req.key.as_str());
        if err == code::NONE && found.is_none() {
            err = crate::group::state::COORDINATOR_NOT_AVAILABLE;
            msg = Some(StrBytes::from_static_str(
                "the group's coordinator is moving",
            ));
        }
        resp.error_code = err;
        if ctx.version >= 1 {
            resp.error_message = msg;
        }
        if let (code::NONE, Some((node, host, port))) = (err, found) {
            resp.node_id = node;
            resp.host = host;
            resp.port = port;
        } else {
            resp.node_id = BrokerId(-1);
            resp.port = -1;
        }
    }
    resp
}
