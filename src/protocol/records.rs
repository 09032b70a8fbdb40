//! Kafka record batches (magic 2): validation of produced batches, base-offset rewriting, record
//! parsing (keeping duplicate headers and their order) and encoding of batches re-built from
//! stored rows.
//!
//! Layout of a batch (offsets in bytes):
//! `0 base_offset i64 | 8 batch_length i32 | 12 partition_leader_epoch i32 | 16 magic i8 |
//!  17 crc u32 (CRC-32C of bytes 21..) | 21 attributes i16 | 23 last_offset_delta i32 |
//!  27 base_timestamp i64 | 35 max_timestamp i64 | 43 producer_id i64 | 51 producer_epoch i16 |
//!  53 base_sequence i32 | 57 record_count i32 | 61 records…`

use super::compression::{self, Codec};
use super::varint::{put_varint, put_varlong, read_varint, read_varlong, varint_len, varlong_len};
use crate::error::{Error, Result};
use bytes::Bytes;

/// Size of the fixed batch header up to and including `record_count`.
pub const BATCH_HEADER_LEN: usize = 61;
/// Bytes of the header not counted by `batch_length` (base offset + length field).
pub const LOG_OVERHEAD: usize = 12;
/// Where the CRC-covered part of a batch starts.
const CRC_START: usize = 21;

/// Attribute bits.
pub const ATTR_TIMESTAMP_LOG_APPEND: i16 = 1 << 3;
pub const ATTR_TRANSACTIONAL: i16 = 1 << 4;
pub const ATTR_CONTROL: i16 = 1 << 5;

/// The fixed header of one record batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    pub base_offset: i64,
    pub batch_length: i32,
    pub partition_leader_epoch: i32,
    pub magic: i8,
    pub crc: u32,
    pub attributes: i16,
    pub last_offset_delta: i32,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub record_count: i32,
}

fn be_i16(b: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([b[at], b[at + 1]])
}
fn be_i32(b: &[u8], at: usize) -> i32 {
    i32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
fn be_i64(b: &[u8], at: usize) -> i64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    i64::from_be_bytes(a)
}

impl BatchHeader {
    /// Parse the header at the start of `b` (which must hold at least `BATCH_HEADER_LEN` bytes).
    pub fn parse(b: &[u8]) -> Result<BatchHeader> {
        if b.len() < 17 {
            return Err(Error::CorruptMessage(format!(
                "record batch of {} bytes is shorter than its header",
                b.len()
            )));
        }
        let magic = b[16] as i8;
        if magic != 2 {
            return Err(Error::UnsupportedMagic(magic));
        }
        if b.len() < BATCH_HEADER_LEN {
            return Err(Error::CorruptMessage(format!(
                "record batch of {} bytes is shorter than its header",
                b.len()
            )));
        }
        Ok(BatchHeader {
            base_offset: be_i64(b, 0),
            batch_length: be_i32(b, 8),
            partition_leader_epoch: be_i32(b, 12),
            magic,
            crc: be_i32(b, 17) as u32,
            attributes: be_i16(b, 21),
            last_offset_delta: be_i32(b, 23),
            base_timestamp: be_i64(b, 27),
            max_timestamp: be_i64(b, 35),
            producer_id: be_i64(b, 43),
            producer_epoch: be_i16(b, 51),
            base_sequence: be_i32(b, 53),
            record_count: be_i32(b, 57),
        })
    }

    pub fn codec(&self) -> Result<Codec> {
        Codec::from_attributes(self.attributes)
    }

    pub fn is_control(&self) -> bool {
        self.attributes & ATTR_CONTROL != 0
    }

    pub fn is_transactional(&self) -> bool {
        self.attributes & ATTR_TRANSACTIONAL != 0
    }

    pub fn last_offset(&self) -> i64 {
        self.base_offset + self.last_offset_delta as i64
    }

    /// Total bytes of this batch on the wire.
    pub fn total_len(&self) -> usize {
        LOG_OVERHEAD + self.batch_length.max(0) as usize
    }
}

/// A produced batch that passed validation.
#[derive(Debug, Clone)]
pub struct ValidatedBatch {
    pub header: BatchHeader,
    /// The batch bytes exactly as the producer sent them.
    pub bytes: Bytes,
    /// Size of its records once decompressed (what the batch costs to encode and to serve
    /// from a segment); equal to the records' size on the wire for uncompressed batches.
    pub decoded_len: usize,
    /// Indexes of records without a key (a compacted topic refuses them), at most
    /// [`MAX_KEYLESS_REPORTED`].
    pub keyless: Vec<i32>,
}

/// Keyless records listed per batch (what a compacted topic's error reports).
pub const MAX_KEYLESS_REPORTED: usize = 64;

fn note_keyless(keyless: &mut Vec<i32>, index: usize, key: &Option<Bytes>) {
    if key.is_none() && keyless.len() < MAX_KEYLESS_REPORTED {
        keyless.push(index as i32);
    }
}

