//! Record batch compression codecs (gzip, snappy, lz4, zstd) with a cap on decompressed output,
//! so a compression bomb becomes an error instead of an out-of-memory.

use crate::error::{Error, Result};
use std::io::Read;

/// Codec ids as stored in the low three bits of a batch's attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    None = 0,
    Gzip = 1,
    Snappy = 2,
    Lz4 = 3,
    Zstd = 4,
}

impl Codec {
    pub fn from_attributes(attributes: i16) -> Result<Codec> {
        match attributes & 0x7 {
            0 => Ok(Codec::None),
            1 => Ok(Codec::Gzip),
            2 => Ok(Codec::Snappy),
            3 => Ok(Codec::Lz4),
            4 => Ok(Codec::Zstd),
            other => Err(Error::UnsupportedCompression(other)),
        }
    }

    /// Parse a topic `compression.type` value (`producer` and `uncompressed` included).
    pub fn from_config(name: &str) -> Option<Option<Codec>> {
        match name {
            "producer" => Some(None),
            "uncompressed" | "none" => Some(Some(Codec::None)),
            "gzip" => Some(Some(Codec::Gzip)),
            "snappy" => Some(Some(Codec::Snappy)),
            "lz4" => Some(Some(Codec::Lz4)),
            "zstd" => Some(Some(Codec::Zstd)),
            _ => None,
        }
    }
}

/// The xerial snappy-java stream header used by the Java client.
const XERIAL_MAGIC: &[u8] = &[0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0];

/// Decompress `input`, failing if the output would exceed `cap` bytes.
pub fn decompress(codec: Codec, input: &[u8], cap: usize) -> Result<Vec<u8>> {
    let bomb = || Error::CorruptMessage(format!("decompressed batch exceeds {cap} bytes"));
    let bad = |e: std::io::Error| Error::CorruptMessage(format!("{codec:?} decompression: {e}"));
    match codec {
        Codec::None => Ok(input.to_vec()),
        Codec::Gzip => read_capped(flate2::read::GzDecoder::new(input), cap).map_err(|e| {
            if e.kind() == std::io::ErrorKind::FileTooLarge {
                bomb()
            } else {
                bad(e)
            }
        }),
        Codec::Lz4 => read_capped(lz4_flex::frame::FrameDecoder::new(input), cap).map_err(|e| {
            if e.kind() == std::io::ErrorKind::FileTooLarge {
                bomb()
            } else {
                bad(e)
            }
        }),
        Codec::Zstd => {
            let dec = zstd::stream::read::Decoder::new(input).map_err(bad)?;
            read_capped(dec, cap).map_err(|e| {
                if e.kind() == std::io::ErrorKind::FileTooLarge {
                    bomb()
                } else {
                    bad(e)
                }
            })
        }
        Codec::Snappy => {
            if input.starts_with(XERIAL_MAGIC) && input.len() >= 16 {
                // Header: magic(8) + version(4) + compatible version(4), then
                // blocks of [len: u32 BE][raw snappy block].
                let mut out = Vec::new();
                let mut pos = 16;
                while pos < input.len() {
                    if pos + 4 > input.len() {
                        return Err(Error::CorruptMessage("truncated snappy block".into()));
                    }
                    let n = u32::from_be_bytes([
                        input[pos],
                        input[pos + 1],
                        input[pos + 2],
                        input[pos + 3],
                    ]) as usize;
                    pos += 4;
                    let block = input
                        .get(pos..pos.saturating_add(n))
                        .ok_or_else(|| Error::CorruptMessage("truncated snappy block".into()))?;
                    pos += n;
                    snappy_raw(block, cap.saturating_sub(out.len()), &mut out)?;
                }
                Ok(out)
            } else {
                let mut out = Vec::new();
                snappy_raw(input, cap, &mut out)?;
                Ok(out)
            }
        }
    }
}

/// The decompressed size a snappy input declares (raw block, or xerial-framed blocks), checked
/// before anything is allocated for it.
pub fn decompressed_len(codec: Codec, input: &[u8]) -> Result<usize> {
    let bad = |e: snap::Error| Error::CorruptMessage(format!("snappy: {e}"));
    if codec != Codec::Snappy {
        return Ok(input.len());
    }
    if !(input.starts_with(XERIAL_MAGIC) && input.len() >= 16) {
        return snap::raw::decompress_len(input).map_err(bad);
    }
    let (mut pos, mut total) = (16usize, 0usize);
    while pos + 4 <= input.len() {
        let n = u32::from_be_bytes([input[pos], input[pos + 1], input[pos + 2], input[pos + 3]])
            as usize;
        pos += 4;
        let block = input
            .get(pos..pos.saturating_add(n))
            .ok_or_else(|| Error::CorruptMessage("truncated snappy block".into()))?;
        total = total.saturating_add(snap::raw::decompress_len(block).map_err(bad)?);
        pos += n;
    }
    Ok(total)
}

