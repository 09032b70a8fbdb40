//! The Parquet segment format: one row per Kafka record, in the documented, stable schema
//!
//! | column | type |
//! |---|---|
//! | `offset` | int64 |
//! | `timestamp` | timestamp(ms) |
//! | `timestamp_type` | int8 (0 create time, 1 log append time) |
//! | `key` | binary, null = no key |
//! | `value` | binary, null = tombstone (distinct from empty) |
//! | `headers` | list<struct<key utf8, value binary null>> (order and duplicates kept) |
//! | `producer_id` | int64 |
//! | `producer_epoch` | int16 |
//! | `sequence` | int32 |
//! | `batch_base_offset` | int64 (rebuilds the original batch boundaries) |
//! | `compression` | int8: the batch's codec as stored (0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd); cold reads re-compress with it |
//! | `is_transactional` | bool: the record belongs to a transaction |
//! | `is_control` | bool: a transaction marker (COMMIT/ABORT), not data: key = version i16 + type i16 (0 abort, 1 commit), value = version i16 + coordinator epoch i32 |
//!
//! Columns added later (`compression`, `is_transactional`, `is_control`) are absent from older
//! objects; readers fill them in (see [`with_later_columns`]).
//! Row groups hold whole batches, about [`ROW_GROUP_TARGET_BYTES`] each. Pages are
//! zstd-compressed, except in flushes under [`COMPRESS_FROM_BYTES`]. Encoding and decoding are
//! plain CPU functions: callers run them with `spawn_blocking`, never on an actor's event loop.

use crate::error::{Error, Result};
use crate::protocol::compression::Codec;
use crate::protocol::records::{parse_records, BatchBuilder, BatchMeta};
use arrow::array::{
    Array, ArrayBuilder, ArrayRef, BinaryArray, BinaryBuilder, BooleanArray, Int16Array,
    Int32Array, Int64Array, Int8Array, ListArray, StringArray, StringBuilder, StructArray,
    TimestampMillisecondArray,
};
use arrow::buffer::OffsetBuffer;
use arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};
use arrow::record_batch::RecordBatch;
use bytes::Bytes;
use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ParquetRecordBatchReaderBuilder};
use parquet::arrow::{ArrowWriter, ProjectionMask};
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::properties::WriterProperties;
use parquet::schema::types::ColumnPath;
use std::sync::{Arc, OnceLock};

/// Cap on a single batch's decompressed size while re-reading our own accepted batches.
const MAX_BATCH_UNCOMPRESSED: usize = 1 << 30;

fn header_fields() -> Fields {
    Fields::from(vec![
        Field::new("key", DataType::Utf8, false),
        Field::new("value", DataType::Binary, true),
    ])
}

/// The segment schema.
pub fn schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            Arc::new(Schema::new(vec![
                Field::new("offset", DataType::Int64, false),
                Field::new(
                    "timestamp",
                    DataType::Timestamp(TimeUnit::Millisecond, None),
                    false,
                ),
                Field::new("timestamp_type", DataType::Int8, false),
                Field::new("key", DataType::Binary, true),
                Field::new("value", DataType::Binary, true),
                Field::new(
                    "headers",
                    DataType::List(Arc::new(Field::new(
                        "item",
                        DataType::Struct(header_fields()),
                        false,
                    ))),
                    false,
                ),
                Field::new("producer_id", DataType::Int64, false),
                Field::new("producer_epoch", DataType::Int16, false),
                Field::new("sequence", DataType::Int32, false),
                Field::new("batch_base_offset", DataType::Int64, false),
                Field::new("compression", DataType::Int8, false),
                Field::new("is_transactional", DataType::Boolean, false),
                Field::new("is_control", DataType::Boolean, false),
            ]))
        })
        .clone()
}

/// Columns a write-ahead object adds to the segment schema, constant within a row group: which
/// partition a row group belongs to (`topic_id` is 32 lowercase hex digits).
pub const WAL_EXTRA_COLUMNS: [&str; 3] = ["topic", "topic_id", "partition"];

/// The schema of write-ahead objects: the segment columns, then topic, topic id and partition.
pub fn wal_schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            let mut fields: Vec<Field> = schema().fields().iter().map(|f| (**f).clone()).collect();
            fields.push(Field::new("topic", DataType::Utf8, false));
            fields.push(Field::new("topic_id", DataType::Utf8, false));
            fields.push(Field::new("partition", DataType::Int32, false));
            Arc::new(Schema::new(fields))
        })
        .clone()
}

/// Key of the footer metadata entry listing a write-ahead object's partitions
/// (JSON array of [`WalPart`]), so recovery reads one footer, not the data.
pub const WAL_FOOTER_KEY: &str = "heraclitus.wal";

/// One partition's run of row groups inside a write-ahead object.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct WalPart {
    pub topic: String,
    /// 32 lowercase hex digits.
    pub topic_id: String,
    pub partition: i32,
    pub base: i64,
    pub last: i64,
    pub first_group: u32,
    pub groups: u32,
    /// Compressed bytes of its row groups (what a ranged read fetches).
    pub bytes: u64,
    pub max_timestamp: i64,
}

/// A Parquet segment ready to be written.
#[derive(Debug, Clone)]
pub struct EncodedSegment {
    pub data: Bytes,
    pub base_offset: i64,
    pub last_offset: i64,
    pub records: usize,
    pub min_timestamp: i64,
    pub max_timestamp: i64,
}

/// Row groups are cut at batch boundaries once they hold this many bytes of batches, so a
/// segment is encoded, merged and decoded a few MiB at a time, never all at once.
pub const ROW_GROUP_TARGET_BYTES: usize = 4 << 20;

/// Flushes smaller than this are written without page compression: compressing a few records
/// costs more time (compressor set-up per column) than it saves bytes, and it sits on the
/// produce latency path. Merging rewrites such segments compressed.
pub const COMPRESS_FROM_BYTES: usize = 64 * 1024;

/// Encode consecutive batches (base offsets already assigned) as one Parquet segment.
/// `decoded` is the batches' decompressed size (it decides whether pages are compressed: a
/// small compressed batch may decode to megabytes).
pub fn encode_segment(
    batches: &[Bytes],
    decoded: usize,
    zstd_level: i32,
) -> Result<EncodedSegment> {
    let total: usize = batches.iter().map(|b| b.len()).sum::<usize>().max(decoded);
    let level = (total >= COMPRESS_FROM_BYTES).then_some(zstd_level);
    let mut enc = SegmentEncoder::new(level)?;
    for b in batches {
        enc.push_batch(b)?;
    }
    enc.finish()
}

