//! Log cleaning for `cleanup.policy=compact` topics: the newest record of each key is kept,
//! older ones are dropped with their offsets (gaps, as in Kafka), tombstones (null values) are
//! kept for `delete.retention.ms` after their timestamp and then dropped.
//!
//! Two passes over consecutive table-layout segments, a row group at a time: the first reads
//! only the `offset` and `key` columns into a map from key hash to newest offset (bounded by
//! [`MAX_KEYS`]: the run is cut after the segment that fills it), the second copies the rows
//! to keep into one new segment covering the same offset range (`cleanup` generation in its
//! name, see [`super::cleaned_segment_path`]). The newest record of the run is always kept, so
//! a cleaned segment is never empty and the partition's next offset is unchanged. The leader
//! swaps the index and deletes the inputs afterwards, exactly like a merge — a crash in
//! between leaves both, and recovery keeps the newest generation.
//!
//! Transactions: the leader cleans only below the last stable offset; records of aborted
//! transactions are dropped (as Kafka's cleaner does) and never count as a key's newest value;
//! transaction markers are kept (their offsets bound the aborted list of read_committed
//! fetches).

use super::cache::SegmentCache;
use super::segment::{SegmentEncoder, SEGMENT_COLUMNS};
use super::writer::{now_ms, SegmentMeta};
use super::{cleaned_segment_path, Storage};
use crate::error::{Error, Result};
use crate::log::transactions::Aborted;
use crate::log::TopicPartition;
use arrow::array::{Array, BinaryArray, BooleanArray, Int64Array, TimestampMillisecondArray};
use arrow::record_batch::RecordBatch;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};

/// Most distinct keys one cleaning run maps (about 40 bytes each).
pub const MAX_KEYS: usize = 2_000_000;

/// A key's identity in the map: two independent 64-bit hashes.
type KeyHash = (u64, u64);

fn key_hash(k: &[u8]) -> KeyHash {
    let mut a = std::collections::hash_map::DefaultHasher::new();
    k.hash(&mut a);
    let mut b = std::collections::hash_map::DefaultHasher::new();
    0xC0FFEEu32.hash(&mut b);
    k.hash(&mut b);
    (a.finish(), b.finish())
}

/// Newest offset of every key seen so far, the run's newest offset, and the aborted
/// transactions of the partition (their records are dropped).
#[derive(Default)]
struct KeyMap {
    newest: HashMap<KeyHash, i64>,
    last: i64,
    /// Aborted transactions by producer id: (first offset, marker offset), ascending.
    aborted: HashMap<i64, Vec<(i64, i64)>>,
}

/// What a row is to the cleaner.
#[derive(PartialEq)]
enum Row {
    Data,
    Marker,
    Aborted,
}

/// Classifies rows by their transaction columns (absent from objects written before them:
/// plain data).
struct Classifier<'a> {
    pids: Option<&'a Int64Array>,
    txn: Option<&'a BooleanArray>,
    control: Option<&'a BooleanArray>,
}

