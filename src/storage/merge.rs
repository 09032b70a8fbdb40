//! Compaction and merging: a partition's write-ahead parts (read by the broker's compactor from
//! whole objects, [`encode_wal_run`]) or small segments ([`merge_segments`]) become one segment
//! of the table layout (`data/topic=…/topic_id=…/partition=…/{base}-{last}.parquet`, large row
//! groups, zstd).
//!
//! The merged object is written first (with `PutMode::Create`); the leader then swaps its index
//! and, after a grace period for reads planned with the old entries, releases its parts of
//! write-ahead objects (an object is deleted once no partition needs it) and deletes merged
//! segments. A crash between any two steps leaves inputs beside the segment that contains
//! them; recovery drops the contained segments (`broker::resolve_overlaps`) and does not
//! accept write-ahead parts a segment covers (`wal::plan_recovery`), so no offset is lost or
//! duplicated and no orphan survives the next start.

use super::cache::SegmentCache;
use super::segment::{EncodedSegment, ObjectBytes, ObjectIndex, SegmentEncoder, SEGMENT_COLUMNS};
use super::writer::{now_ms, SegmentMeta};
use super::{segment_path, Storage};
use crate::error::{Error, Result};
use crate::log::TopicPartition;

/// Encode one partition's write-ahead parts (`run`, consecutive) from objects held whole in
/// memory into one segment (CPU: call it on the blocking pool).
pub fn encode_wal_run(
    objects: &std::collections::HashMap<String, (ObjectBytes, ObjectIndex)>,
    run: &[SegmentMeta],
    zstd_level: i32,
) -> Result<EncodedSegment> {
    let mut enc = SegmentEncoder::new(Some(zstd_level))?;
    for s in run {
        let (Some((bytes, index)), Some(w)) = (objects.get(&s.path), s.wal) else {
            return Err(Error::Internal(format!(
                "{} is not a loaded write-ahead part",
                s.path
            )));
        };
        for g in w.first_group..w.first_group + w.groups {
            enc.push_rows(&index.read_group(bytes, g as usize)?)?;
        }
    }
    enc.finish()
}

/// Read `inputs` (consecutive index entries), write them as one segment, return its entry.
pub async fn merge_segments(
    storage: &Storage,
    cache: &SegmentCache,
    tp: &TopicPartition,
    inputs: &[SegmentMeta],
    zstd_level: i32,
) -> Result<SegmentMeta> {
    let (Some(first), Some(last)) = (inputs.first(), inputs.last()) else {
        return Err(Error::Internal("nothing to merge".into()));
    };
    // Inputs are read and copied a row group at a time into the merged segment (rows are not
    // re-encoded as record batches), so memory holds one row group of input at a time.
    let mut enc = SegmentEncoder::new(Some(zstd_level))?;
    for s in inputs {
        enc = cache
            .for_each_rows(storage, s, &SEGMENT_COLUMNS, enc, |enc, rows| {
                enc.push_rows(&rows)
            })
            .await?;
    }
    let enc = tokio::task::spawn_blocking(move || enc.finish())
        .await
        .map_err(|e| Error::Internal(e.to_string()))??;
    // Dense inputs give exactly their range; cleaned ones (compacted topics) may have gaps at
    // either end.
    if enc.base_offset < first.base || enc.last_offset > last.last {
        return Err(Error::Internal(format!(
            "merge produced {}-{}, expected {}-{}",
            enc.base_offset, enc.last_offset, first.base, last.last
        )));
    }
    let path = segment_path(tp, first.base, last.last);
    let size = enc.data.len() as u64;
    super::crash_point("compact.before_put");
    match storage.put_create(&path, enc.data.clone()).await {
        // An earlier run of this very merge wrote its output and then failed before the index
        // swap (or its leader lost the partition): no index entry refers to that object (an
        // indexed segment of this exact range would have excluded these inputs), so it is
        // replaced rather than blocking this range's merges for good.
        Err(Error::AlreadyExists(_)) => storage.put_overwrite(&path, enc.data).await?,
        r => r?,
    }
    super::crash_point("compact.after_put");
    Ok(SegmentMeta {
        base: first.base,
        last: last.last,
        path,
        size,
        max_timestamp: Some(enc.max_timestamp),
        written_ms: now_ms(),
        wal: None,
    })
}
