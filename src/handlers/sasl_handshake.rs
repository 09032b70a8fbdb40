//! SaslHandshake (v0–1): picks the mechanism. v0 means the tokens that follow come as raw
//! length-prefixed frames; v1 means they come in SaslAuthenticate requests. An unknown mechanism
//! gets UNSUPPORTED_SASL_MECHANISM with the enabled list. The Connection actor calls
//! [`respond`] with its session, in order, before any other request is served.

use crate::auth::session::SaslSession;
use crate::error::code;
use kafka_protocol::messages::{SaslHandshakeRequest, SaslHandshakeResponse};
use kafka_protocol::protocol::StrBytes;

pub fn respond(
    session: &mut SaslSession,
    req: &SaslHandshakeRequest,
    version: i16,
) -> SaslHandshakeResponse {
    let mut resp = SaslHandshakeResponse::default();
    resp.error_code = session.handshake(req.mechanism.as_str(), version);
    resp.mechanisms = session
        .enabled_mechanisms()
        .into_iter()
        .map(StrBytes::from_string)
        .collect();
    resp
}

/// A handshake on a connection that is not expecting one (authentication disabled, or done).
pub fn not_expected() -> SaslHandshakeResponse {
    let mut resp = SaslHandshakeResponse::default();
    resp.error_code = code::ILLEGAL_SASL_STATE;
    resp
}
