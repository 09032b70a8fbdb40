//! A bounded cache of cold segments, shared by all fetches, at row-group granularity.
//!
//! Two levels, each with a byte budget and oldest-inserted-first eviction:
//! - object footers: the parsed Parquet footer of a segment or write-ahead object (one GET of
//!   the object's tail), so row groups are located by offset without reading data (a quarter
//!   of the budget);
//! - decoded row groups: the record batches of one row group, re-encoded for serving.
//!
//! A read fetches only the row groups it serves, each with a ranged GET (a few MiB each, see
//! [`super::segment::ROW_GROUP_TARGET_BYTES`]): a consumer of one partition reads its own row
//! groups of a write-ahead object, never the other partitions'. The Parquet decode runs off
//! the event loop (`spawn_blocking`).

use super::segment::{group_of, ObjectBytes, ObjectIndex, ProducerBatch, StoredBatch, TxnEvent};
use super::writer::SegmentMeta;
use super::Storage;
use crate::error::{Error, Result};
use arrow::record_batch::RecordBatch;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

pub type Batches = Arc<Vec<StoredBatch>>;

/// A byte-budgeted map evicting the oldest insertions first.
#[derive(Debug)]
struct Budgeted<V> {
    budget: usize,
    map: HashMap<String, (V, usize)>,
    order: VecDeque<String>,
    bytes: usize,
}

impl<V: Clone> Budgeted<V> {
    fn new(budget: usize) -> Self {
        Budgeted {
            budget,
            map: HashMap::new(),
            order: VecDeque::new(),
            bytes: 0,
        }
    }

    fn get(&self, key: &str) -> Option<V> {
        self.map.get(key).map(|(v, _)| v.clone())
    }

    fn insert(&mut self, key: String, v: V, size: usize) {
        if self.map.contains_key(&key) {
            return;
        }
        self.map.insert(key.clone(), (v, size));
        self.order.push_back(key);
        self.bytes += size;
        while self.bytes > self.budget && self.order.len() > 1 {
            if let Some(old) = self.order.pop_front() {
                if let Some((_, s)) = self.map.remove(&old) {
                    self.bytes -= s;
                }
            }
        }
    }

    /// Remove every key that `matches`.
    fn remove_where(&mut self, matches: impl Fn(&str) -> bool) {
        let bytes = &mut self.bytes;
        self.map.retain(|k, (_, s)| {
            if matches(k) {
                *bytes -= *s;
                false
            } else {
                true
            }
        });
        self.order.retain(|k| !matches(k));
    }
}

#[derive(Debug)]
pub struct SegmentCache {
    indexes: Mutex<Budgeted<Arc<ObjectIndex>>>,
    groups: Mutex<Budgeted<Batches>>,
}

fn group_key(path: &str, group: usize) -> String {
    format!("{path}#{group}")
}

/// Bytes read from an object's end to find its footer in one GET (most footers fit).
const FOOTER_GUESS: u64 = 64 * 1024;

/// The size of the object holding `seg`.
fn object_size(seg: &SegmentMeta) -> u64 {
    seg.wal.map_or(seg.size, |w| w.object_size)
}

/// The row groups of `seg` in its object (all of them for a segment) and their first offsets.
fn span(index: &ObjectIndex, seg: &SegmentMeta) -> Result<(usize, Vec<i64>)> {
    let (first, n) = match seg.wal {
        Some(w) => (w.first_group as usize, w.groups as usize),
        None => (0, index.groups()),
    };
    if first + n > index.groups() || n == 0 {
        return Err(Error::Storage(format!(
            "{} has no row groups {first}..{} for offsets {}..={}",
            seg.path,
            first + n,
            seg.base,
            seg.last
        )));
    }
    let starts = index.group_starts(first, n, seg.base);
    let rows: i64 = (first..first + n).map(|g| index.group_rows(g)).sum();
    // Dense (rows fill the range) or, for a compacted topic's cleaned segment, fewer rows
    // whose offsets (from the statistics) lie inside the range.
    let dense = rows == seg.last - seg.base + 1 && seg.base == starts[0];
    let gapped = rows < seg.last - seg.base + 1
        && starts[0] >= seg.base
        && starts.last().is_some_and(|&s| s <= seg.last);
    if !(dense || gapped) {
        return Err(Error::Storage(format!(
            "{} holds {rows} records from offset {} for this partition, the index says {}..={}",
            seg.path, starts[0], seg.base, seg.last
        )));
    }
    Ok((first, starts))
}

impl SegmentCache {
    pub fn new(budget: usize) -> SegmentCache {
        SegmentCache {
            indexes: Mutex::new(Budgeted::new(budget / 4)),
            groups: Mutex::new(Budgeted::new(budget - budget / 4)),
        }
    }

    /// Bytes currently held (decoded row groups and parsed footers).
    pub fn bytes(&self) -> usize {
        let g = self.groups.lock().map(|i| i.bytes).unwrap_or(0);
        let i = self.indexes.lock().map(|i| i.bytes).unwrap_or(0);
        g + i
    }

