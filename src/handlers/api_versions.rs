//! ApiVersions (v0–4): the versions we serve, generated from [`super::SUPPORTED`].

use super::{RequestCtx, SUPPORTED};
use crate::error::code;
use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiVersionsRequest, ApiVersionsResponse};

fn api_keys() -> Vec<ApiVersion> {
    SUPPORTED
        .iter()
        .map(|s| {
            let mut v = ApiVersion::default();
            v.api_key = s.key as i16;
            v.min_version = s.min;
            v.max_version = s.max;
            v
        })
        .collect()
}

pub fn handle(_ctx: &RequestCtx, _req: ApiVersionsRequest) -> ApiVersionsResponse {
    let mut r = ApiVersionsResponse::default();
    r.error_code = code::NONE;
    r.api_keys = api_keys();
    r
}

/// KIP-511: an ApiVersions request at a version we do not know gets a v0-format response with
/// UNSUPPORTED_VERSION and our ranges, so the client can retry at a version we speak.
pub fn unsupported_version_response(correlation_id: i32) -> Bytes {
    let keys = api_keys();
    let mut b = BytesMut::with_capacity(16 + keys.len() * 6);
    b.put_i32(0);
    b.put_i32(correlation_id);
    b.put_i16(code::UNSUPPORTED_VERSION);
    b.put_i32(keys.len() as i32);
    for k in &keys {
        b.put_i16(k.api_key);
        b.put_i16(k.min_version);
        b.put_i16(k.max_version);
    }
    let len = (b.len() - 4) as i32;
    b[0..4].copy_from_slice(&len.to_be_bytes());
    b.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsupported_version_response_is_v0_with_error_35() {
        let b = unsupported_version_response(77);
        assert_eq!(
            i32::from_be_bytes(b[0..4].try_into().unwrap()) as usize,
            b.len() - 4
        );
        assert_eq!(i32::from_be_bytes(b[4..8].try_into().unwrap()), 77);
        assert_eq!(i16::from_be_bytes(b[8..10].try_into().unwrap()), 35);
        let n = i32::from_be_bytes(b[10..14].try_into().unwrap()) as usize;
        assert_eq!(n, SUPPORTED.len());
    }
}