/// Records of a compressed batch are validated in chunks of this size: validation memory is
/// one chunk (or one record, when a record is larger), not the whole decompressed batch.
const STREAM_CHUNK: usize = 256 * 1024;

/// A broker-wide budget of decompressed bytes held at once by produce validation, in KiB
/// permits. A record larger than `STREAM_CHUNK` is only read once its size is granted.
#[derive(Debug, Clone)]
pub struct DecodeBudget {
    sem: std::sync::Arc<tokio::sync::Semaphore>,
    total_kib: u32,
}

impl DecodeBudget {
    pub fn new(bytes: usize) -> DecodeBudget {
        let total_kib = u32::try_from(bytes / 1024)
            .unwrap_or(u32::MAX)
            .clamp(1, tokio::sync::Semaphore::MAX_PERMITS as u32);
        DecodeBudget {
            sem: std::sync::Arc::new(tokio::sync::Semaphore::new(total_kib as usize)),
            total_kib,
        }
    }

    /// Bytes of the budget not held right now.
    pub fn available_bytes(&self) -> usize {
        self.sem.available_permits() * 1024
    }

    /// Hold `bytes` (at most the whole budget), waiting asynchronously.
    pub async fn hold_async(&self, bytes: usize) -> Option<tokio::sync::OwnedSemaphorePermit> {
        let kib = u32::try_from(bytes / 1024 + 1)
            .unwrap_or(u32::MAX)
            .min(self.total_kib);
        self.sem.clone().acquire_many_owned(kib).await.ok()
    }

    /// Hold `bytes` (at most the whole budget), waiting for them. Only from a blocking thread
    /// inside the runtime; elsewhere (tests, fuzzers) nothing is held.
    fn hold(&self, bytes: usize) -> Option<tokio::sync::OwnedSemaphorePermit> {
        let kib = u32::try_from(bytes / 1024 + 1)
            .unwrap_or(u32::MAX)
            .min(self.total_kib);
        let handle = tokio::runtime::Handle::try_current().ok()?;
        handle
            .block_on(self.sem.clone().acquire_many_owned(kib))
            .ok()
    }
}

/// Validate the `records` field of one produced partition: exactly one magic-2 batch
/// (as Kafka requires from Produce v3 on), sane lengths, matching CRC-32C, a known codec,
/// a record count that matches `last_offset_delta`, and records that parse (decompressed
/// with an output cap of `max_uncompressed`).
pub fn validate_produce(records: &Bytes, max_uncompressed: usize) -> Result<ValidatedBatch> {
    validate_produce_with(records, max_uncompressed, None)
}

/// [`validate_produce`], holding large decompressed records against a broker-wide `budget`
/// (call it from a blocking thread inside the runtime when a budget is given: it may wait).
pub fn validate_produce_with(
    records: &Bytes,
    max_uncompressed: usize,
    budget: Option<&DecodeBudget>,
) -> Result<ValidatedBatch> {
    let header = BatchHeader::parse(records)?;
    if header.batch_length < (BATCH_HEADER_LEN - LOG_OVERHEAD) as i32 {
        return Err(Error::CorruptMessage(format!(
            "batch length {} is shorter than the header",
            header.batch_length
        )));
    }
    let total = header.total_len();
    if total > records.len() {
        return Err(Error::CorruptMessage(format!(
            "batch length {} exceeds the {} bytes sent",
            total,
            records.len()
        )));
    }
    if total < records.len() {
        return Err(Error::InvalidRecord(
            "a produce request must carry exactly one record batch per partition".into(),
        ));
    }
    let crc = crc32c::crc32c(&records[CRC_START..total]);
    if crc != header.crc {
        return Err(Error::CorruptMessage(format!(
            "CRC-32C mismatch: batch says {:#010x}, computed {:#010x}",
            header.crc, crc
        )));
    }
    let codec = header.codec()?;
    if header.record_count <= 0 {
        return Err(Error::InvalidRecord(format!(
            "record count {} (a produced batch needs at least one record)",
            header.record_count
        )));
    }
    if header.last_offset_delta != header.record_count - 1 {
        return Err(Error::InvalidRecord(format!(
            "last offset delta {} does not match record count {}",
            header.last_offset_delta, header.record_count
        )));
    }
    if header.is_control() {
        return Err(Error::InvalidRecord(
            "clients may not produce control batches".into(),
        ));
    }
    let bytes = records.clone();
    // Parse every record (decompressing under the cap) so a malformed batch is refused now
    // rather than when it is encoded to Parquet.
    let mut keyless = Vec::new();
    let (parsed, decoded_len) = match codec {
        Codec::None => {
            let mut i = 0usize;
            let n = parse_records_with(&header, &bytes, codec, max_uncompressed, |r| {
                note_keyless(&mut keyless, i, &r.key);
                i += 1;
                Ok(())
            })?;
            (n, total - BATCH_HEADER_LEN)
        }
        c => validate_compressed(
            &header,
            c,
            &bytes[BATCH_HEADER_LEN..total],
            max_uncompressed,
            budget,
            &mut keyless,
        )?,
    };
    if parsed != header.record_count as usize {
        return Err(Error::InvalidRecord(format!(
            "batch declares {} records but holds {}",
            header.record_count, parsed
        )));
    }
    Ok(ValidatedBatch {
        header,
        bytes,
        decoded_len,
        keyless,
    })
}

