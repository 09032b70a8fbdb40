//! Length-prefixed Kafka frames: a 4-byte big-endian size followed by that many bytes.
//!
//! The decoder separates "incomplete" (`Ok(None)`: wait for more bytes) from "invalid"
//! (`Err`: close this connection). The size is checked against the cap *before* any buffer is
//! reserved, so a hostile length cannot make us allocate.

use bytes::{Buf, BytesMut};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use tokio_util::codec::Decoder;

/// The smallest valid request: api_key(2) + api_version(2) + correlation_id(4).
pub const MIN_REQUEST_BYTES: usize = 8;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FrameError {
    #[error("negative frame length {0}")]
    Negative(i32),
    #[error("frame length {size} exceeds the cap of {cap} bytes")]
    TooLarge { size: usize, cap: usize },
    #[error("frame length {0} is shorter than a request header")]
    TooSmall(usize),
    #[error("io: {0}")]
    Io(String),
}

impl From<std::io::Error> for FrameError {
    fn from(e: std::io::Error) -> Self {
        FrameError::Io(e.to_string())
    }
}

/// Limits a connection can change while its codec runs (e.g. the smaller cap before SASL
/// authentication, and raw SASL tokens after a v0 handshake, which have no request header).
#[derive(Debug)]
pub struct FrameLimits {
    pub max_frame: AtomicUsize,
    pub raw_tokens: AtomicBool,
}

impl FrameLimits {
    pub fn new(max_frame: usize) -> Arc<FrameLimits> {
        Arc::new(FrameLimits {
            max_frame: AtomicUsize::new(max_frame),
            raw_tokens: AtomicBool::new(false),
        })
    }
}

/// Decodes request frames, capped at `max_frame` bytes.
#[derive(Debug, Clone)]
pub struct FrameCodec {
    limits: Arc<FrameLimits>,
}

impl FrameCodec {
    pub fn new(max_frame: usize) -> Self {
        FrameCodec {
            limits: FrameLimits::new(max_frame),
        }
    }

    pub fn with_limits(limits: Arc<FrameLimits>) -> Self {
        FrameCodec { limits }
    }
}

impl Decoder for FrameCodec {
    type Item = BytesMut;
    type Error = FrameError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<BytesMut>, FrameError> {
        if src.len() < 4 {
            return Ok(None);
        }
        let len = i32::from_be_bytes([src[0], src[1], src[2], src[3]]);
        if len < 0 {
            return Err(FrameError::Negative(len));
        }
        let len = len as usize;
        let cap = self.limits.max_frame.load(Ordering::Relaxed);
        if len > cap {
            return Err(FrameError::TooLarge { size: len, cap });
        }
        if len < MIN_REQUEST_BYTES && !self.limits.raw_tokens.load(Ordering::Relaxed) {
            return Err(FrameError::TooSmall(len));
        }
        if src.len() < 4 + len {
            // Reserve only what this (already capped) frame needs.
            src.reserve(4 + len - src.len());
            return Ok(None);
        }
        src.advance(4);
        Ok(Some(src.split_to(len)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(body: &[u8]) -> BytesMut {
        let mut b = BytesMut::new();
        b.extend_from_slice(&(body.len() as i32).to_be_bytes());
        b.extend_from_slice(body);
        b
    }

    #[test]
    fn incomplete_then_complete() {
        let mut c = FrameCodec::new(1024);
        let full = frame(&[1u8; 10]);
        let mut src = BytesMut::from(&full[..6]);
        assert_eq!(c.decode(&mut src).unwrap(), None);
        src.extend_from_slice(&full[6..]);
        assert_eq!(c.decode(&mut src).unwrap().unwrap().len(), 10);
        assert!(src.is_empty());
    }

    #[test]
    fn header_alone_is_incomplete() {
        let mut c = FrameCodec::new(1024);
        let mut src = BytesMut::from(&[0u8, 0][..]);
        assert_eq!(c.decode(&mut src).unwrap(), None);
    }

    #[test]
    fn negative_and_oversized_lengths_are_invalid_without_allocating() {
        let mut c = FrameCodec::new(1024);
        let mut src = BytesMut::from(&(-5i32).to_be_bytes()[..]);
        assert_eq!(c.decode(&mut src), Err(FrameError::Negative(-5)));
        let mut src = BytesMut::from(&(i32::MAX).to_be_bytes()[..]);
        assert!(matches!(
            c.decode(&mut src),
            Err(FrameError::TooLarge { .. })
        ));
        assert!(src.capacity() < 1024);
    }

    #[test]
    fn too_small_is_invalid() {
        let mut c = FrameCodec::new(1024);
        let mut src = frame(&[0u8; 3]);
        assert_eq!(c.decode(&mut src), Err(FrameError::TooSmall(3)));
    }

    #[test]
    fn two_frames_in_one_read() {
        let mut c = FrameCodec::new(1024);
        let mut src = frame(&[1u8; 8]);
        src.extend_from_slice(&frame(&[2u8; 9]));
        assert_eq!(c.decode(&mut src).unwrap().unwrap()[0], 1);
        assert_eq!(c.decode(&mut src).unwrap().unwrap().len(), 9);
        assert_eq!(c.decode(&mut src).unwrap(), None);
    }
}