/// Column builders for the row group being filled.
#[derive(Default)]
struct Columns {
    offsets: Vec<i64>,
    timestamps: Vec<i64>,
    ts_types: Vec<i8>,
    keys: BinaryBuilder,
    values: BinaryBuilder,
    header_offsets: Vec<i32>,
    header_keys: StringBuilder,
    header_values: BinaryBuilder,
    pids: Vec<i64>,
    epochs: Vec<i16>,
    seqs: Vec<i32>,
    batch_bases: Vec<i64>,
    codecs: Vec<i8>,
    transactional: Vec<bool>,
    control: Vec<bool>,
    /// Batch bytes appended since the last row group.
    bytes: usize,
}

impl Columns {
    fn take_record_batch(&mut self, tag: Option<&WalTag>) -> Result<RecordBatch> {
        let mut c = std::mem::take(self);
        let rows = c.offsets.len();
        let mut header_offsets = std::mem::take(&mut c.header_offsets);
        if header_offsets.is_empty() {
            header_offsets.push(0);
        }
        let header_struct = StructArray::new(
            header_fields(),
            vec![
                Arc::new(c.header_keys.finish()) as ArrayRef,
                Arc::new(c.header_values.finish()) as ArrayRef,
            ],
            None,
        );
        let headers = ListArray::new(
            Arc::new(Field::new("item", DataType::Struct(header_fields()), false)),
            OffsetBuffer::new(header_offsets.into()),
            Arc::new(header_struct),
            None,
        );
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from(c.offsets)),
            Arc::new(TimestampMillisecondArray::from(c.timestamps)),
            Arc::new(Int8Array::from(c.ts_types)),
            Arc::new(c.keys.finish()),
            Arc::new(c.values.finish()),
            Arc::new(headers),
            Arc::new(Int64Array::from(c.pids)),
            Arc::new(Int16Array::from(c.epochs)),
            Arc::new(Int32Array::from(c.seqs)),
            Arc::new(Int64Array::from(c.batch_bases)),
            Arc::new(Int8Array::from(c.codecs)),
            Arc::new(BooleanArray::from(c.transactional)),
            Arc::new(BooleanArray::from(c.control)),
        ];
        let schema = match tag {
            None => schema(),
            Some(t) => {
                columns.push(Arc::new(StringArray::from(vec![t.topic.as_ref(); rows])));
                columns.push(Arc::new(StringArray::from(vec![t.topic_id.as_str(); rows])));
                columns.push(Arc::new(Int32Array::from(vec![t.partition; rows])));
                wal_schema()
            }
        };
        Ok(RecordBatch::try_new(schema, columns)?)
    }
}

/// The partition a write-ahead object's current row groups belong to.
#[derive(Debug, Clone)]
struct WalTag {
    topic: Arc<str>,
    topic_id: String,
    partition: i32,
}

/// Streams batches (or rows of other segments) into one Parquet segment, a row group at a
/// time. Offsets must be consecutive across everything pushed.
pub struct SegmentEncoder {
    writer: ArrowWriter<Vec<u8>>,
    cols: Columns,
    /// Arrow bytes of rows written by `push_rows` since the last row group.
    rows_bytes: usize,
    base: Option<i64>,
    next: i64,
    records: usize,
    min_ts: i64,
    max_ts: i64,
    /// Write-ahead objects only: the partition of the rows being pushed.
    tag: Option<WalTag>,
}

impl SegmentEncoder {
    /// A new segment; pages are zstd-compressed at `zstd_level` (`None`: not compressed).
    pub fn new(zstd_level: Option<i32>) -> Result<SegmentEncoder> {
        Self::with_schema(zstd_level, false)
    }

    fn with_schema(zstd_level: Option<i32>, wal: bool) -> Result<SegmentEncoder> {
        let compression = match zstd_level {
            None => Compression::UNCOMPRESSED,
            Some(l) => Compression::ZSTD(ZstdLevel::try_new(l.clamp(1, 22)).map_err(Error::from)?),
        };
        let col = |path: &[&str]| ColumnPath::new(path.iter().map(|s| s.to_string()).collect());
        let mut props = WriterProperties::builder()
            .set_compression(compression)
            // Row groups are cut by `ROW_GROUP_TARGET_BYTES`, at batch boundaries only.
            .set_max_row_group_row_count(Some(i32::MAX as usize))
            // Dictionaries only where values repeat (keys, header names): for payloads and
            // offsets they cost a hash per row (measured: ~17% of the broker's CPU producing
            // 100 B records) and rarely pay off.
            .set_dictionary_enabled(false)
            .set_column_dictionary_enabled(col(&["key"]), true)
            .set_column_dictionary_enabled(col(&["headers", "list", "item", "key"]), true);
        // Offsets and timestamps climb steadily: delta encoding stores them in a few bits.
        for name in ["offset", "timestamp", "batch_base_offset", "sequence"] {
            props = props.set_column_encoding(col(&[name]), Encoding::DELTA_BINARY_PACKED);
        }
        if wal {
            // A write-ahead object holds a row group (or more) per partition: column statistics
            // would multiply its footer, which recovery and every cold read parse.
            // …except the transaction flag: a start-up scan for transactions skips the row
            // groups whose maximum says none is there.
            props = props
                .set_statistics_enabled(parquet::file::properties::EnabledStatistics::None)
                .set_column_statistics_enabled(
                    col(&["is_transactional"]),
                    parquet::file::properties::EnabledStatistics::Chunk,
                )
                .set_column_dictionary_enabled(col(&["topic"]), true)
                .set_column_dictionary_enabled(col(&["topic_id"]), true);
        }
        let props = props.build();
        let schema = if wal { wal_schema() } else { schema() };
        Ok(SegmentEncoder {
            writer: ArrowWriter::try_new(Vec::with_capacity(1 << 16), schema, Some(props))?,
            cols: Columns::default(),
            rows_bytes: 0,
            base: None,
            next: 0,
            records: 0,
            min_ts: i64::MAX,
            max_ts: i64::MIN,
            tag: None,
        })
    }

    /// Offsets of produced batches are consecutive; rows copied from other objects only need
    /// to increase (a compacted topic's cleaned segments have gaps).
    fn check_offset(&mut self, offset: i64, gaps: bool) -> Result<()> {
        match self.base {
            None => self.base = Some(offset),
            Some(_) if offset != self.next && !(gaps && offset > self.next) => {
                return Err(Error::Internal(format!(
                    "segment offsets out of order: {} then {offset}",
                    self.next - 1
                )))
            }
            Some(_) => {}
        }
        self.next = offset + 1;
        Ok(())
    }

    fn note_timestamp(&mut self, ts: i64) {
        self.min_ts = self.min_ts.min(ts);
        self.max_ts = self.max_ts.max(ts);
    }