/// Stream-validate the records of a compressed batch: decompress a chunk at a time, parse the
/// complete records in it, carry the partial tail over. Returns (records, decompressed bytes).
/// The output cap `max_uncompressed` bounds the whole batch; memory is one chunk or one record.
fn validate_compressed(
    header: &BatchHeader,
    codec: Codec,
    compressed: &[u8],
    max_uncompressed: usize,
    budget: Option<&DecodeBudget>,
    keyless: &mut Vec<i32>,
) -> Result<(usize, usize)> {
    use std::io::Read;
    let bomb = || {
        Error::CorruptMessage(format!(
            "decompressed batch exceeds {max_uncompressed} bytes"
        ))
    };
    let bad = |e: std::io::Error| Error::CorruptMessage(format!("{codec:?} decompression: {e}"));
    let mut reader: Box<dyn Read + '_> = match codec {
        Codec::Gzip => Box::new(flate2::read::GzDecoder::new(compressed)),
        Codec::Lz4 => Box::new(lz4_flex::frame::FrameDecoder::new(compressed)),
        Codec::Zstd => Box::new(zstd::stream::read::Decoder::new(compressed).map_err(bad)?),
        // Snappy blocks declare their size: decompress at once under the cap and the budget.
        Codec::Snappy | Codec::None => {
            let need = compression::decompressed_len(codec, compressed)?;
            if need > max_uncompressed {
                return Err(bomb());
            }
            let _permit = acquire(budget, need);
            let body = Bytes::from(compression::decompress(
                codec,
                compressed,
                max_uncompressed,
            )?);
            let mut i = 0usize;
            let n = parse_body(header, &body, |r| {
                note_keyless(keyless, i, &r.key);
                i += 1;
                Ok(())
            })?;
            return Ok((n, body.len()));
        }
    };
    let count = header.record_count.max(0) as usize;
    let mut pending = bytes::BytesMut::with_capacity(STREAM_CHUNK);
    let mut decoded = 0usize;
    let mut n = 0usize;
    let mut eof = false;
    let mut _permit = None;
    loop {
        // Fill up to the size the next complete record needs (at least a chunk).
        let want = match record_extent(&pending)? {
            Some(len) if len > pending.len() => len,
            Some(_) => pending.len(),
            None => pending.len() + STREAM_CHUNK,
        }
        .max(STREAM_CHUNK);
        if want > max_uncompressed.saturating_add(16) {
            return Err(bomb());
        }
        if want > STREAM_CHUNK && want > pending.capacity() {
            _permit = None;
            _permit = acquire(budget, want);
        }
        while !eof && pending.len() < want {
            let at = pending.len();
            pending.resize(want, 0);
            let got = reader.read(&mut pending[at..]).map_err(bad)?;
            pending.truncate(at + got);
            decoded += got;
            if decoded > max_uncompressed {
                return Err(bomb());
            }
            eof = got == 0;
        }
        let body = pending.split().freeze();
        let mut pos = 0;
        while let Some(len) = record_extent(&body[pos..])? {
            if len > body.len() - pos {
                break;
            }
            if n >= count {
                return Err(Error::InvalidRecord(format!(
                    "batch holds more than its declared {count} records"
                )));
            }
            let rec = parse_one(&body, &mut pos)?;
            note_keyless(keyless, n, &rec.key);
            if rec.offset_delta != n as i32 {
                return Err(Error::InvalidRecord(format!(
                    "record {n} has offset delta {} (deltas must be consecutive)",
                    rec.offset_delta
                )));
            }
            n += 1;
        }
        pending.extend_from_slice(&body[pos..]);
        if eof {
            if !pending.is_empty() {
                return Err(Error::CorruptMessage("truncated record".into()));
            }
            return Ok((n, decoded));
        }
    }
}

/// The total size (length varint included) of the record starting at `buf[0]`, or `None` when
/// `buf` does not hold its whole length varint yet.
fn record_extent(buf: &[u8]) -> Result<Option<usize>> {
    let mut pos = 0;
    match read_varint(buf, &mut pos) {
        Ok(len) if len < 0 => Err(Error::CorruptMessage(format!("record length {len}"))),
        Ok(len) => Ok(Some(pos + len as usize)),
        Err(_) if buf.len() < 5 => Ok(None),
        Err(e) => Err(e),
    }
}

/// Hold `bytes` of the decode budget, if there is one (see [`DecodeBudget::hold`]).
fn acquire(
    budget: Option<&DecodeBudget>,
    bytes: usize,
) -> Option<tokio::sync::OwnedSemaphorePermit> {
    budget?.hold(bytes)
}