    /// The parsed footer of an object of `len` bytes: one ranged GET of its last bytes (two
    /// when the footer is larger).
    pub async fn object(
        &self,
        storage: &Storage,
        path: &str,
        len: u64,
    ) -> Result<Arc<ObjectIndex>> {
        if let Some(i) = self.indexes.lock().ok().and_then(|c| c.get(path)) {
            return Ok(i);
        }
        let tail = storage
            .get_range(path, len.saturating_sub(FOOTER_GUESS)..len)
            .await?;
        let parsed = match ObjectIndex::from_tail(&tail, len)? {
            Ok(i) => i,
            Err(need) => {
                let tail = storage
                    .get_range(path, len.saturating_sub(need)..len)
                    .await?;
                ObjectIndex::from_tail(&tail, len)?
                    .map_err(|_| Error::Storage(format!("{path}: footer changed while read")))?
            }
        };
        let index = Arc::new(parsed);
        if let Ok(mut c) = self.indexes.lock() {
            c.insert(path.to_string(), index.clone(), index.memory_size());
        }
        Ok(index)
    }

    /// One row group's bytes (a ranged GET).
    async fn group_bytes(
        storage: &Storage,
        path: &str,
        index: &ObjectIndex,
        group: usize,
    ) -> Result<ObjectBytes> {
        let range = index.group_range(group)?;
        let data = storage.get_range(path, range.clone()).await?;
        Ok(ObjectBytes {
            start: range.start,
            data,
            len: index.len,
        })
    }

    /// The decoded row group of `seg` holding `offset` (`None` past the segment's end).
    pub async fn group_at(
        &self,
        storage: &Storage,
        seg: &SegmentMeta,
        offset: i64,
    ) -> Result<Option<Batches>> {
        if offset > seg.last {
            return Ok(None);
        }
        let index = self.object(storage, &seg.path, object_size(seg)).await?;
        let (first, starts) = span(&index, seg)?;
        let Some(i) = group_of(&starts, seg.last + 1, offset.max(seg.base)) else {
            return Ok(None);
        };
        // In a cleaned segment the offset may fall in a gap after its row group's last
        // record: the next row group then holds what follows.
        for group in first + i..first + starts.len() {
            let batches = self.decoded(storage, seg, &index, group).await?;
            if batches.last().is_some_and(|b| b.last_offset >= offset) {
                return Ok(Some(batches));
            }
        }
        Ok(None)
    }

    /// One row group of `seg`'s object, decoded (cached).
    async fn decoded(
        &self,
        storage: &Storage,
        seg: &SegmentMeta,
        index: &Arc<ObjectIndex>,
        group: usize,
    ) -> Result<Batches> {
        let key = group_key(&seg.path, group);
        if let Some(b) = self.groups.lock().ok().and_then(|c| c.get(&key)) {
            return Ok(b);
        }
        let bytes = Self::group_bytes(storage, &seg.path, index, group).await?;
        let index = index.clone();
        let batches = tokio::task::spawn_blocking(move || index.decode_group(&bytes, group))
            .await
            .map_err(|e| Error::Internal(e.to_string()))??;
        let size: usize = batches.iter().map(|b| b.bytes.len()).sum();
        let batches = Arc::new(batches);
        if let Ok(mut c) = self.groups.lock() {
            c.insert(key, batches.clone(), size);
        }
        Ok(batches)
    }