    /// Append one batch's records.
    pub fn push_batch(&mut self, batch: &Bytes) -> Result<()> {
        let (h, records) = parse_records(batch, MAX_BATCH_UNCOMPRESSED)?;
        let ts_type = if h.attributes & crate::protocol::records::ATTR_TIMESTAMP_LOG_APPEND != 0 {
            1i8
        } else {
            0i8
        };
        for r in records {
            self.cols.bytes += 16
                + r.key.as_ref().map_or(0, |k| k.len())
                + r.value.as_ref().map_or(0, |v| v.len())
                + r.headers
                    .iter()
                    .map(|(k, v)| k.len() + v.as_ref().map_or(0, |v| v.len()))
                    .sum::<usize>();
            let offset = h.base_offset + r.offset_delta as i64;
            self.check_offset(offset, false)?;
            // Log-append-time batches carry the broker time in max_timestamp.
            let ts = if ts_type == 1 {
                h.max_timestamp
            } else {
                h.base_timestamp.wrapping_add(r.timestamp_delta)
            };
            self.note_timestamp(ts);
            let c = &mut self.cols;
            if c.header_offsets.is_empty() {
                c.header_offsets.push(0);
            }
            c.offsets.push(offset);
            c.timestamps.push(ts);
            c.ts_types.push(ts_type);
            match &r.key {
                Some(k) => c.keys.append_value(k),
                None => c.keys.append_null(),
            }
            match &r.value {
                Some(v) => c.values.append_value(v),
                None => c.values.append_null(),
            }
            for (k, v) in &r.headers {
                c.header_keys.append_value(String::from_utf8_lossy(k));
                match v {
                    Some(v) => c.header_values.append_value(v),
                    None => c.header_values.append_null(),
                }
            }
            c.header_offsets.push(c.header_keys.len() as i32);
            c.pids.push(h.producer_id);
            c.epochs.push(h.producer_epoch);
            c.seqs.push(if h.base_sequence >= 0 {
                ((h.base_sequence as i64 + r.offset_delta as i64) % (i32::MAX as i64 + 1)) as i32
            } else {
                -1
            });
            c.batch_bases.push(h.base_offset);
            c.codecs.push((h.attributes & 0x7) as i8);
            c.transactional.push(h.is_transactional());
            c.control.push(h.is_control());
            self.records += 1;
        }
        // Row groups are sized by decoded bytes: that is what a reader decodes per group.
        if self.cols.bytes >= ROW_GROUP_TARGET_BYTES {
            self.flush_group()?;
        }
        Ok(())
    }

    /// Append rows read from another segment (merging), without re-encoding record batches.
    /// `rows` must hold whole batches.
    pub fn push_rows(&mut self, rows: &RecordBatch) -> Result<()> {
        if !self.cols.offsets.is_empty() {
            self.flush_group()?;
        }
        // Rows read from either kind of object, projected to the segment columns; columns
        // added to the schema later are filled in for rows of older objects.
        let rows = &RecordBatch::try_new(schema(), with_later_columns(rows))
            .map_err(|e| Error::Parquet(format!("segment schema differs: {e}")))?;
        let offsets = column::<Int64Array>(rows, "offset")?;
        let ts = column::<TimestampMillisecondArray>(rows, "timestamp")?;
        for i in 0..rows.num_rows() {
            self.check_offset(offsets.value(i), true)?;
            self.note_timestamp(ts.value(i));
        }
        self.records += rows.num_rows();
        self.writer.write(rows)?;
        // Cut by decoded (Arrow) size, like `push_batch`, not by the compressed size.
        self.rows_bytes += rows.get_array_memory_size();
        if self.rows_bytes >= ROW_GROUP_TARGET_BYTES {
            self.writer.flush()?;
            self.rows_bytes = 0;
        }
        Ok(())
    }

    fn flush_group(&mut self) -> Result<()> {
        if self.rows_bytes > 0 {
            self.writer.flush()?;
            self.rows_bytes = 0;
        }
        if self.cols.offsets.is_empty() {
            return Ok(());
        }
        let rb = self.cols.take_record_batch(self.tag.as_ref())?;
        self.writer.write(&rb)?;
        self.writer.flush()?;
        Ok(())
    }

    pub fn finish(mut self) -> Result<EncodedSegment> {
        self.flush_group()?;
        let Some(base) = self.base else {
            return Err(Error::Internal("cannot encode an empty segment".into()));
        };
        let data = self.writer.into_inner()?;
        Ok(EncodedSegment {
            data: Bytes::from(data),
            base_offset: base,
            last_offset: self.next - 1,
            records: self.records,
            min_timestamp: self.min_ts,
            max_timestamp: self.max_ts,
        })
    }
}

/// Encodes one write-ahead object: the batches of many partitions, each partition in its own
/// row group(s), and the list of partitions in the footer ([`WAL_FOOTER_KEY`]).
pub struct WalEncoder {
    enc: SegmentEncoder,
    parts: Vec<WalPart>,
    /// Row groups written before the current partition began.
    first_group: usize,
}

impl WalEncoder {
    pub fn new(zstd_level: Option<i32>) -> Result<WalEncoder> {
        Ok(WalEncoder {
            enc: SegmentEncoder::with_schema(zstd_level, true)?,
            parts: Vec::new(),
            first_group: 0,
        })
    }

    /// Append one partition's consecutive batches (base offsets assigned).
    pub fn push_partition(
        &mut self,
        tp: &crate::log::TopicPartition,
        batches: &[Bytes],
    ) -> Result<()> {
        let e = &mut self.enc;
        e.flush_group()?;
        self.first_group = e.writer.flushed_row_groups().len();
        e.tag = Some(WalTag {
            topic: tp.topic.clone(),
            topic_id: crate::storage::hex_id(&tp.topic_id),
            partition: tp.partition,
        });
        e.base = None;
        e.max_ts = i64::MIN;
        for b in batches {
            e.push_batch(b)?;
        }
        e.flush_group()?;
        let Some(base) = e.base else {
            return Err(Error::Internal(format!("{tp}: no batches to write")));
        };
        let groups = &e.writer.flushed_row_groups()[self.first_group..];
        self.parts.push(WalPart {
            topic: tp.topic.to_string(),
            topic_id: crate::storage::hex_id(&tp.topic_id),
            partition: tp.partition,
            base,
            last: e.next - 1,
            first_group: self.first_group as u32,
            groups: groups.len() as u32,
            bytes: groups
                .iter()
                .map(|g| g.compressed_size().max(0) as u64)
                .sum(),
            max_timestamp: e.max_ts,
        });
        Ok(())
    }

    /// The object's bytes and its partitions.
    pub fn finish(mut self) -> Result<(Bytes, Vec<WalPart>)> {
        let doc = serde_json::to_string(&self.parts).map_err(|e| Error::Internal(e.to_string()))?;
        self.enc
            .writer
            .append_key_value_metadata(parquet::file::metadata::KeyValue::new(
                WAL_FOOTER_KEY.to_string(),
                doc,
            ));
        let data = self.enc.writer.into_inner()?;
        Ok((Bytes::from(data), self.parts))
    }
}