/// Re-encode a validated batch with another codec (topic `compression.type`), keeping its
/// producer fields, sequence, timestamps, keys, values and headers.
pub fn recompress(
    batch: &ValidatedBatch,
    codec: Codec,
    level: i32,
    max_uncompressed: usize,
) -> Result<ValidatedBatch> {
    let (h, records) = parse_records(&batch.bytes, max_uncompressed)?;
    let owned: Vec<OwnedRecord> = records
        .into_iter()
        .map(|r| OwnedRecord {
            offset: r.offset_delta as i64,
            timestamp: h.base_timestamp.wrapping_add(r.timestamp_delta),
            key: r.key,
            value: r.value,
            headers: r.headers,
        })
        .collect();
    let meta = BatchMeta {
        base_offset: 0,
        timestamp_type: if h.attributes & ATTR_TIMESTAMP_LOG_APPEND != 0 {
            1
        } else {
            0
        },
        producer_id: h.producer_id,
        producer_epoch: h.producer_epoch,
        base_sequence: h.base_sequence,
        partition_leader_epoch: h.partition_leader_epoch,
        transactional: h.is_transactional(),
        control: h.is_control(),
    };
    let decoded_len = owned
        .iter()
        .map(|r| {
            r.key.as_ref().map_or(0, |k| k.len())
                + r.value.as_ref().map_or(0, |v| v.len())
                + r.headers
                    .iter()
                    .map(|(k, v)| k.len() + v.as_ref().map_or(0, |v| v.len()))
                    .sum::<usize>()
                + 16
        })
        .sum();
    let bytes = Bytes::from(encode_batch(&meta, &owned, codec, level)?);
    let header = BatchHeader::parse(&bytes)?;
    Ok(ValidatedBatch {
        header,
        bytes,
        decoded_len,
        keyless: batch.keyless.clone(),
    })
}

/// Overwrite the base offset of the batch in `batch` (outside the CRC, so no re-encoding).
pub fn set_base_offset(batch: &mut [u8], base_offset: i64) {
    batch[0..8].copy_from_slice(&base_offset.to_be_bytes());
}

/// Overwrite the partition leader epoch of the batch (also outside the CRC).
pub fn set_partition_leader_epoch(batch: &mut [u8], epoch: i32) {
    batch[12..16].copy_from_slice(&epoch.to_be_bytes());
}

/// One record of a batch, with payloads as zero-copy slices of the batch (or of its
/// decompressed records).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub offset_delta: i32,
    pub timestamp_delta: i64,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    /// Headers in wire order, duplicates kept.
    pub headers: Vec<(Bytes, Option<Bytes>)>,
}

/// Parse all records of one batch (decompressing with an output cap).
pub fn parse_records(batch: &Bytes, max_uncompressed: usize) -> Result<(BatchHeader, Vec<Record>)> {
    let header = BatchHeader::parse(batch)?;
    let codec = header.codec()?;
    let mut out = Vec::with_capacity((header.record_count.max(0) as usize).min(1 << 16));
    parse_records_with(&header, batch, codec, max_uncompressed, |r| {
        out.push(r);
        Ok(())
    })?;
    Ok((header, out))
}

fn parse_records_with<F: FnMut(Record) -> Result<()>>(
    header: &BatchHeader,
    batch: &Bytes,
    codec: Codec,
    max_uncompressed: usize,
    f: F,
) -> Result<usize> {
    let end = header.total_len().min(batch.len());
    if end < BATCH_HEADER_LEN {
        return Err(Error::CorruptMessage("truncated batch".into()));
    }
    let body: Bytes = match codec {
        Codec::None => batch.slice(BATCH_HEADER_LEN..end),
        c => Bytes::from(compression::decompress(
            c,
            &batch[BATCH_HEADER_LEN..end],
            max_uncompressed,
        )?),
    };
    parse_body(header, &body, f)
}

/// Parse the (decompressed) records of a batch, checking count and offset deltas.
fn parse_body<F: FnMut(Record) -> Result<()>>(
    header: &BatchHeader,
    body: &Bytes,
    mut f: F,
) -> Result<usize> {
    let mut pos = 0usize;
    let mut n = 0usize;
    let count = header.record_count.max(0) as usize;
    while pos < body.len() {
        if n >= count {
            return Err(Error::InvalidRecord(format!(
                "batch holds more than its declared {count} records"
            )));
        }
        let rec = parse_one(body, &mut pos)?;
        if rec.offset_delta != n as i32 {
            return Err(Error::InvalidRecord(format!(
                "record {n} has offset delta {} (deltas must be consecutive)",
                rec.offset_delta
            )));
        }
        f(rec)?;
        n += 1;
    }
    Ok(n)
}

