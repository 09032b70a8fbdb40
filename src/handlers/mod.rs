//! Request dispatch: one file per Kafka API, and the table of what we serve.
//!
//! [`SUPPORTED`] is the single source of truth: ApiVersions is generated from it and dispatch
//! refuses anything outside it, so what is advertised cannot drift from what exists.
//! Behaviour on requests we cannot serve follows Kafka: an ApiVersions request at an unknown
//! version gets error 35 and our ranges (KIP-511) on an open connection; an unknown API key,
//! an unsupported version of another API, or a body that does not decode closes the connection.

pub mod api_versions;
pub mod create_topics;
pub mod delete_topics;
pub mod fetch;
pub mod list_offsets;
pub mod metadata;
pub mod produce;

use crate::broker::Broker;
use bytes::{BufMut, Bytes, BytesMut};
use futures::FutureExt;
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind, ResponseHeader, ResponseKind};
use kafka_protocol::protocol::{decode_request_header_from_buffer, Encodable};
use std::sync::Arc;

/// One API we serve and the versions we serve it at.
#[derive(Debug, Clone, Copy)]
pub struct ApiSpec {
    pub key: ApiKey,
    pub min: i16,
    pub max: i16,
}

/// Every API the broker serves. Produce advertises 0 as its minimum like Kafka 4 does
/// (KAFKA-18659: older librdkafka disables compression otherwise) but v0–2 requests, which
/// carry message formats 0/1, are answered by closing the connection, as Kafka 4 does.
pub const SUPPORTED: &[ApiSpec] = &[
    ApiSpec {
        key: ApiKey::Produce,
        min: 0,
        max: 11,
    },
    ApiSpec {
        key: ApiKey::Fetch,
        min: 4,
        max: 16,
    },
    ApiSpec {
        key: ApiKey::ListOffsets,
        min: 1,
        max: 7,
    },
    ApiSpec {
        key: ApiKey::Metadata,
        min: 0,
        max: 12,
    },
    ApiSpec {
        key: ApiKey::ApiVersions,
        min: 0,
        max: 4,
    },
    ApiSpec {
        key: ApiKey::CreateTopics,
        min: 2,
        max: 7,
    },
    ApiSpec {
        key: ApiKey::DeleteTopics,
        min: 1,
        max: 6,
    },
];

/// The lowest Produce version whose body we decode (message format 2 only).
pub const MIN_DECODABLE_PRODUCE: i16 = 3;

pub fn spec(key: ApiKey) -> Option<&'static ApiSpec> {
    SUPPORTED.iter().find(|s| s.key == key)
}

/// What the connection does with a request.
#[derive(Debug)]
pub enum Outcome {
    /// Write this frame (length prefix included).
    Respond(Bytes),
    /// Nothing to write (Produce with acks=0).
    NoResponse,
    /// Close the connection, for this reason.
    Close(String),
}

/// Per-request context handed to handlers.
pub struct RequestCtx {
    pub broker: Arc<Broker>,
    pub header: RequestHeader,
    pub version: i16,
}

/// Decode, handle and encode one request frame.
pub async fn dispatch(broker: Arc<Broker>, frame: BytesMut) -> Outcome {
    // The frame codec guarantees at least 8 bytes (key, version, correlation id).
    let key = i16::from_be_bytes([frame[0], frame[1]]);
    let version = i16::from_be_bytes([frame[2], frame[3]]);
    let correlation_id = i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
    let Ok(api_key) = ApiKey::try_from(key) else {
        return Outcome::Close(format!("unknown API key {key}"));
    };
    let Some(spec) = spec(api_key) else {
        return Outcome::Close(format!("API {api_key:?} is not served by this broker"));
    };
    if api_key == ApiKey::ApiVersions && (version < spec.min || version > spec.max) {
        return Outcome::Respond(api_versions::unsupported_version_response(correlation_id));
    }
    if version < spec.min || version > spec.max {
        return Outcome::Close(format!("{api_key:?} v{version} is not supported"));
    }
    if api_key == ApiKey::Produce && version < MIN_DECODABLE_PRODUCE {
        return Outcome::Close(format!(
            "Produce v{version} (message format 0/1) is not served, as in Kafka 4"
        ));
    }
    let mut buf = frame.freeze();
    let header = match decode_request_header_from_buffer(&mut buf) {
        Ok(h) => h,
        Err(e) => return Outcome::Close(format!("bad request header: {e}")),
    };
    let request = match RequestKind::decode(api_key, &mut buf, version) {
        Ok(r) => r,
        Err(e) => return Outcome::Close(format!("cannot decode {api_key:?} v{version}: {e}")),
    };
    tracing::debug!(
        "request {api_key:?} v{version} correlation {correlation_id} from {:?}",
        header.client_id
    );
    let ctx = RequestCtx {
        broker,
        header,
        version,
    };
    let fut = std::panic::AssertUnwindSafe(handle(&ctx, request)).catch_unwind();
    let response = match fut.await {
        Ok(Some(r)) => r,
        Ok(None) => return Outcome::NoResponse,
        Err(_) => return Outcome::Close(format!("internal error handling {api_key:?}")),
    };
    match encode_response(api_key, version, correlation_id, &response) {
        Ok(b) => Outcome::Respond(b),
        Err(e) => Outcome::Close(format!(
            "cannot encode {api_key:?} v{version} response: {e}"
        )),
    }
}

async fn handle(ctx: &RequestCtx, request: RequestKind) -> Option<ResponseKind> {
    Some(match request {
        RequestKind::ApiVersions(r) => ResponseKind::ApiVersions(api_versions::handle(ctx, r)),
        RequestKind::Metadata(r) => ResponseKind::Metadata(metadata::handle(ctx, r).await),
        RequestKind::CreateTopics(r) => {
            ResponseKind::CreateTopics(create_topics::handle(ctx, r).await)
        }
        RequestKind::DeleteTopics(r) => {
            ResponseKind::DeleteTopics(delete_topics::handle(ctx, r).await)
        }
        RequestKind::Produce(r) => ResponseKind::Produce(produce::handle(ctx, r).await?),
        RequestKind::Fetch(r) => ResponseKind::Fetch(fetch::handle(ctx, r).await),
        RequestKind::ListOffsets(r) => {
            ResponseKind::ListOffsets(list_offsets::handle(ctx, r).await)
        }
        // dispatch() only lets through APIs in SUPPORTED, all matched above.
        _ => return None,
    })
}

/// Encode a response frame: length, response header (at the API's header version), body.
pub fn encode_response(
    api_key: ApiKey,
    version: i16,
    correlation_id: i32,
    body: &ResponseKind,
) -> anyhow::Result<Bytes> {
    let mut buf = BytesMut::with_capacity(64);
    buf.put_i32(0);
    let mut header = ResponseHeader::default();
    header.correlation_id = correlation_id;
    header.encode(&mut buf, api_key.response_header_version(version))?;
    body.encode(&mut buf, version)?;
    let len = (buf.len() - 4) as i32;
    buf[0..4].copy_from_slice(&len.to_be_bytes());
    Ok(buf.freeze())
}

/// Error message for responses: `None` when there is no error.
pub fn err_msg(e: &crate::error::Error) -> Option<kafka_protocol::protocol::StrBytes> {
    Some(kafka_protocol::protocol::StrBytes::from_string(e.message()))
}