fn column<'a, T: 'static>(rb: &'a RecordBatch, name: &str) -> Result<&'a T> {
    rb.column_by_name(name)
        .ok_or_else(|| Error::Parquet(format!("segment lacks column {name}")))?
        .as_any()
        .downcast_ref::<T>()
        .ok_or_else(|| Error::Parquet(format!("column {name} has the wrong type")))
}

/// Bytes of one stored object: either all of it, or one byte range (a row group's column
/// chunks, fetched with a ranged GET). Implements Parquet's `ChunkReader` with file offsets.
#[derive(Debug, Clone)]
pub struct ObjectBytes {
    /// File offset of `data[0]`.
    pub start: u64,
    pub data: Bytes,
    /// The whole object's length.
    pub len: u64,
}

impl ObjectBytes {
    pub fn whole(data: Bytes) -> ObjectBytes {
        ObjectBytes {
            start: 0,
            len: data.len() as u64,
            data,
        }
    }

    fn slice(&self, start: u64, length: Option<usize>) -> parquet::errors::Result<Bytes> {
        let from = start
            .checked_sub(self.start)
            .map(|f| f as usize)
            .filter(|&f| f <= self.data.len());
        let Some(from) = from else {
            return Err(parquet::errors::ParquetError::General(format!(
                "offset {start} is outside the fetched range {}+{}",
                self.start,
                self.data.len()
            )));
        };
        let to = length.map_or(self.data.len(), |l| from.saturating_add(l));
        if to > self.data.len() {
            return Err(parquet::errors::ParquetError::EOF(format!(
                "{length:?} bytes at {start} are outside the fetched range"
            )));
        }
        Ok(self.data.slice(from..to))
    }
}

impl parquet::file::reader::Length for ObjectBytes {
    fn len(&self) -> u64 {
        self.len
    }
}

impl parquet::file::reader::ChunkReader for ObjectBytes {
    type T = bytes::buf::Reader<Bytes>;

    fn get_read(&self, start: u64) -> parquet::errors::Result<Self::T> {
        use bytes::Buf;
        Ok(self.slice(start, None)?.reader())
    }

    fn get_bytes(&self, start: u64, length: usize) -> parquet::errors::Result<Bytes> {
        self.slice(start, Some(length))
    }
}

/// The Parquet trailer: footer length (u32 LE) and the magic `PAR1`.
const FOOTER_TRAILER: usize = 8;

/// A stored object's parsed footer (segment or write-ahead object): locates row groups and
/// their byte ranges without holding the data.
#[derive(Debug, Clone)]
pub struct ObjectIndex {
    meta: ArrowReaderMetadata,
    /// The object's length.
    pub len: u64,
}

impl ObjectIndex {
    /// Parse the footer of an object held whole.
    pub fn from_bytes(data: &Bytes) -> Result<ObjectIndex> {
        Ok(ObjectIndex {
            meta: ArrowReaderMetadata::load(data, Default::default())?,
            len: data.len() as u64,
        })
    }

    /// Parse the footer from the object's last bytes (`tail`, of an object of `len` bytes).
    /// `Ok(Err(n))`: the footer needs the last `n` bytes.
    pub fn from_tail(tail: &Bytes, len: u64) -> Result<std::result::Result<ObjectIndex, u64>> {
        if tail.len() < FOOTER_TRAILER || tail.len() as u64 > len {
            return Err(Error::Parquet(
                "object too short for a Parquet footer".into(),
            ));
        }
        let trailer = &tail[tail.len() - FOOTER_TRAILER..];
        if &trailer[4..] != b"PAR1" {
            return Err(Error::Parquet(
                "not a Parquet object (no PAR1 trailer)".into(),
            ));
        }
        let footer = u32::from_le_bytes([trailer[0], trailer[1], trailer[2], trailer[3]]) as usize;
        let need = footer + FOOTER_TRAILER;
        if need as u64 > len {
            return Err(Error::Parquet(
                "Parquet footer longer than the object".into(),
            ));
        }
        if need > tail.len() {
            return Ok(Err(need as u64));
        }
        let buf = &tail[tail.len() - need..tail.len() - FOOTER_TRAILER];
        let meta = parquet::file::metadata::ParquetMetaDataReader::decode_metadata(buf)?;
        let meta = ArrowReaderMetadata::try_new(Arc::new(meta), Default::default())?;
        Ok(Ok(ObjectIndex { meta, len }))
    }

    pub fn groups(&self) -> usize {
        self.meta.metadata().num_row_groups()
    }

    pub fn group_rows(&self, group: usize) -> i64 {
        self.meta
            .metadata()
            .row_groups()
            .get(group)
            .map_or(0, |g| g.num_rows().max(0))
    }

    /// Bytes the parsed footer holds in memory (cache accounting).
    pub fn memory_size(&self) -> usize {
        self.meta.metadata().memory_size()
    }

    /// The byte range of a row group's column chunks.
    pub fn group_range(&self, group: usize) -> Result<std::ops::Range<u64>> {
        let g = self
            .meta
            .metadata()
            .row_groups()
            .get(group)
            .ok_or_else(|| Error::Parquet(format!("no row group {group}")))?;
        let mut start = u64::MAX;
        let mut end = 0u64;
        for c in g.columns() {
            let (s, l) = c.byte_range();
            start = start.min(s);
            end = end.max(s.saturating_add(l));
        }
        if start >= end || end > self.len {
            return Err(Error::Parquet(format!(
                "row group {group} has no valid byte range"
            )));
        }
        Ok(start..end)
    }

    /// The partitions of a write-ahead object (`None` for a segment).
    pub fn wal_parts(&self) -> Result<Option<Vec<WalPart>>> {
        let kv = self.meta.metadata().file_metadata().key_value_metadata();
        let Some(v) = kv
            .and_then(|kv| kv.iter().find(|e| e.key == WAL_FOOTER_KEY))
            .and_then(|e| e.value.as_ref())
        else {
            return Ok(None);
        };
        serde_json::from_str(v)
            .map(Some)
            .map_err(|e| Error::Parquet(format!("bad write-ahead footer: {e}")))
    }

    /// The smallest offset of a row group, from the column statistics (segments of the table
    /// layout have them; write-ahead objects do not).
    fn group_min_offset(&self, group: usize) -> Option<i64> {
        let g = self.meta.metadata().row_groups().get(group)?;
        match g.column(0).statistics()? {
            parquet::file::statistics::Statistics::Int64(s) => s.min_opt().copied(),
            _ => None,
        }
    }

    /// The first offset of each of `groups` row groups from `first`, whose first offset is
    /// `base`: from the offset statistics where every group has them (a compacted topic's
    /// segments have gaps), else by counting rows (offsets are consecutive within a
    /// partition's run of row groups).
    pub fn group_starts(&self, first: usize, groups: usize, base: i64) -> Vec<i64> {
        let stats: Option<Vec<i64>> = (first..first + groups)
            .map(|g| self.group_min_offset(g))
            .collect();
        if let Some(s) = stats {
            if s.first().is_none_or(|&f| f >= base) && s.windows(2).all(|w| w[0] < w[1]) {
                return s;
            }
        }
        let mut at = base;
        (first..first + groups)
            .map(|g| {
                let s = at;
                at += self.group_rows(g);
                s
            })
            .collect()
    }

    /// The segment columns of one row group, read from `bytes` (which must hold its range).
    pub fn read_group(&self, bytes: &ObjectBytes, group: usize) -> Result<RecordBatch> {
        self.read_group_columns(bytes, group, &SEGMENT_COLUMNS)
    }

    /// Some columns of one row group (a compaction's key scan reads two).
    pub fn read_group_columns(
        &self,
        bytes: &ObjectBytes,
        group: usize,
        names: &[&str],
    ) -> Result<RecordBatch> {
        let rows = self.group_rows(group).max(1) as usize;
        let descr = self.meta.metadata().file_metadata().schema_descr();
        // Columns added to the schema later are absent from older objects.
        let present: Vec<&str> = names
            .iter()
            .copied()
            .filter(|n| descr.columns().iter().any(|c| c.path().parts()[0] == *n))
            .collect();
        let mask = ProjectionMask::columns(descr, present);
        let reader =
            ParquetRecordBatchReaderBuilder::new_with_metadata(bytes.clone(), self.meta.clone())
                .with_row_groups(vec![group])
                .with_projection(mask)
                .with_batch_size(rows)
                .build()?;
        let mut parts = Vec::new();
        for rb in reader {
            parts.push(rb?);
        }
        match parts.len() {
            0 => Err(Error::Parquet(format!("row group {group} is empty"))),
            1 => Ok(parts
                .pop()
                .unwrap_or_else(|| RecordBatch::new_empty(schema()))),
            _ => Ok(arrow::compute::concat_batches(&parts[0].schema(), &parts)?),
        }
    }

    /// Decode one row group into servable batches (see [`decode_rows`]).
    pub fn decode_group(&self, bytes: &ObjectBytes, group: usize) -> Result<Vec<StoredBatch>> {
        let mut out = Vec::new();
        let mut cur = None;
        decode_rows(&self.read_group(bytes, group)?, &mut cur, &mut out)?;
        finish_batch(cur, &mut out)?;
        Ok(out)
    }

    /// The idempotent-producer fields of every batch of one row group, read from the five
    /// small columns only (keys and values are never decoded). Batches without a producer id
    /// are skipped.
    pub fn producer_batches(
        &self,
        bytes: &ObjectBytes,
        group: usize,
    ) -> Result<Vec<ProducerBatch>> {
        let names = [
            "offset",
            "producer_id",
            "producer_epoch",
            "sequence",
            "batch_base_offset",
        ];
        let rb = self.read_group_columns(bytes, group, &names)?;
        let offsets = column::<Int64Array>(&rb, "offset")?;
        let pids = column::<Int64Array>(&rb, "producer_id")?;
        let epochs = column::<Int16Array>(&rb, "producer_epoch")?;
        let seqs = column::<Int32Array>(&rb, "sequence")?;
        let bases = column::<Int64Array>(&rb, "batch_base_offset")?;
        let mut out: Vec<ProducerBatch> = Vec::new();
        for i in 0..rb.num_rows() {
            if pids.value(i) < 0 || seqs.value(i) < 0 {
                continue;
            }
            match out.last_mut() {
                Some(b) if b.base == bases.value(i) => {
                    b.last = offsets.value(i);
                    b.last_seq = seqs.value(i);
                }
                _ => out.push(ProducerBatch {
                    producer_id: pids.value(i),
                    producer_epoch: epochs.value(i),
                    first_seq: seqs.value(i),
                    last_seq: seqs.value(i),
                    base: bases.value(i),
                    last: offsets.value(i),
                }),
            }
        }
        Ok(out)
    }
}

/// Rows of any segment as the current segment schema has them: columns added to the schema
/// later, absent from older objects, get the value that object's data had — `compression` 0
/// (none recorded: served uncompressed), `is_transactional` and `is_control` false (there
/// were no transactions before them).
pub fn with_later_columns(rows: &RecordBatch) -> Vec<ArrayRef> {
    let n = rows.num_rows();
    schema()
        .fields()
        .iter()
        .map(|f| match rows.column_by_name(f.name()) {
            Some(c) => c.clone(),
            None if f.data_type() == &DataType::Boolean => {
                Arc::new(BooleanArray::from(vec![false; n])) as ArrayRef
            }
            None => Arc::new(Int8Array::from(vec![0i8; n])) as ArrayRef,
        })
        .collect()
}

/// A transaction event of a stored batch (the partition's transaction state is rebuilt from
/// them at start-up).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxnEvent {
    /// A transactional data batch of `producer_id` starting at `base`.
    Data { producer_id: i64, base: i64 },
    /// A COMMIT (`commit`) or ABORT marker of `producer_id` at `offset`.
    Marker {
        producer_id: i64,
        producer_epoch: i16,
        offset: i64,
        commit: bool,
    },
}