    /// The rows (segment columns) of `seg`, one row group at a time, for merging and
    /// compaction: `f` runs on the blocking pool; nothing is cached.
    pub async fn for_each_rows<S: Send + 'static>(
        &self,
        storage: &Storage,
        seg: &SegmentMeta,
        columns: &'static [&'static str],
        mut state: S,
        f: fn(&mut S, RecordBatch) -> Result<()>,
    ) -> Result<S> {
        let index = self.object(storage, &seg.path, object_size(seg)).await?;
        let (first, starts) = span(&index, seg)?;
        for group in first..first + starts.len() {
            let bytes = Self::group_bytes(storage, &seg.path, &index, group).await?;
            let index = index.clone();
            state = tokio::task::spawn_blocking(move || -> Result<S> {
                f(
                    &mut state,
                    index.read_group_columns(&bytes, group, columns)?,
                )?;
                Ok(state)
            })
            .await
            .map_err(|e| Error::Internal(e.to_string()))??;
        }
        Ok(state)
    }

    /// The idempotent-producer fields of `seg`'s batches (start-up).
    pub async fn producer_batches(
        &self,
        storage: &Storage,
        seg: &SegmentMeta,
    ) -> Result<Vec<ProducerBatch>> {
        let index = self.object(storage, &seg.path, object_size(seg)).await?;
        let (first, starts) = span(&index, seg)?;
        let mut out = Vec::new();
        for group in first..first + starts.len() {
            let bytes = Self::group_bytes(storage, &seg.path, &index, group).await?;
            let index = index.clone();
            let b = tokio::task::spawn_blocking(move || index.producer_batches(&bytes, group))
                .await
                .map_err(|e| Error::Internal(e.to_string()))??;
            out.extend(b);
        }
        Ok(out)
    }

    /// The transaction events of `seg` (start-up, once transactions are in use): row groups
    /// whose statistics show no transactional row are not fetched.
    pub async fn txn_events(&self, storage: &Storage, seg: &SegmentMeta) -> Result<Vec<TxnEvent>> {
        let index = self.object(storage, &seg.path, object_size(seg)).await?;
        let (first, starts) = span(&index, seg)?;
        let mut out = Vec::new();
        for group in first..first + starts.len() {
            if !index.may_hold_transactions(group) {
                continue;
            }
            let bytes = Self::group_bytes(storage, &seg.path, &index, group).await?;
            let index = index.clone();
            let e = tokio::task::spawn_blocking(move || index.txn_events(&bytes, group))
                .await
                .map_err(|e| Error::Internal(e.to_string()))??;
            out.extend(e);
        }
        Ok(out)
    }

    /// Drop an object (deleted by retention, merging, compaction or topic deletion).
    pub fn remove(&self, path: &str) {
        if let Ok(mut c) = self.indexes.lock() {
            c.remove_where(|k| k == path);
        }
        let prefix = format!("{path}#");
        if let Ok(mut c) = self.groups.lock() {
            c.remove_where(|k| k.starts_with(&prefix));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn stored(n: usize) -> Batches {
        Arc::new(vec![StoredBatch {
            base_offset: 0,
            last_offset: 0,
            max_timestamp: 0,
            bytes: Bytes::from(vec![0u8; n]),
        }])
    }

    #[test]
    fn evicts_oldest_over_budget() {
        let mut c = Budgeted::new(100);
        c.insert("a".into(), stored(60), 60);
        c.insert("b".into(), stored(60), 60);
        assert!(c.get("a").is_none());
        assert!(c.get("b").is_some());
        assert_eq!(c.bytes, 60);
        c.remove_where(|k| k == "b");
        assert_eq!(c.bytes, 0);
        assert!(c.order.is_empty());
    }

    fn meta(base: i64, last: i64, path: &str) -> SegmentMeta {
        SegmentMeta {
            base,
            last,
            path: path.into(),
            size: 0,
            max_timestamp: None,
            written_ms: 0,
            wal: None,
        }
    }

    /// A segment of 3 row groups (batches of 2 MiB, groups cut at 4 MiB) is served a row
    /// group at a time, and only the row groups asked for are decoded.
    #[actix_rt::test]
    async fn serves_row_groups_by_offset() {
        use crate::protocol::compression::Codec;
        use crate::protocol::records::{encode_batch, OwnedRecord};
        let storage = Storage::open("memory://").unwrap();
        let batches: Vec<Bytes> = (0..6)
            .map(|k| {
                let recs: Vec<OwnedRecord> = (0..2048)
                    .map(|i| OwnedRecord {
                        offset: k * 2048 + i,
                        timestamp: 1,
                        key: None,
                        value: Some(Bytes::from(vec![(i % 251) as u8; 1024])),
                        headers: vec![],
                    })
                    .collect();
                let mut m = crate::protocol::records::tests::meta();
                m.base_offset = k * 2048;
                Bytes::from(encode_batch(&m, &recs, Codec::None, 0).unwrap())
            })
            .collect();
        let enc = crate::storage::segment::encode_segment(&batches, 0, 1).unwrap();
        let size = enc.data.len() as u64;
        storage.put_create("seg", enc.data).await.unwrap();
        let mut seg = meta(0, 6 * 2048 - 1, "seg");
        seg.size = size;
        let c = SegmentCache::new(1 << 30);
        let g = c.group_at(&storage, &seg, 5000).await.unwrap().unwrap();
        assert_eq!(g.first().unwrap().base_offset, 4096);
        assert_eq!(g.len(), 2, "two 2 MiB batches per 4 MiB row group");
        assert_eq!(
            c.groups.lock().unwrap().map.len(),
            1,
            "one row group decoded"
        );
        assert!(c
            .group_at(&storage, &seg, 6 * 2048)
            .await
            .unwrap()
            .is_none());
        let mut all = Vec::new();
        let mut at = 0;
        while let Some(g) = c.group_at(&storage, &seg, at).await.unwrap() {
            at = g.last().unwrap().last_offset + 1;
            all.extend(g.iter().cloned());
        }
        assert_eq!(all.len(), 6);
        assert_eq!(all.last().unwrap().last_offset, 6 * 2048 - 1);
        c.remove("seg");
        assert_eq!(c.bytes(), 0);
        let mut wrong = meta(0, 10, "seg");
        wrong.size = size;
        assert!(c.group_at(&storage, &wrong, 0).await.is_err());
    }
}
