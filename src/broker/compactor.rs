//! The compactor: rewrites write-ahead objects into the table layout, object-major.
//!
//! Every `merge_interval_ms` it takes the oldest write-ahead objects written at least
//! `compaction_delay_ms` ago (up to `storage.compaction_batch_bytes` at a time), GETs each
//! **whole, once** — a partition's part is never fetched on its own, so GETs follow the number
//! of objects, not objects × partitions — and writes, per partition, one table segment holding
//! its consecutive parts (`storage::merge::encode_wal_run`, on the blocking pool). Each
//! segment is handed to the partition's leader ([`Compacted`]), which swaps its index and later
//! releases the parts; the `WalIndex` deletes an object once no part of it is live. A batch at a
//! time, one segment at a time: memory is bounded by the batch budget plus one segment.
//!
//! Crash safety: a segment written but not swapped is covered by recovery (the parts it
//! contains are not accepted, the objects become orphans and are deleted); a swap without the
//! release is the same; a segment whose swap was refused (retention removed a part meanwhile)
//! is deleted at once.

use super::Broker;
use crate::error::{Error, Result};
use crate::log::leader::Compacted;
use crate::storage::merge::encode_wal_run;
use crate::storage::segment::{ObjectBytes, ObjectIndex};
use crate::storage::wal::partition_runs;
use crate::storage::writer::{now_ms, SegmentMeta};
use crate::storage::{crash_point, segment_path};
use std::collections::HashMap;
use std::sync::Arc;

impl Broker {
    /// Compact every write-ahead object that is due, a batch at a time.
    pub async fn compact_due(&self) {
        loop {
            let cutoff = now_ms() - self.settings.compaction_delay_ms() as i64;
            let budget = self.settings.storage.compaction_batch_bytes;
            let due = match self.env.wal.lock() {
                Ok(w) => w.due(cutoff, budget),
                Err(_) => return,
            };
            if due.is_empty() {
                return;
            }
            match self.compact_batch(&due).await {
                Ok(0) => return, // no progress: try again next interval
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!("compaction of write-ahead objects failed: {e}");
                    return;
                }
            }
        }
    }

    /// Compact one batch of objects; returns how many partitions were swapped.
    async fn compact_batch(&self, due: &[crate::storage::wal::DueObject]) -> Result<usize> {
        let mut objects: HashMap<String, (ObjectBytes, ObjectIndex)> = HashMap::new();
        for o in due {
            if o.parts.is_empty() {
                continue;
            }
            let data = self.storage.get(&o.path).await?;
            let index = tokio::task::spawn_blocking({
                let data = data.clone();
                move || ObjectIndex::from_bytes(&data)
            })
            .await
            .map_err(|e| Error::Internal(e.to_string()))??;
            objects.insert(o.path.clone(), (ObjectBytes::whole(data), index));
        }
        let objects = Arc::new(objects);
        let level = self.settings.performance.compression_level;
        let mut swapped = 0;
        for (tp, run) in partition_runs(due) {
            let (Some(first), Some(last)) = (run.first(), run.last()) else {
                continue;
            };
            let Some(part) = self
                .topic_by_id(&tp.topic_id)
                .and_then(|t| t.partition(tp.partition).cloned())
            else {
                // Deleted meanwhile (the deletion releases its parts), or a topic this broker
                // does not know (kept, not served): not offered again until a restart.
                if let Ok(mut w) = self.env.wal.lock() {
                    for s in &run {
                        w.mark_compacted(&s.path, &tp, s.base);
                    }
                }
                continue;
            };
            let path = segment_path(&tp, first.base, last.last);
            let enc = tokio::task::spawn_blocking({
                let (objects, run) = (objects.clone(), run.clone());
                move || encode_wal_run(&objects, &run, level)
            })
            .await
            .map_err(|e| Error::Internal(e.to_string()))??;
            if enc.base_offset != first.base || enc.last_offset != last.last {
                return Err(Error::Internal(format!(
                    "{tp}: compaction produced {}-{}, expected {}-{}",
                    enc.base_offset, enc.last_offset, first.base, last.last
                )));
            }
            let output = SegmentMeta {
                base: first.base,
                last: last.last,
                path: path.clone(),
                size: enc.data.len() as u64,
                max_timestamp: Some(enc.max_timestamp),
                written_ms: now_ms(),
                wal: None,
            };
            crash_point("compact.before_put");
            match self.storage.put_create(&path, enc.data).await {
                Ok(()) => {}
                Err(Error::AlreadyExists(_)) => {
                    // Not expected (swapped parts are not offered again, and recovery covers
                    // a segment left by a crash): leave both for recovery to resolve.
                    tracing::warn!("{tp}: {path} exists already; compaction of it skipped");
                    continue;
                }
                Err(e) => return Err(e),
            }
            crash_point("compact.after_put");
            let n = run.len();
            let inputs = run.clone();
            let accepted = part
                .addr
                .send(Compacted {
                    inputs: run,
                    output,
                })
                .await
                .unwrap_or(false);
            if accepted {
                if let Ok(mut w) = self.env.wal.lock() {
                    for s in &inputs {
                        w.mark_compacted(&s.path, &tp, s.base);
                    }
                }
                swapped += 1;
                self.metrics.compactions.inc();
                tracing::debug!("{tp}: compacted {n} write-ahead part(s) into {path}");
            } else {
                self.cache.remove(&path);
                self.storage.delete(&path).await?;
            }
        }
        Ok(swapped)
    }
}
