//! Zig-zag varints as used inside Kafka record batches (bounded, never panicking readers).

use crate::error::{Error, Result};

/// Read a zig-zag varint (max 5 bytes) from `buf` at `*pos`.
pub fn read_varint(buf: &[u8], pos: &mut usize) -> Result<i32> {
    let v = read_unsigned(buf, pos, 5)?;
    if v > u32::MAX as u64 {
        return Err(Error::CorruptMessage("varint overflow".into()));
    }
    let v = v as u32;
    Ok(((v >> 1) as i32) ^ -((v & 1) as i32))
}

/// Read a zig-zag varlong (max 10 bytes) from `buf` at `*pos`.
pub fn read_varlong(buf: &[u8], pos: &mut usize) -> Result<i64> {
    let v = read_unsigned(buf, pos, 10)?;
    Ok(((v >> 1) as i64) ^ -((v & 1) as i64))
}

fn read_unsigned(buf: &[u8], pos: &mut usize, max_bytes: usize) -> Result<u64> {
    let mut result: u64 = 0;
    for i in 0..max_bytes {
        let b = *buf
            .get(*pos)
            .ok_or_else(|| Error::CorruptMessage("truncated varint".into()))?;
        *pos += 1;
        result |= ((b & 0x7f) as u64) << (7 * i);
        if b & 0x80 == 0 {
            return Ok(result);
        }
    }
    Err(Error::CorruptMessage("varint too long".into()))
}

/// Append a zig-zag varint.
pub fn put_varint(out: &mut Vec<u8>, v: i32) {
    put_unsigned(out, ((v << 1) ^ (v >> 31)) as u32 as u64);
}

/// Append a zig-zag varlong.
pub fn put_varlong(out: &mut Vec<u8>, v: i64) {
    put_unsigned(out, ((v << 1) ^ (v >> 63)) as u64);
}

fn put_unsigned(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Encoded size of a zig-zag varint.
pub fn varint_len(v: i32) -> usize {
    unsigned_len(((v << 1) ^ (v >> 31)) as u32 as u64)
}

/// Encoded size of a zig-zag varlong.
pub fn varlong_len(v: i64) -> usize {
    unsigned_len(((v << 1) ^ (v >> 63)) as u64)
}

fn unsigned_len(mut u: u64) -> usize {
    let mut n = 1;
    while u >= 0x80 {
        u >>= 7;
        n += 1;
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        for v in [0, 1, -1, 63, -64, 64, 300, i32::MAX, i32::MIN] {
            let mut out = Vec::new();
            put_varint(&mut out, v);
            assert_eq!(out.len(), varint_len(v));
            let mut p = 0;
            assert_eq!(read_varint(&out, &mut p).unwrap(), v);
            assert_eq!(p, out.len());
        }
        for v in [0i64, -1, i64::MAX, i64::MIN, 1 << 40] {
            let mut out = Vec::new();
            put_varlong(&mut out, v);
            let mut p = 0;
            assert_eq!(read_varlong(&out, &mut p).unwrap(), v);
        }
    }

    #[test]
    fn truncated_and_overlong_are_errors() {
        let mut p = 0;
        assert!(read_varint(&[0x80], &mut p).is_err());
        let mut p = 0;
        assert!(read_varint(&[0xff; 6], &mut p).is_err());
    }
}