impl<'a> Classifier<'a> {
    fn new(rows: &'a RecordBatch) -> Classifier<'a> {
        Classifier {
            pids: col::<Int64Array>(rows, "producer_id").ok(),
            txn: col::<BooleanArray>(rows, "is_transactional").ok(),
            control: col::<BooleanArray>(rows, "is_control").ok(),
        }
    }

    fn row(&self, i: usize, offset: i64, aborted: &HashMap<i64, Vec<(i64, i64)>>) -> Row {
        if self.control.is_some_and(|c| c.value(i)) {
            return Row::Marker;
        }
        if let (Some(t), Some(p)) = (self.txn, self.pids) {
            if t.value(i) {
                if let Some(ranges) = aborted.get(&p.value(i)) {
                    // The last range starting at or before the offset.
                    let k = ranges.partition_point(|&(first, _)| first <= offset);
                    if k > 0 && offset < ranges[k - 1].1 {
                        return Row::Aborted;
                    }
                }
            }
        }
        Row::Data
    }
}

/// Columns the first pass reads.
const KEY_COLUMNS: [&str; 5] = [
    "offset",
    "key",
    "producer_id",
    "is_transactional",
    "is_control",
];

fn scan(map: &mut KeyMap, rows: RecordBatch) -> Result<()> {
    let offsets = col::<Int64Array>(&rows, "offset")?;
    let keys = col::<BinaryArray>(&rows, "key")?;
    let kind = Classifier::new(&rows);
    for i in 0..rows.num_rows() {
        let off = offsets.value(i);
        map.last = map.last.max(off);
        if !keys.is_null(i) && kind.row(i, off, &map.aborted) == Row::Data {
            map.newest.insert(key_hash(keys.value(i)), off);
        }
    }
    Ok(())
}

/// The second pass's state: what to keep, and where it goes.
struct Copy {
    map: KeyMap,
    /// Tombstones with a timestamp before this are dropped.
    tombstone_cutoff: i64,
    enc: SegmentEncoder,
    /// Oldest timestamp of a tombstone kept (the leader cleans again once it expires).
    kept_tombstone: Option<i64>,
    dropped: u64,
}

fn copy(st: &mut Copy, rows: RecordBatch) -> Result<()> {
    let offsets = col::<Int64Array>(&rows, "offset")?;
    let keys = col::<BinaryArray>(&rows, "key")?;
    let values = col::<BinaryArray>(&rows, "value")?;
    let ts = col::<TimestampMillisecondArray>(&rows, "timestamp")?;
    let kind = Classifier::new(&rows);
    let keep: BooleanArray = (0..rows.num_rows())
        .map(|i| {
            let off = offsets.value(i);
            if off == st.map.last {
                return Some(true);
            }
            match kind.row(i, off, &st.map.aborted) {
                Row::Marker => return Some(true),
                Row::Aborted => return Some(false),
                Row::Data => {}
            }
            if keys.is_null(i) {
                // Written before the topic became compacted: nothing to compare with.
                return Some(true);
            }
            let newest = st.map.newest.get(&key_hash(keys.value(i))) == Some(&off);
            let keep = newest && !(values.is_null(i) && ts.value(i) < st.tombstone_cutoff);
            if keep && values.is_null(i) {
                st.kept_tombstone = Some(
                    st.kept_tombstone
                        .map_or(ts.value(i), |t| t.min(ts.value(i))),
                );
            }
            Some(keep)
        })
        .collect();
    let kept = arrow::compute::filter_record_batch(&rows, &keep)?;
    st.dropped += (rows.num_rows() - kept.num_rows()) as u64;
    if kept.num_rows() > 0 {
        st.enc.push_rows(&kept)?;
    }
    Ok(())
}

fn col<'a, T: 'static>(rb: &'a RecordBatch, name: &str) -> Result<&'a T> {
    rb.column_by_name(name)
        .and_then(|c| c.as_any().downcast_ref::<T>())
        .ok_or_else(|| Error::Parquet(format!("segment column {name} missing or mistyped")))
}

/// What a cleaning run produced.
#[derive(Debug)]
pub struct Cleaned {
    /// The inputs actually cleaned (a prefix of those given when the key map filled up).
    pub inputs: Vec<SegmentMeta>,
    pub output: SegmentMeta,
    /// Oldest timestamp of a tombstone the output still holds.
    pub kept_tombstone: Option<i64>,
    pub dropped: u64,
}

/// Clean `inputs` (consecutive table-layout segments of one partition, below its last
/// stable offset); `aborted` lists the partition's aborted transactions.
pub async fn clean_segments(
    storage: &Storage,
    cache: &SegmentCache,
    tp: &TopicPartition,
    mut inputs: Vec<SegmentMeta>,
    zstd_level: i32,
    delete_retention_ms: i64,
    aborted: Vec<Aborted>,
) -> Result<Cleaned> {
    let mut by_producer: HashMap<i64, Vec<(i64, i64)>> = HashMap::new();
    for a in aborted {
        by_producer
            .entry(a.producer_id)
            .or_default()
            .push((a.first_offset, a.last_offset));
    }
    for ranges in by_producer.values_mut() {
        ranges.sort_unstable();
    }
    let mut map = KeyMap {
        last: -1,
        aborted: by_producer,
        ..Default::default()
    };
    for (i, s) in inputs.iter().enumerate() {
        map = cache
            .for_each_rows(storage, s, &KEY_COLUMNS, map, scan)
            .await?;
        if map.newest.len() >= MAX_KEYS {
            inputs.truncate(i + 1);
            break;
        }
    }
    let (Some(first), Some(last)) = (inputs.first().cloned(), inputs.last().cloned()) else {
        return Err(Error::Internal("nothing to clean".into()));
    };
    let mut st = Copy {
        map,
        tombstone_cutoff: now_ms().saturating_sub(delete_retention_ms),
        enc: SegmentEncoder::new(Some(zstd_level))?,
        kept_tombstone: None,
        dropped: 0,
    };
    for s in &inputs {
        st = cache
            .for_each_rows(storage, s, &SEGMENT_COLUMNS, st, copy)
            .await?;
    }
    let (kept_tombstone, dropped) = (st.kept_tombstone, st.dropped);
    let enc = tokio::task::spawn_blocking(move || st.enc.finish())
        .await
        .map_err(|e| Error::Internal(e.to_string()))??;
    if enc.base_offset < first.base || enc.last_offset > last.last {
        return Err(Error::Internal(format!(
            "cleaning produced {}-{}, outside {}-{}",
            enc.base_offset, enc.last_offset, first.base, last.last
        )));
    }
    let path = cleaned_segment_path(tp, first.base, last.last, now_ms());
    let size = enc.data.len() as u64;
    super::crash_point("compact.before_put");
    storage.put_create(&path, enc.data).await?;
    super::crash_point("compact.after_put");
    Ok(Cleaned {
        inputs,
        output: SegmentMeta {
            base: first.base,
            last: last.last,
            path,
            size,
            max_timestamp: Some(enc.max_timestamp),
            written_ms: now_ms(),
            wal: None,
        },
        kept_tombstone,
        dropped,
    })
}