impl ObjectIndex {
    /// May row group `group` hold transactional rows? False for objects written before the
    /// `is_transactional` column and for groups whose statistics say none is there.
    pub fn may_hold_transactions(&self, group: usize) -> bool {
        let Some(g) = self.meta.metadata().row_groups().get(group) else {
            return false;
        };
        let Some(c) = g
            .columns()
            .iter()
            .find(|c| c.column_path().parts() == ["is_transactional"])
        else {
            return false;
        };
        match c.statistics() {
            Some(parquet::file::statistics::Statistics::Boolean(s)) => {
                s.max_opt().copied().unwrap_or(true)
            }
            _ => true,
        }
    }

    /// The transaction events of one row group, in offset order, from its small columns
    /// (values are never read).
    pub fn txn_events(&self, bytes: &ObjectBytes, group: usize) -> Result<Vec<TxnEvent>> {
        if !self.may_hold_transactions(group) {
            return Ok(Vec::new());
        }
        let names = [
            "offset",
            "key",
            "producer_id",
            "producer_epoch",
            "batch_base_offset",
            "is_transactional",
            "is_control",
        ];
        let rb = self.read_group_columns(bytes, group, &names)?;
        let offsets = column::<Int64Array>(&rb, "offset")?;
        let keys = column::<BinaryArray>(&rb, "key")?;
        let pids = column::<Int64Array>(&rb, "producer_id")?;
        let epochs = column::<Int16Array>(&rb, "producer_epoch")?;
        let bases = column::<Int64Array>(&rb, "batch_base_offset")?;
        let txn = column::<BooleanArray>(&rb, "is_transactional")?;
        let control = column::<BooleanArray>(&rb, "is_control")?;
        let mut out = Vec::new();
        let mut last_base = None;
        for i in 0..rb.num_rows() {
            if !txn.value(i) {
                continue;
            }
            let (pid, offset) = (pids.value(i), offsets.value(i));
            if control.value(i) {
                let key = (!keys.is_null(i)).then(|| keys.value(i));
                if let Some(commit) = crate::protocol::records::marker_kind(key) {
                    out.push(TxnEvent::Marker {
                        producer_id: pid,
                        producer_epoch: epochs.value(i),
                        offset,
                        commit,
                    });
                }
            } else if last_base != Some(bases.value(i)) {
                last_base = Some(bases.value(i));
                out.push(TxnEvent::Data {
                    producer_id: pid,
                    base: offset,
                });
            }
        }
        Ok(out)
    }
}