fn parse_one(body: &Bytes, pos: &mut usize) -> Result<Record> {
    let len = read_varint(body, pos)?;
    if len < 0 || *pos + len as usize > body.len() {
        return Err(Error::CorruptMessage(format!(
            "record length {len} out of bounds"
        )));
    }
    let end = *pos + len as usize;
    let rec_bytes = &body[..end];
    // attributes (unused in magic 2)
    if *pos >= end {
        return Err(Error::CorruptMessage("empty record".into()));
    }
    *pos += 1;
    let timestamp_delta = read_varlong(rec_bytes, pos)?;
    let offset_delta = read_varint(rec_bytes, pos)?;
    let key = read_opt_bytes(body, end, pos)?;
    let value = read_opt_bytes(body, end, pos)?;
    let n_headers = read_varint(rec_bytes, pos)?;
    if n_headers < 0 {
        return Err(Error::CorruptMessage(format!(
            "negative header count {n_headers}"
        )));
    }
    let mut headers = Vec::with_capacity((n_headers as usize).min(64));
    for _ in 0..n_headers {
        let k = read_opt_bytes(body, end, pos)?
            .ok_or_else(|| Error::InvalidRecord("null header key".into()))?;
        if std::str::from_utf8(&k).is_err() {
            return Err(Error::InvalidRecord("header key is not UTF-8".into()));
        }
        let v = read_opt_bytes(body, end, pos)?;
        headers.push((k, v));
    }
    if *pos != end {
        return Err(Error::CorruptMessage(format!(
            "record length {len} does not match its contents"
        )));
    }
    Ok(Record {
        offset_delta,
        timestamp_delta,
        key,
        value,
        headers,
    })
}

fn read_opt_bytes(body: &Bytes, end: usize, pos: &mut usize) -> Result<Option<Bytes>> {
    let n = read_varint(&body[..end], pos)?;
    if n < 0 {
        return Ok(None);
    }
    let n = n as usize;
    if *pos + n > end {
        return Err(Error::CorruptMessage(
            "record field runs past the record".into(),
        ));
    }
    let b = body.slice(*pos..*pos + n);
    *pos += n;
    Ok(Some(b))
}

/// A record with absolute offset and timestamp, as stored in a segment row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedRecord {
    pub offset: i64,
    pub timestamp: i64,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub headers: Vec<(Bytes, Option<Bytes>)>,
}

/// Batch-level fields of a re-encoded batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchMeta {
    pub base_offset: i64,
    pub timestamp_type: i8,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub partition_leader_epoch: i32,
    /// Part of a transaction (attribute bit 4).
    pub transactional: bool,
    /// A control batch: its record is a transaction marker (attribute bit 5).
    pub control: bool,
}

impl BatchMeta {
    /// A create-time batch from no particular producer (no id, epoch or sequence).
    pub fn plain(base_offset: i64) -> BatchMeta {
        BatchMeta {
            base_offset,
            timestamp_type: 0,
            producer_id: -1,
            producer_epoch: -1,
            base_sequence: -1,
            partition_leader_epoch: 0,
            transactional: false,
            control: false,
        }
    }
}

/// Encode `records` (consecutive offsets starting at `meta.base_offset`) as one batch.
pub fn encode_batch(
    meta: &BatchMeta,
    records: &[OwnedRecord],
    codec: Codec,
    level: i32,
) -> Result<Vec<u8>> {
    let first = records
        .first()
        .ok_or_else(|| Error::Internal("cannot encode an empty batch".into()))?;
    let size = records.iter().map(record_size_hint).sum();
    let mut b = BatchBuilder::new(*meta, first.timestamp, size);
    for r in records {
        b.push(
            r.offset,
            r.timestamp,
            r.key.as_deref(),
            r.value.as_deref(),
            r.headers.iter().map(|(k, v)| (&k[..], v.as_deref())),
        );
    }
    b.finish(codec, level)
}

/// Builds one batch record by record, writing each record straight into the batch buffer
/// (no per-record allocation): used to re-encode batches from Parquet rows and by
/// [`encode_batch`].
pub struct BatchBuilder {
    meta: BatchMeta,
    base_ts: i64,
    max_ts: i64,
    last_offset: i64,
    count: i32,
    /// Header space (filled by `finish`) followed by the records.
    buf: Vec<u8>,
}

impl BatchBuilder {
    /// Start a batch whose first record has timestamp `base_ts`; `size_hint` is the expected
    /// size of the records.
    pub fn new(meta: BatchMeta, base_ts: i64, size_hint: usize) -> BatchBuilder {
        let mut buf = Vec::with_capacity(BATCH_HEADER_LEN + size_hint);
        buf.resize(BATCH_HEADER_LEN, 0);
        BatchBuilder {
            meta,
            base_ts,
            max_ts: base_ts,
            last_offset: meta.base_offset,
            count: 0,
            buf,
        }
    }

