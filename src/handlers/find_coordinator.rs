//! FindCoordinator (v0–4): this broker coordinates every group; v4 answers batched keys.
//! Transaction coordinators are not available (no transactions).

use super::RequestCtx;
use crate::error::code;
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::protocol::StrBytes;

const GROUP: i8 = 0;

pub fn handle(ctx: &RequestCtx, req: FindCoordinatorRequest) -> FindCoordinatorResponse {
    let b = &ctx.broker;
    let host = StrBytes::from_string(b.advertised_host().to_string());
    let port = b.advertised_port() as i32;
    let node = BrokerId(b.node_id());
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
            let (err, msg) = answer(req.key_type);
            let mut c = Coordinator::default();
            c.key = key;
            c.error_code = err;
            c.error_message = msg;
            if err == code::NONE {
                c.node_id = node;
                c.host = host.clone();
                c.port = port;
            } else {
                c.node_id = BrokerId(-1);
                c.port = -1;
            }
            resp.coordinators.push(c);
        }
    } else {
        let (err, msg) = answer(req.key_type);
        resp.error_code = err;
        if ctx.version >= 1 {
            resp.error_message = msg;
        }
        if err == code::NONE {
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