/// The columns of the segment schema (what readers of either kind of object project).
pub const SEGMENT_COLUMNS: [&str; 13] = [
    "offset",
    "timestamp",
    "timestamp_type",
    "key",
    "value",
    "headers",
    "producer_id",
    "producer_epoch",
    "sequence",
    "batch_base_offset",
    "compression",
    "is_transactional",
    "is_control",
];

/// A segment held whole in memory, with the first offset of each row group: tests, benches
/// and whole-object tools use it; the broker reads through [`ObjectIndex`] and ranged GETs.
#[derive(Debug, Clone)]
pub struct SegmentIndex {
    pub data: ObjectBytes,
    pub object: ObjectIndex,
    /// First offset of each row group, ascending.
    pub group_starts: Vec<i64>,
    /// Offset after the last record.
    pub end: i64,
}

impl SegmentIndex {
    /// Parse the footer of a segment whose first offset is `base`.
    pub fn load(data: Bytes, base: i64) -> Result<SegmentIndex> {
        let object = ObjectIndex::from_bytes(&data)?;
        let group_starts = object.group_starts(0, object.groups(), base);
        let end = base
            + (0..object.groups())
                .map(|g| object.group_rows(g))
                .sum::<i64>();
        Ok(SegmentIndex {
            data: ObjectBytes::whole(data),
            object,
            group_starts,
            end,
        })
    }

    /// The row group holding `offset`, if the segment holds it.
    pub fn group_of(&self, offset: i64) -> Option<usize> {
        group_of(&self.group_starts, self.end, offset)
    }

    pub fn read_group(&self, group: usize) -> Result<RecordBatch> {
        self.object.read_group(&self.data, group)
    }

    pub fn decode_group(&self, group: usize) -> Result<Vec<StoredBatch>> {
        self.object.decode_group(&self.data, group)
    }

    pub fn groups(&self) -> usize {
        self.group_starts.len()
    }

    pub fn producer_batches(&self) -> Result<Vec<ProducerBatch>> {
        let mut out = Vec::new();
        for g in 0..self.groups() {
            out.extend(self.object.producer_batches(&self.data, g)?);
        }
        Ok(out)
    }

    pub fn txn_events(&self) -> Result<Vec<TxnEvent>> {
        let mut out = Vec::new();
        for g in 0..self.groups() {
            out.extend(self.object.txn_events(&self.data, g)?);
        }
        Ok(out)
    }
}

/// Index into `starts` (first offsets of consecutive row groups ending before `end`) of the
/// row group holding `offset`.
pub fn group_of(starts: &[i64], end: i64, offset: i64) -> Option<usize> {
    if offset >= end || starts.is_empty() {
        return None;
    }
    Some(starts.partition_point(|&s| s <= offset).saturating_sub(1))
}

/// Producer fields of one stored batch (idempotence state rebuilt at start-up).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerBatch {
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub first_seq: i32,
    pub last_seq: i32,
    pub base: i64,
    pub last: i64,
}

/// Read a segment's rows one row group at a time.
pub fn for_each_row_group(data: Bytes, mut f: impl FnMut(RecordBatch) -> Result<()>) -> Result<()> {
    let index = SegmentIndex::load(data, 0)?;
    for g in 0..index.groups() {
        f(index.read_group(g)?)?;
    }
    Ok(())
}

/// One record batch rebuilt from a segment, ready to be served.
#[derive(Debug, Clone)]
pub struct StoredBatch {
    pub base_offset: i64,
    pub last_offset: i64,
    pub max_timestamp: i64,
    pub bytes: Bytes,
}

/// Decode a whole segment and re-encode its rows as record batches with their original
/// boundaries, a row group at a time.
pub fn decode_segment(data: Bytes) -> Result<Vec<StoredBatch>> {
    let mut out: Vec<StoredBatch> = Vec::new();
    let mut cur: Option<Building> = None;
    for_each_row_group(data, |rb| decode_rows(&rb, &mut cur, &mut out))?;
    finish_batch(cur, &mut out)?;
    Ok(out)
}

/// Batches rebuilt from a segment are served compressed with the codec they were stored with
/// (the producer's, or the topic's `compression.type`), so a consumer of old data receives
/// about the bytes a Kafka broker would send. Batches of segments written before the codec was
/// recorded are served uncompressed, except those that decode to more than this: a small,
/// highly compressed batch (32 KB of zstd holding 32 MiB) would otherwise be served as one
/// huge batch — "at least one batch" ignores max_bytes. Those are gzip-compressed, the one
/// codec every Kafka client decodes.
pub const COLD_COMPRESS_FROM: usize = 1 << 20;

/// Compression level of rebuilt batches: the fastest (they are built on the read path).
const COLD_LEVEL: i32 = 1;

/// A batch being rebuilt, and the codec it is served with.
struct Building {
    b: BatchBuilder,
    codec: Codec,
}

fn finish_batch(cur: Option<Building>, out: &mut Vec<StoredBatch>) -> Result<()> {
    if let Some(Building { b, codec }) = cur {
        let (base, last, max_ts) = (b.base_offset(), b.last_offset(), b.max_timestamp());
        let codec = match codec {
            Codec::None if b.len() > COLD_COMPRESS_FROM => Codec::Gzip,
            c => c,
        };
        out.push(StoredBatch {
            base_offset: base,
            last_offset: last,
            max_timestamp: max_ts,
            bytes: Bytes::from(b.finish(codec, COLD_LEVEL)?),
        });
    }
    Ok(())
}