    pub fn base_offset(&self) -> i64 {
        self.meta.base_offset
    }
    pub fn last_offset(&self) -> i64 {
        self.last_offset
    }
    pub fn max_timestamp(&self) -> i64 {
        self.max_ts
    }
    pub fn len(&self) -> usize {
        self.buf.len()
    }
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Append one record (offsets must increase from the batch's base offset).
    pub fn push<'a>(
        &mut self,
        offset: i64,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: impl Iterator<Item = (&'a [u8], Option<&'a [u8]>)> + Clone,
    ) {
        let offset_delta = (offset - self.meta.base_offset) as i32;
        let ts_delta = timestamp.wrapping_sub(self.base_ts);
        let opt_len =
            |b: Option<&[u8]>| b.map_or(varint_len(-1), |b| varint_len(b.len() as i32) + b.len());
        let mut n_headers = 0;
        let mut headers_len = 0;
        for (k, v) in headers.clone() {
            n_headers += 1;
            headers_len += varint_len(k.len() as i32) + k.len() + opt_len(v);
        }
        let len = 1
            + varlong_len(ts_delta)
            + varint_len(offset_delta)
            + opt_len(key)
            + opt_len(value)
            + varint_len(n_headers)
            + headers_len;
        let out = &mut self.buf;
        put_varint(out, len as i32);
        out.push(0); // attributes
        put_varlong(out, ts_delta);
        put_varint(out, offset_delta);
        put_opt(out, key);
        put_opt(out, value);
        put_varint(out, n_headers);
        for (k, v) in headers {
            put_varint(out, k.len() as i32);
            out.extend_from_slice(k);
            put_opt(out, v);
        }
        self.count += 1;
        self.last_offset = offset;
        self.max_ts = self.max_ts.max(timestamp);
    }

    /// The finished batch (records compressed with `codec`), CRC included.
    pub fn finish(self, codec: Codec, level: i32) -> Result<Vec<u8>> {
        if self.count == 0 {
            return Err(Error::Internal("cannot encode an empty batch".into()));
        }
        let mut out = if codec == Codec::None {
            self.buf
        } else {
            let body = compression::compress(codec, &self.buf[BATCH_HEADER_LEN..], level)?;
            let mut out = Vec::with_capacity(BATCH_HEADER_LEN + body.len());
            out.resize(BATCH_HEADER_LEN, 0);
            out.extend_from_slice(&body);
            out
        };
        let m = &self.meta;
        let mut h = Vec::with_capacity(BATCH_HEADER_LEN);
        h.extend_from_slice(&m.base_offset.to_be_bytes());
        h.extend_from_slice(&((out.len() - LOG_OVERHEAD) as i32).to_be_bytes());
        h.extend_from_slice(&m.partition_leader_epoch.to_be_bytes());
        h.push(2);
        h.extend_from_slice(&[0, 0, 0, 0]); // crc, computed below
        let mut attributes = codec as i16;
        if m.timestamp_type == 1 {
            attributes |= ATTR_TIMESTAMP_LOG_APPEND;
        }
        if m.transactional {
            attributes |= ATTR_TRANSACTIONAL;
        }
        if m.control {
            attributes |= ATTR_CONTROL;
        }
        h.extend_from_slice(&attributes.to_be_bytes());
        h.extend_from_slice(&((self.last_offset - m.base_offset) as i32).to_be_bytes());
        h.extend_from_slice(&self.base_ts.to_be_bytes());
        h.extend_from_slice(&self.max_ts.to_be_bytes());
        h.extend_from_slice(&m.producer_id.to_be_bytes());
        h.extend_from_slice(&m.producer_epoch.to_be_bytes());
        h.extend_from_slice(&m.base_sequence.to_be_bytes());
        h.extend_from_slice(&self.count.to_be_bytes());
        out[..BATCH_HEADER_LEN].copy_from_slice(&h);
        let crc = crc32c::crc32c(&out[CRC_START..]);
        out[17..21].copy_from_slice(&crc.to_be_bytes());
        Ok(out)
    }
}

fn record_size_hint(r: &OwnedRecord) -> usize {
    16 + r.key.as_ref().map_or(0, |k| k.len())
        + r.value.as_ref().map_or(0, |v| v.len())
        + r.headers
            .iter()
            .map(|(k, v)| 10 + k.len() + v.as_ref().map_or(0, |v| v.len()))
            .sum::<usize>()
}

fn put_opt(out: &mut Vec<u8>, b: Option<&[u8]>) {
    match b {
        None => put_varint(out, -1),
        Some(b) => {
            put_varint(out, b.len() as i32);
            out.extend_from_slice(b);
        }
    }
}

/// Split a buffer holding consecutive batches into (header, bytes) pairs, stopping at a
/// trailing partial batch.
pub fn split_batches(buf: &Bytes) -> Vec<(BatchHeader, Bytes)> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos + BATCH_HEADER_LEN <= buf.len() {
        let Ok(h) = BatchHeader::parse(&buf[pos..]) else {
            break;
        };
        let end = pos + h.total_len();
        if end > buf.len() || h.total_len() < BATCH_HEADER_LEN {
            break;
        }
        out.push((h, buf.slice(pos..end)));
        pos = end;
    }
    out
}

/// Records in a buffer of consecutive batches (headers only; stops at a partial batch).
pub fn count_records(buf: &[u8]) -> u64 {
    let mut n = 0u64;
    let mut pos = 0;
    while pos + BATCH_HEADER_LEN <= buf.len() {
        let Ok(h) = BatchHeader::parse(&buf[pos..]) else {
            break;
        };
        if h.total_len() < BATCH_HEADER_LEN {
            break;
        }
        n += h.record_count.max(0) as u64;
        pos += h.total_len();
    }
    n
}

