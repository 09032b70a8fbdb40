//! Segment merging: many small segments of a partition become one larger segment.
//!
//! The merged object is written first (with `PutMode::Create`); the leader then swaps its index
//! and deletes the inputs. A crash between the two leaves the inputs beside the merged segment
//! that contains them; recovery drops the contained ones (`broker::resolve_overlaps`), so no
//! offset is lost or duplicated.

use super::segment::{for_each_row_group, SegmentEncoder};
use super::writer::{now_ms, SegmentMeta};
use super::{segment_path, Storage};
use crate::error::{Error, Result};
use crate::log::TopicPartition;

/// Read `inputs` (consecutive segments), write them as one segment, return its index entry.
pub async fn merge_segments(
    storage: &Storage,
    tp: &TopicPartition,
    inputs: &[SegmentMeta],
    zstd_level: i32,
) -> Result<SegmentMeta> {
    let (Some(first), Some(last)) = (inputs.first(), inputs.last()) else {
        return Err(Error::Internal("nothing to merge".into()));
    };
    // Inputs are fetched and copied row group by row group into the merged segment (rows are
    // not re-encoded as record batches), so memory holds one compressed input at a time.
    let mut enc = SegmentEncoder::new(Some(zstd_level))?;
    for s in inputs {
        let data = storage.get(&s.path).await?;
        enc = tokio::task::spawn_blocking(move || -> Result<SegmentEncoder> {
            for_each_row_group(data, |rows| enc.push_rows(&rows))?;
            Ok(enc)
        })
        .await
        .map_err(|e| Error::Internal(e.to_string()))??;
    }
    let enc = tokio::task::spawn_blocking(move || enc.finish())
        .await
        .map_err(|e| Error::Internal(e.to_string()))??;
    if enc.base_offset != first.base || enc.last_offset != last.last {
        return Err(Error::Internal(format!(
            "merge produced {}-{}, expected {}-{}",
            enc.base_offset, enc.last_offset, first.base, last.last
        )));
    }
    let path = segment_path(tp, first.base, last.last);
    let size = enc.data.len() as u64;
    storage.put_create(&path, enc.data).await?;
    Ok(SegmentMeta {
        base: first.base,
        last: last.last,
        path,
        size,
        max_timestamp: Some(enc.max_timestamp),
        written_ms: now_ms(),
    })
}
