//! Wire-level pieces the broker owns rather than takes from `kafka-protocol`: the request frame
//! codec, record batch validation/offset assignment/encoding, and capped decompression.

pub mod compression;
pub mod fetch_response;
pub mod frame;
pub mod records;
pub mod varint;