/// Control record key of a transaction marker: version 0, type ABORT (0) or COMMIT (1).
pub fn marker_key(commit: bool) -> [u8; 4] {
    [0, 0, 0, commit as u8]
}

/// What a control record's key says: `Some(true)` COMMIT, `Some(false)` ABORT, `None` any
/// other control record type (Kafka ignores those when reading).
pub fn marker_kind(key: Option<&[u8]>) -> Option<bool> {
    match key? {
        [_, _, 0, 0, ..] => Some(false),
        [_, _, 0, 1, ..] => Some(true),
        _ => None,
    }
}

/// The marker a control batch holds (`Some(true)` COMMIT, `Some(false)` ABORT), read from its
/// first record's key; `None` for anything else. Control batches are never compressed.
pub fn control_batch_kind(batch: &Bytes) -> Option<bool> {
    let h = BatchHeader::parse(batch).ok()?;
    if !h.is_control() || h.codec().ok()? != Codec::None {
        return None;
    }
    let mut kind = None;
    parse_records_with(&h, batch, Codec::None, batch.len(), |r| {
        if kind.is_none() {
            kind = Some(marker_kind(r.key.as_deref()));
        }
        Ok(())
    })
    .ok()?;
    kind.flatten()
}

/// A COMMIT or ABORT control batch as a partition leader writes it when a transaction ends
/// (Kafka's `EndTransactionMarker`): one record whose key is the marker type and whose value
/// is version 0 and the coordinator epoch; never compressed; base sequence -1; base offset 0
/// (the leader assigns it).
pub fn end_txn_marker(
    producer_id: i64,
    producer_epoch: i16,
    commit: bool,
    coordinator_epoch: i32,
    timestamp: i64,
) -> Result<Bytes> {
    let meta = BatchMeta {
        producer_id,
        producer_epoch,
        transactional: true,
        control: true,
        ..BatchMeta::plain(0)
    };
    let mut value = [0u8; 6];
    value[2..].copy_from_slice(&coordinator_epoch.to_be_bytes());
    let mut b = BatchBuilder::new(meta, timestamp, 32);
    b.push(
        0,
        timestamp,
        Some(&marker_key(commit)),
        Some(&value),
        std::iter::empty(),
    );
    Ok(Bytes::from(b.finish(Codec::None, 0)?))
}

