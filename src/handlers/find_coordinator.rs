//! FindCoordinator (v0–4): standalone, this broker coordinates every group; in cluster mode the
//! broker holding the group's coordinator slot does. v4 answers batched keys. TRANSACTION keys
//! (DESCRIBE on the TRANSACTIONAL_ID): standalone, this broker; in cluster mode there is no
//! transaction coordinator yet and the key gets the non-retriable
//! TRANSACTIONAL_ID_AUTHORIZATION_FAILED with a message saying so, which librdkafka,
//! kafka-python and aiokafka treat as fatal at once (the retriable COORDINATOR_NOT_AVAILABLE
//! made them spin until their own 60–120 s timeouts). Other key types (SHARE, unknown ones) are
//! INVALID_REQUEST.

use super::RequestCtx;
use crate::error::code;
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::protocol::StrBytes;

const GROUP: i8 = 0;
const TRANSACTION: i8 = 1;

pub fn handle(ctx: &RequestCtx, req: FindCoordinatorRequest) -> FindCoordinatorResponse {
    let b = &ctx.broker;
    let l = ctx.listener.as_ref();
    let me = (
        BrokerId(b.node_id()),
        StrBytes::from_string(l.advertised_host.clone()),
        i32::from(l.advertised_port),
    );
    // The coordinator of a group key: (node, host, port), or None while its slot has no
    // live leader (retriable COORDINATOR_NOT_AVAILABLE).
    let locate = |key: &str| match &b.cluster {
        None => Some(me.clone()),
        Some(c) => c.coordinator_of(key).map(|i| {
            let i = b.endpoint_on(i, l.name());
            (BrokerId(i.node_id), StrBytes::from_string(i.host), i.port)
        }),
    };
    let mut resp = FindCoordinatorResponse::default();
    let answer = |key_type: i8, key: &str| -> (i16, Option<StrBytes>) {
        if key_type != GROUP && key_type != TRANSACTION {
            // Kafka: SHARE (2) locates share-group state coordinators, not served here;
            // anything else is an unknown coordinator type.
            (
                code::INVALID_REQUEST,
                Some(StrBytes::from_string(format!(
                    "Unknown or unsupported coordinator type received: {key_type}"
                ))),
            )
        } else if key_type == GROUP {
            match ctx.check_group(crate::auth::acl::op::DESCRIBE, key) {
                Ok(()) => (code::NONE, None),
                Err(c) => (
                    c,
                    Some(StrBytes::from_static_str("Group authorization failed.")),
                ),
            }
        } else if b.transactions.get().is_none() {
            (
                code::TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
                Some(StrBytes::from_static_str(
                    "transactions are not supported in cluster mode yet",
                )),
            )
        } else if !ctx.allowed(
            crate::auth::acl::op::DESCRIBE,
            crate::auth::acl::resource::TRANSACTIONAL_ID,
            key,
        ) {
            (
                code::TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
                Some(StrBytes::from_static_str(
                    "Transactional Id authorization failed.",
                )),
            )
        } else {
            (code::NONE, None)
        }
    };
    if ctx.version >= 4 {
        for key in req.coordinator_keys {
            let (mut err, mut msg) = answer(req.key_type, key.as_str());
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
        let (mut err, mut msg) = answer(req.key_type, req.key.as_str());
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
