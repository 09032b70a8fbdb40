//! SaslAuthenticate (v0–2): one SASL token exchange step. A failure answers
//! SASL_AUTHENTICATION_FAILED with a message that does not reveal whether the user exists, and
//! the connection then closes. Called by the Connection actor with its session, in order.

use crate::auth::session::{SaslSession, Step};
use crate::error::code;
use bytes::Bytes;
use kafka_protocol::messages::{SaslAuthenticateRequest, SaslAuthenticateResponse};
use kafka_protocol::protocol::StrBytes;

/// Returns the response and whether the connection must close after it.
pub fn respond(
    session: &mut SaslSession,
    req: &SaslAuthenticateRequest,
) -> (SaslAuthenticateResponse, bool) {
    let mut resp = SaslAuthenticateResponse::default();
    match session.authenticate(&req.auth_bytes) {
        Step::Continue(tok) | Step::Done(tok) => {
            resp.auth_bytes = Bytes::from(tok);
            (resp, false)
        }
        Step::Fail(msg) => {
            resp.error_code = code::SASL_AUTHENTICATION_FAILED;
            resp.error_message = Some(StrBytes::from_string(msg));
            (resp, true)
        }
    }
}

/// SaslAuthenticate on a connection that is not in a SASL exchange.
pub fn not_expected() -> SaslAuthenticateResponse {
    let mut resp = SaslAuthenticateResponse::default();
    resp.error_code = code::ILLEGAL_SASL_STATE;
    resp.error_message = Some(StrBytes::from_static_str("no SASL exchange in progress"));
    resp
}
