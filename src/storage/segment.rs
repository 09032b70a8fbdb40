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
//!
//! Pages are zstd-compressed. Encoding and decoding are plain CPU functions: callers run them
//! with `spawn_blocking`, never on an actor's event loop.

use crate::error::{Error, Result};
use crate::protocol::compression::Codec;
use crate::protocol::records::{encode_batch, parse_records, BatchMeta, OwnedRecord};
use arrow::array::{
    Array, ArrayRef, BinaryArray, BinaryBuilder, Int16Array, Int32Array, Int64Array, Int8Array,
    ListArray, StringArray, StructArray, TimestampMillisecondArray,
};
use arrow::buffer::OffsetBuffer;
use arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};
use arrow::record_batch::RecordBatch;
use bytes::Bytes;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
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
            ]))
        })
        .clone()
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

/// Encode consecutive batches (base offsets already assigned) as one Parquet segment.
pub fn encode_segment(batches: &[Bytes], zstd_level: i32) -> Result<EncodedSegment> {
    let mut offsets = Vec::new();
    let mut timestamps = Vec::new();
    let mut ts_types = Vec::new();
    let mut keys = BinaryBuilder::new();
    let mut values = BinaryBuilder::new();
    let mut header_offsets: Vec<i32> = vec![0];
    let mut header_keys: Vec<String> = Vec::new();
    let mut header_values = BinaryBuilder::new();
    let mut pids = Vec::new();
    let mut epochs = Vec::new();
    let mut seqs = Vec::new();
    let mut batch_bases = Vec::new();
    for b in batches {
        let (h, records) = parse_records(b, MAX_BATCH_UNCOMPRESSED)?;
        let ts_type = if h.attributes & crate::protocol::records::ATTR_TIMESTAMP_LOG_APPEND != 0 {
            1i8
        } else {
            0i8
        };
        for r in records {
            offsets.push(h.base_offset + r.offset_delta as i64);
            // Log-append-time batches carry the broker time in max_timestamp.
            timestamps.push(if ts_type == 1 {
                h.max_timestamp
            } else {
                h.base_timestamp.wrapping_add(r.timestamp_delta)
            });
            ts_types.push(ts_type);
            match &r.key {
                Some(k) => keys.append_value(k),
                None => keys.append_null(),
            }
            match &r.value {
                Some(v) => values.append_value(v),
                None => values.append_null(),
            }
            for (k, v) in &r.headers {
                header_keys.push(String::from_utf8_lossy(k).into_owned());
                match v {
                    Some(v) => header_values.append_value(v),
                    None => header_values.append_null(),
                }
            }
            header_offsets.push(header_keys.len() as i32);
            pids.push(h.producer_id);
            epochs.push(h.producer_epoch);
            seqs.push(if h.base_sequence >= 0 {
                ((h.base_sequence as i64 + r.offset_delta as i64) % (i32::MAX as i64 + 1)) as i32
            } else {
                -1
            });
            batch_bases.push(h.base_offset);
        }
    }
    if offsets.is_empty() {
        return Err(Error::Internal("cannot encode an empty segment".into()));
    }
    for w in offsets.windows(2) {
        if w[1] != w[0] + 1 {
            return Err(Error::Internal(format!(
                "segment offsets not consecutive: {} then {}",
                w[0], w[1]
            )));
        }
    }
    let header_struct = StructArray::new(
        header_fields(),
        vec![
            Arc::new(StringArray::from(header_keys)) as ArrayRef,
            Arc::new(header_values.finish()) as ArrayRef,
        ],
        None,
    );
    let headers = ListArray::new(
        Arc::new(Field::new("item", DataType::Struct(header_fields()), false)),
        OffsetBuffer::new(header_offsets.into()),
        Arc::new(header_struct),
        None,
    );
    let min_ts = *timestamps.iter().min().unwrap_or(&-1);
    let max_ts = *timestamps.iter().max().unwrap_or(&-1);
    let base = offsets[0];
    let last = *offsets.last().unwrap_or(&base);
    let n = offsets.len();
    let batch = RecordBatch::try_new(
        schema(),
        vec![
            Arc::new(Int64Array::from(offsets)),
            Arc::new(TimestampMillisecondArray::from(timestamps)),
            Arc::new(Int8Array::from(ts_types)),
            Arc::new(keys.finish()),
            Arc::new(values.finish()),
            Arc::new(headers),
            Arc::new(Int64Array::from(pids)),
            Arc::new(Int16Array::from(epochs)),
            Arc::new(Int32Array::from(seqs)),
            Arc::new(Int64Array::from(batch_bases)),
        ],
    )?;
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(
            ZstdLevel::try_new(zstd_level.clamp(1, 22)).map_err(Error::from)?,
        ))
        .set_max_row_group_row_count(Some(1 << 20))
        .build();
    let mut writer = ArrowWriter::try_new(Vec::with_capacity(1 << 16), schema(), Some(props))?;
    writer.write(&batch)?;
    let data = writer.into_inner()?;
    Ok(EncodedSegment {
        data: Bytes::from(data),
        base_offset: base,
        last_offset: last,
        records: n,
        min_timestamp: min_ts,
        max_timestamp: max_ts,
    })
}

/// One record batch rebuilt from a segment, ready to be served.
#[derive(Debug, Clone)]
pub struct StoredBatch {
    pub base_offset: i64,
    pub last_offset: i64,
    pub max_timestamp: i64,
    pub bytes: Bytes,
}