fn snappy_raw(block: &[u8], cap: usize, out: &mut Vec<u8>) -> Result<()> {
    let len = snap::raw::decompress_len(block)
        .map_err(|e| Error::CorruptMessage(format!("snappy: {e}")))?;
    if len > cap {
        return Err(Error::CorruptMessage(format!(
            "decompressed batch exceeds {cap} bytes"
        )));
    }
    let start = out.len();
    out.resize(start + len, 0);
    snap::raw::Decoder::new()
        .decompress(block, &mut out[start..])
        .map_err(|e| Error::CorruptMessage(format!("snappy: {e}")))?;
    Ok(())
}

fn read_capped<R: Read>(reader: R, cap: usize) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut limited = reader.take(cap as u64 + 1);
    limited.read_to_end(&mut out)?;
    if out.len() > cap {
        return Err(std::io::Error::new(
            std::io::ErrorKind::FileTooLarge,
            "decompression cap exceeded",
        ));
    }
    Ok(out)
}

/// Compress `input` with `codec` at `level` (used where zstd/gzip take one).
pub fn compress(codec: Codec, input: &[u8], level: i32) -> Result<Vec<u8>> {
    use std::io::Write;
    let io = |e: std::io::Error| Error::Internal(format!("{codec:?} compression: {e}"));
    match codec {
        Codec::None => Ok(input.to_vec()),
        Codec::Gzip => {
            let lvl = level.clamp(1, 9) as u32;
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(lvl));
            enc.write_all(input).map_err(io)?;
            enc.finish().map_err(io)
        }
        Codec::Snappy => {
            // xerial framing: readable by the Java client and by librdkafka.
            let mut out = Vec::with_capacity(input.len() / 2 + 32);
            out.extend_from_slice(XERIAL_MAGIC);
            out.extend_from_slice(&1i32.to_be_bytes());
            out.extend_from_slice(&1i32.to_be_bytes());
            let mut enc = snap::raw::Encoder::new();
            for chunk in input.chunks(32 * 1024) {
                let block = enc
                    .compress_vec(chunk)
                    .map_err(|e| Error::Internal(format!("snappy: {e}")))?;
                out.extend_from_slice(&(block.len() as u32).to_be_bytes());
                out.extend_from_slice(&block);
            }
            Ok(out)
        }
        Codec::Lz4 => {
            let mut enc = lz4_flex::frame::FrameEncoder::new(Vec::new());
            enc.write_all(input).map_err(io)?;
            enc.finish()
                .map_err(|e| Error::Internal(format!("lz4: {e}")))
        }
        Codec::Zstd => zstd::bulk::compress(input, level).map_err(io),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_codec_round_trips() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        for codec in [
            Codec::None,
            Codec::Gzip,
            Codec::Snappy,
            Codec::Lz4,
            Codec::Zstd,
        ] {
            let c = compress(codec, &data, 3).unwrap();
            assert_eq!(decompress(codec, &c, 1 << 20).unwrap(), data, "{codec:?}");
        }
    }

    #[test]
    fn raw_snappy_is_accepted() {
        let data = b"hello hello hello hello".to_vec();
        let c = snap::raw::Encoder::new().compress_vec(&data).unwrap();
        assert_eq!(decompress(Codec::Snappy, &c, 1024).unwrap(), data);
    }

    #[test]
    fn bombs_hit_the_cap() {
        let zeros = vec![0u8; 10 << 20];
        for codec in [Codec::Gzip, Codec::Snappy, Codec::Lz4, Codec::Zstd] {
            let c = compress(codec, &zeros, 3).unwrap();
            let e = decompress(codec, &c, 1 << 20).unwrap_err();
            assert!(matches!(e, Error::CorruptMessage(_)), "{codec:?}: {e}");
        }
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for codec in [Codec::Gzip, Codec::Snappy, Codec::Lz4, Codec::Zstd] {
            assert!(decompress(codec, &[1, 2, 3, 4, 5, 6, 7, 8, 9], 1024).is_err());
        }
    }
}