/// Append rows to record batches: `cur` is the batch being built (rows of one batch are
/// contiguous, carried across calls), finished batches go to `out`. Each record is written
/// straight into its batch.
fn decode_rows(
    rb: &RecordBatch,
    cur: &mut Option<Building>,
    out: &mut Vec<StoredBatch>,
) -> Result<()> {
    {
        let offsets = column::<Int64Array>(rb, "offset")?;
        let ts = column::<TimestampMillisecondArray>(rb, "timestamp")?;
        let ts_type = column::<Int8Array>(rb, "timestamp_type")?;
        let keys = column::<BinaryArray>(rb, "key")?;
        let values = column::<BinaryArray>(rb, "value")?;
        let headers = column::<ListArray>(rb, "headers")?;
        let pids = column::<Int64Array>(rb, "producer_id")?;
        let epochs = column::<Int16Array>(rb, "producer_epoch")?;
        let seqs = column::<Int32Array>(rb, "sequence")?;
        let bases = column::<Int64Array>(rb, "batch_base_offset")?;
        let codecs = column::<Int8Array>(rb, "compression").ok();
        let txn_flags = column::<BooleanArray>(rb, "is_transactional").ok();
        let control_flags = column::<BooleanArray>(rb, "is_control").ok();
        let hstruct = headers
            .values()
            .as_any()
            .downcast_ref::<StructArray>()
            .ok_or_else(|| Error::Parquet("headers are not a struct list".into()))?;
        let hkeys = hstruct
            .column(0)
            .as_any()
            .downcast_ref::<StringArray>()
            .ok_or_else(|| Error::Parquet("header keys are not strings".into()))?;
        let hvals = hstruct
            .column(1)
            .as_any()
            .downcast_ref::<BinaryArray>()
            .ok_or_else(|| Error::Parquet("header values are not binary".into()))?;
        let hoffs = headers.value_offsets();
        fn opt(a: &BinaryArray, i: usize) -> Option<&[u8]> {
            (!a.is_null(i)).then(|| a.value(i))
        }
        // Rows per batch are contiguous; size the first builder of each run from the row group.
        let avg_row = values.value_data().len() / rb.num_rows().max(1) + 16;
        for i in 0..rb.num_rows() {
            let base = bases.value(i);
            if cur.as_ref().is_none_or(|b| b.b.base_offset() != base) {
                finish_batch(cur.take(), out)?;
                let rows = bases.values()[i..]
                    .iter()
                    .take_while(|&&b| b == base)
                    .count();
                let codec = codecs
                    .and_then(|c| Codec::from_attributes(c.value(i) as i16).ok())
                    .unwrap_or(Codec::None);
                *cur = Some(Building {
                    b: BatchBuilder::new(
                        BatchMeta {
                            base_offset: base,
                            timestamp_type: ts_type.value(i),
                            producer_id: pids.value(i),
                            producer_epoch: epochs.value(i),
                            base_sequence: seqs.value(i),
                            partition_leader_epoch: 0,
                            transactional: txn_flags.is_some_and(|c| c.value(i)),
                            control: control_flags.is_some_and(|c| c.value(i)),
                        },
                        ts.value(i),
                        rows * avg_row,
                    ),
                    codec,
                });
            }
            let (hs, he) = (hoffs[i] as usize, hoffs[i + 1] as usize);
            if let Some(Building { b, .. }) = cur.as_mut() {
                b.push(
                    offsets.value(i),
                    ts.value(i),
                    opt(keys, i),
                    opt(values, i),
                    (hs..he).map(|j| (hkeys.value(j).as_bytes(), opt(hvals, j))),
                );
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::records::{self, encode_batch, set_base_offset};

    fn batch_at(base: i64, n: usize, codec: Codec) -> Bytes {
        let recs = records::tests::sample_records(n, 1_000);
        let mut b = encode_batch(&records::tests::meta(), &recs, codec, 1).unwrap();
        set_base_offset(&mut b, base);
        Bytes::from(b)
    }

    #[test]
    fn segment_round_trip_keeps_boundaries_nulls_and_headers() {
        let batches = vec![batch_at(100, 5, Codec::None), batch_at(105, 7, Codec::Lz4)];
        let seg = encode_segment(&batches, 0, 1).unwrap();
        assert_eq!(
            (seg.base_offset, seg.last_offset, seg.records),
            (100, 111, 12)
        );
        let back = decode_segment(seg.data).unwrap();
        assert_eq!(back.len(), 2);
        assert_eq!((back[0].base_offset, back[0].last_offset), (100, 104));
        assert_eq!((back[1].base_offset, back[1].last_offset), (105, 111));
        let (_, orig) = parse_records(&batches[1], 1 << 20).unwrap();
        let (h, got) = parse_records(&back[1].bytes, 1 << 20).unwrap();
        assert_eq!(h.base_offset, 105);
        assert_eq!(
            orig, got,
            "keys, tombstones, empty values and duplicate headers survive"
        );
    }

    /// Transactional batches and markers keep their attribute bits through Parquet (columns
    /// `is_transactional`, `is_control`), and the transaction events are read back from the
    /// small columns; rows of objects without those columns read as non-transactional.
    #[test]
    fn transactional_batches_and_markers_round_trip() {
        let recs = records::tests::sample_records(3, 1_000);
        let meta = BatchMeta {
            producer_id: 42,
            producer_epoch: 1,
            base_sequence: 0,
            transactional: true,
            ..records::tests::meta()
        };
        let mut data = encode_batch(&meta, &recs, Codec::Zstd, 1).unwrap();
        set_base_offset(&mut data, 10);
        let mut marker = records::end_txn_marker(42, 1, false, 5, 2_000)
            .unwrap()
            .to_vec();
        set_base_offset(&mut marker, 13);
        let batches = vec![
            Bytes::from(data),
            Bytes::from(marker),
            batch_at(14, 2, Codec::None),
        ];
        let seg = encode_segment(&batches, 0, 1).unwrap();
        let back = decode_segment(seg.data.clone()).unwrap();
        let headers: Vec<_> = back
            .iter()
            .map(|b| crate::protocol::records::BatchHeader::parse(&b.bytes).unwrap())
            .collect();
        assert!(headers[0].is_transactional() && !headers[0].is_control());
        assert!(headers[1].is_transactional() && headers[1].is_control());
        assert!(!headers[2].is_transactional() && !headers[2].is_control());
        assert_eq!(headers[1].base_sequence, -1);
        assert_eq!(
            crate::protocol::records::control_batch_kind(&back[1].bytes),
            Some(false)
        );
        assert_eq!(
            back[1].bytes, batches[1],
            "the marker is served byte for byte"
        );
        let index = SegmentIndex::load(seg.data, 10).unwrap();
        assert_eq!(
            index.txn_events().unwrap(),
            vec![
                TxnEvent::Data {
                    producer_id: 42,
                    base: 10
                },
                TxnEvent::Marker {
                    producer_id: 42,
                    producer_epoch: 1,
                    offset: 13,
                    commit: false
                }
            ]
        );
        // Without transactions, the statistics let a scan skip the row group.
        let plain = encode_segment(&[batch_at(0, 2, Codec::None)], 0, 1).unwrap();
        let plain = SegmentIndex::load(plain.data, 0).unwrap();
        assert!(!plain.object.may_hold_transactions(0));
        // Rows of an object written before the flags (projected without them) are filled in.
        let rows = plain.read_group(0).unwrap();
        let old = rows.project(&[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]).unwrap();
        let mut enc = SegmentEncoder::new(None).unwrap();
        enc.push_rows(&old).unwrap();
        let again = decode_segment(enc.finish().unwrap().data).unwrap();
        assert_eq!(again.len(), 1);
    }

    #[test]
    fn non_consecutive_batches_are_refused() {
        let batches = vec![batch_at(0, 2, Codec::None), batch_at(5, 2, Codec::None)];
        assert!(encode_segment(&batches, 0, 1).is_err());
    }

    #[test]
    fn garbage_segment_is_an_error() {
        assert!(decode_segment(Bytes::from_static(b"not parquet")).is_err());
    }

    fn producer_batch(base: i64, n: usize, pid: i64, seq: i32) -> Bytes {
        let recs = records::tests::sample_records(n, 1_000);
        let mut m = records::tests::meta();
        m.producer_id = pid;
        m.producer_epoch = 2;
        m.base_sequence = seq;
        let mut b = encode_batch(&m, &recs, Codec::None, 1).unwrap();
        set_base_offset(&mut b, base);
        Bytes::from(b)
    }

    #[test]
    fn producer_batches_come_from_the_small_columns() {
        let batches = vec![
            producer_batch(10, 3, 7, 0),
            producer_batch(13, 2, -1, -1),
            // Sequences wrap after i32::MAX.
            producer_batch(15, 3, 8, i32::MAX - 1),
        ];
        let seg = encode_segment(&batches, 0, 1).unwrap();
        let index = SegmentIndex::load(seg.data, 10).unwrap();
        assert_eq!((index.group_starts.clone(), index.end), (vec![10], 18));
        let got = index.producer_batches().unwrap();
        let want = vec![
            ProducerBatch {
                producer_id: 7,
                producer_epoch: 2,
                first_seq: 0,
                last_seq: 2,
                base: 10,
                last: 12,
            },
            ProducerBatch {
                producer_id: 8,
                producer_epoch: 2,
                first_seq: i32::MAX - 1,
                last_seq: 0,
                base: 15,
                last: 17,
            },
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn large_flushes_are_cut_into_row_groups_of_whole_batches() {
        // 12 batches of ~1 MiB: row groups close at 4 MiB, on batch boundaries.
        let batches: Vec<Bytes> = (0..12)
            .map(|k| {
                let recs: Vec<records::OwnedRecord> = (0..1000)
                    .map(|i| records::OwnedRecord {
                        offset: i,
                        timestamp: 5,
                        key: None,
                        value: Some(Bytes::from(vec![(i % 200) as u8; 1000])),
                        headers: vec![],
                    })
                    .collect();
                let mut b = encode_batch(&records::tests::meta(), &recs, Codec::None, 1).unwrap();
                set_base_offset(&mut b, k * 1000);
                Bytes::from(b)
            })
            .collect();
        let seg = encode_segment(&batches, 0, 1).unwrap();
        let index = SegmentIndex::load(seg.data.clone(), 0).unwrap();
        assert_eq!(index.group_starts, vec![0, 5000, 10000]);
        assert_eq!(index.group_of(4999), Some(0));
        assert_eq!(index.group_of(5000), Some(1));
        assert_eq!(index.group_of(12000), None);
        let g1 = index.decode_group(1).unwrap();
        assert_eq!(g1.len(), 5);
        assert_eq!((g1[0].base_offset, g1[4].last_offset), (5000, 9999));
        // Merging copies rows (and keeps row groups bounded); the result decodes the same.
        let mut merged = SegmentEncoder::new(Some(1)).unwrap();
        for_each_row_group(seg.data.clone(), |rows| merged.push_rows(&rows)).unwrap();
        let merged = merged.finish().unwrap();
        assert_eq!(
            (merged.base_offset, merged.last_offset, merged.records),
            (0, 11999, 12000)
        );
        let a = decode_segment(seg.data).unwrap();
        let b = decode_segment(merged.data).unwrap();
        assert_eq!(a.len(), b.len());
        assert!(a.iter().zip(&b).all(|(x, y)| x.bytes == y.bytes));
    }

    /// A write-ahead object holds each partition in its own row groups, lists them in its
    /// footer, and a reader of one partition fetches only that partition's byte range.
    #[test]
    fn write_ahead_object_keeps_partitions_apart() {
        let a = crate::log::TopicPartition::with_id("orders", [1; 16], 0);
        let b = crate::log::TopicPartition::with_id("orders", [1; 16], 3);
        let mut enc = WalEncoder::new(Some(1)).unwrap();
        enc.push_partition(
            &a,
            &[batch_at(0, 5, Codec::None), batch_at(5, 2, Codec::Lz4)],
        )
        .unwrap();
        enc.push_partition(&b, &[batch_at(40, 3, Codec::Zstd)])
            .unwrap();
        let (data, parts) = enc.finish().unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(
            (parts[0].base, parts[0].last, parts[0].first_group),
            (0, 6, 0)
        );
        assert_eq!(
            (parts[1].base, parts[1].last, parts[1].first_group),
            (40, 42, 1)
        );
        assert_eq!(parts[1].topic_id, crate::storage::hex_id(&[1; 16]));
        // The footer alone (the object's tail) locates everything.
        let tail = data.slice(data.len() - 8192.min(data.len())..);
        let index = ObjectIndex::from_tail(&tail, data.len() as u64)
            .unwrap()
            .unwrap();
        assert_eq!(index.wal_parts().unwrap().unwrap(), parts);
        assert_eq!(index.groups(), 2);
        let range = index.group_range(1).unwrap();
        let only_b = ObjectBytes {
            start: range.start,
            data: data.slice(range.start as usize..range.end as usize),
            len: data.len() as u64,
        };
        let got = index.decode_group(&only_b, 1).unwrap();
        assert_eq!((got[0].base_offset, got[0].last_offset), (40, 42));
        assert!(index.decode_group(&only_b, 0).is_err(), "not fetched");
        // Table-layout segments carry no partition list.
        let seg = encode_segment(&[batch_at(0, 2, Codec::None)], 0, 1).unwrap();
        let seg_index = ObjectIndex::from_bytes(&seg.data).unwrap();
        assert_eq!(seg_index.wal_parts().unwrap(), None);
        // Rows of a write-ahead part merge into a segment (the compactor).
        let mut merged = SegmentEncoder::new(Some(1)).unwrap();
        let whole = ObjectBytes::whole(data.clone());
        merged
            .push_rows(&index.read_group(&whole, 0).unwrap())
            .unwrap();
        let merged = merged.finish().unwrap();
        assert_eq!((merged.base_offset, merged.last_offset), (0, 6));
        // A footer larger than the tail asks for more.
        let short = data.slice(data.len() - 8..);
        assert!(matches!(
            ObjectIndex::from_tail(&short, data.len() as u64),
            Ok(Err(n)) if n > 8
        ));
        assert!(ObjectIndex::from_tail(&Bytes::from_static(b"12345678"), 8).is_err());
    }
}