/// Decode a segment and re-encode its rows as record batches with their original boundaries.
pub fn decode_segment(data: Bytes) -> Result<Vec<StoredBatch>> {
    let reader = ParquetRecordBatchReaderBuilder::try_new(data)?
        .with_batch_size(64 * 1024)
        .build()?;
    let mut out: Vec<StoredBatch> = Vec::new();
    let mut cur: Option<(BatchMeta, Vec<OwnedRecord>)> = None;
    let flush = |cur: &mut Option<(BatchMeta, Vec<OwnedRecord>)>,
                 out: &mut Vec<StoredBatch>|
     -> Result<()> {
        if let Some((meta, recs)) = cur.take() {
            let bytes = encode_batch(&meta, &recs, Codec::None, 0)?;
            out.push(StoredBatch {
                base_offset: meta.base_offset,
                last_offset: recs.last().map_or(meta.base_offset, |r| r.offset),
                max_timestamp: recs.iter().map(|r| r.timestamp).max().unwrap_or(-1),
                bytes: Bytes::from(bytes),
            });
        }
        Ok(())
    };
    for rb in reader {
        let rb = rb?;
        let col = |name: &str| -> Result<&ArrayRef> {
            rb.column_by_name(name)
                .ok_or_else(|| Error::Parquet(format!("segment lacks column {name}")))
        };
        fn cast<'a, T: 'static>(a: &'a ArrayRef, name: &str) -> Result<&'a T> {
            a.as_any()
                .downcast_ref::<T>()
                .ok_or_else(|| Error::Parquet(format!("column {name} has the wrong type")))
        }
        let offsets = cast::<Int64Array>(col("offset")?, "offset")?;
        let ts = cast::<TimestampMillisecondArray>(col("timestamp")?, "timestamp")?;
        let ts_type = cast::<Int8Array>(col("timestamp_type")?, "timestamp_type")?;
        let keys = cast::<BinaryArray>(col("key")?, "key")?;
        let values = cast::<BinaryArray>(col("value")?, "value")?;
        let headers = cast::<ListArray>(col("headers")?, "headers")?;
        let pids = cast::<Int64Array>(col("producer_id")?, "producer_id")?;
        let epochs = cast::<Int16Array>(col("producer_epoch")?, "producer_epoch")?;
        let seqs = cast::<Int32Array>(col("sequence")?, "sequence")?;
        let bases = cast::<Int64Array>(col("batch_base_offset")?, "batch_base_offset")?;
        let hstruct = headers
            .values()
            .as_any()
            .downcast_ref::<StructArray>()
            .ok_or_else(|| Error::Parquet("headers are not a struct list".into()))?;
        let hkeys = cast::<StringArray>(hstruct.column(0), "headers.key")?;
        let hvals = cast::<BinaryArray>(hstruct.column(1), "headers.value")?;
        let hoffs = headers.value_offsets();
        for i in 0..rb.num_rows() {
            let base = bases.value(i);
            let same = cur.as_ref().is_some_and(|(m, _)| m.base_offset == base);
            if !same {
                flush(&mut cur, &mut out)?;
                cur = Some((
                    BatchMeta {
                        base_offset: base,
                        timestamp_type: ts_type.value(i),
                        producer_id: pids.value(i),
                        producer_epoch: epochs.value(i),
                        base_sequence: seqs.value(i),
                        partition_leader_epoch: 0,
                    },
                    Vec::new(),
                ));
            }
            let opt = |a: &BinaryArray, i: usize| {
                if a.is_null(i) {
                    None
                } else {
                    Some(Bytes::copy_from_slice(a.value(i)))
                }
            };
            let (hs, he) = (hoffs[i] as usize, hoffs[i + 1] as usize);
            let hdrs = (hs..he)
                .map(|j| {
                    (
                        Bytes::copy_from_slice(hkeys.value(j).as_bytes()),
                        opt(hvals, j),
                    )
                })
                .collect();
            if let Some((_, recs)) = cur.as_mut() {
                recs.push(OwnedRecord {
                    offset: offsets.value(i),
                    timestamp: ts.value(i),
                    key: opt(keys, i),
                    value: opt(values, i),
                    headers: hdrs,
                });
            }
        }
    }
    flush(&mut cur, &mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::records::{self, set_base_offset};

    fn batch_at(base: i64, n: usize, codec: Codec) -> Bytes {
        let recs = records::tests::sample_records(n, 1_000);
        let mut b = encode_batch(&records::tests::meta(), &recs, codec, 1).unwrap();
        set_base_offset(&mut b, base);
        Bytes::from(b)
    }

    #[test]
    fn segment_round_trip_keeps_boundaries_nulls_and_headers() {
        let batches = vec![batch_at(100, 5, Codec::None), batch_at(105, 7, Codec::Lz4)];
        let seg = encode_segment(&batches, 1).unwrap();
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

    #[test]
    fn non_consecutive_batches_are_refused() {
        let batches = vec![batch_at(0, 2, Codec::None), batch_at(5, 2, Codec::None)];
        assert!(encode_segment(&batches, 1).is_err());
    }

    #[test]
    fn garbage_segment_is_an_error() {
        assert!(decode_segment(Bytes::from_static(b"not parquet")).is_err());
    }
}