/// [`end_txn_marker`] ready for a partition leader's append (markers skip the producer checks
/// of [`validate_produce`], which refuses control batches from clients).
pub fn marker_batch(
    producer_id: i64,
    producer_epoch: i16,
    commit: bool,
    coordinator_epoch: i32,
    timestamp: i64,
) -> Result<ValidatedBatch> {
    let bytes = end_txn_marker(
        producer_id,
        producer_epoch,
        commit,
        coordinator_epoch,
        timestamp,
    )?;
    Ok(ValidatedBatch {
        header: BatchHeader::parse(&bytes)?,
        decoded_len: bytes.len() - BATCH_HEADER_LEN,
        bytes,
        keyless: Vec::new(),
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub fn sample_records(n: usize, base_ts: i64) -> Vec<OwnedRecord> {
        (0..n)
            .map(|i| OwnedRecord {
                offset: i as i64,
                timestamp: base_ts + i as i64,
                key: if i % 3 == 0 {
                    None
                } else {
                    Some(Bytes::from(format!("k{i}")))
                },
                value: match i % 4 {
                    0 => None,
                    1 => Some(Bytes::new()),
                    _ => Some(Bytes::from(vec![i as u8; i * 7])),
                },
                headers: if i % 2 == 0 {
                    vec![
                        (Bytes::from_static(b"h"), Some(Bytes::from_static(b"1"))),
                        (Bytes::from_static(b"h"), None),
                        (Bytes::from_static(b"a"), Some(Bytes::new())),
                    ]
                } else {
                    vec![]
                },
            })
            .collect()
    }

    pub fn meta() -> BatchMeta {
        BatchMeta::plain(0)
    }

    #[test]
    fn encode_validate_parse_round_trip_all_codecs() {
        let recs = sample_records(50, 1_700_000_000_000);
        for codec in [
            Codec::None,
            Codec::Gzip,
            Codec::Snappy,
            Codec::Lz4,
            Codec::Zstd,
        ] {
            let b = Bytes::from(encode_batch(&meta(), &recs, codec, 3).unwrap());
            let v = validate_produce(&b, 1 << 20).unwrap();
            assert_eq!(v.header.record_count, 50);
            assert_eq!(v.header.codec().unwrap(), codec);
            let (h, parsed) = parse_records(&b, 1 << 20).unwrap();
            assert_eq!(h.max_timestamp, 1_700_000_000_049);
            for (p, r) in parsed.iter().zip(&recs) {
                assert_eq!(p.key, r.key);
                assert_eq!(p.value, r.value);
                assert_eq!(p.headers, r.headers, "duplicate headers kept in order");
                assert_eq!(h.base_timestamp + p.timestamp_delta, r.timestamp);
            }
        }
    }

    #[test]
    fn base_offset_rewrite_keeps_crc_valid() {
        let recs = sample_records(3, 5);
        let mut b = encode_batch(&meta(), &recs, Codec::None, 0).unwrap();
        set_base_offset(&mut b, 12345);
        set_partition_leader_epoch(&mut b, 7);
        let v = validate_produce(&Bytes::from(b), 1 << 20).unwrap();
        assert_eq!(v.header.base_offset, 12345);
        assert_eq!(v.header.last_offset(), 12347);
    }

    #[test]
    fn bad_crc_is_corrupt_message() {
        let recs = sample_records(3, 5);
        let mut b = encode_batch(&meta(), &recs, Codec::None, 0).unwrap();
        let n = b.len();
        b[n - 1] ^= 0xff;
        let e = validate_produce(&Bytes::from(b), 1 << 20).unwrap_err();
        assert!(matches!(e, Error::CorruptMessage(_)), "{e}");
    }

    #[test]
    fn truncated_and_short_batches_are_errors() {
        let recs = sample_records(3, 5);
        let b = encode_batch(&meta(), &recs, Codec::None, 0).unwrap();
        for cut in [0, 5, 16, 17, 40, 60, b.len() - 1] {
            let e = validate_produce(&Bytes::copy_from_slice(&b[..cut]), 1 << 20);
            assert!(e.is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn count_mismatch_is_invalid_record() {
        let recs = sample_records(3, 5);
        let mut b = encode_batch(&meta(), &recs, Codec::None, 0).unwrap();
        b[57..61].copy_from_slice(&4i32.to_be_bytes());
        b[23..27].copy_from_slice(&3i32.to_be_bytes());
        let crc = crc32c::crc32c(&b[21..]);
        b[17..21].copy_from_slice(&crc.to_be_bytes());
        let e = validate_produce(&Bytes::from(b.clone()), 1 << 20).unwrap_err();
        assert!(matches!(e, Error::InvalidRecord(_)), "{e}");
        // last offset delta inconsistent with count
        b[57..61].copy_from_slice(&3i32.to_be_bytes());
        let crc = crc32c::crc32c(&b[21..]);
        b[17..21].copy_from_slice(&crc.to_be_bytes());
        let e = validate_produce(&Bytes::from(b), 1 << 20).unwrap_err();
        assert!(matches!(e, Error::InvalidRecord(_)), "{e}");
    }

    #[test]
    fn recompress_keeps_records_and_producer_fields() {
        let recs = sample_records(20, 5000);
        let mut m = meta();
        m.producer_id = 9;
        m.producer_epoch = 2;
        m.base_sequence = 40;
        let b = Bytes::from(encode_batch(&m, &recs, Codec::Lz4, 1).unwrap());
        let v = validate_produce(&b, 1 << 20).unwrap();
        let z = recompress(&v, Codec::Zstd, 3, 1 << 20).unwrap();
        assert_eq!(z.header.codec().unwrap(), Codec::Zstd);
        assert_eq!(
            (
                z.header.producer_id,
                z.header.producer_epoch,
                z.header.base_sequence
            ),
            (9, 2, 40)
        );
        assert_eq!(z.header.max_timestamp, v.header.max_timestamp);
        let (_, a) = parse_records(&b, 1 << 20).unwrap();
        let (_, c) = parse_records(&z.bytes, 1 << 20).unwrap();
        assert_eq!(a, c);
    }

    #[test]
    fn old_magic_is_unsupported() {
        let mut b = vec![0u8; 70];
        b[16] = 1;
        let e = validate_produce(&Bytes::from(b), 1 << 20).unwrap_err();
        assert!(matches!(e, Error::UnsupportedMagic(1)));
    }

    #[test]
    fn two_batches_in_one_partition_are_refused() {
        let recs = sample_records(2, 5);
        let mut b = encode_batch(&meta(), &recs, Codec::None, 0).unwrap();
        let b2 = b.clone();
        b.extend_from_slice(&b2);
        let e = validate_produce(&Bytes::from(b.clone()), 1 << 20).unwrap_err();
        assert!(matches!(e, Error::InvalidRecord(_)));
        assert_eq!(split_batches(&Bytes::from(b)).len(), 2);
    }

    #[test]
    fn compression_bomb_is_refused() {
        let recs = vec![OwnedRecord {
            offset: 0,
            timestamp: 0,
            key: None,
            value: Some(Bytes::from(vec![0u8; 4 << 20])),
            headers: vec![],
        }];
        let b = encode_batch(&meta(), &recs, Codec::Zstd, 3).unwrap();
        assert!(b.len() < 4096);
        let e = validate_produce(&Bytes::from(b), 1 << 20).unwrap_err();
        assert!(matches!(e, Error::CorruptMessage(_)));
    }
}
