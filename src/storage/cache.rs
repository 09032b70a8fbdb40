//! A bounded cache of cold segments, shared by all fetches, at row-group granularity.
//!
//! Two levels, each with a byte budget and oldest-inserted-first eviction:
//! - segment indexes: a segment's bytes as stored (compressed) and its parsed Parquet footer,
//!   so its row groups can be located by offset without reading data (a quarter of the budget);
//! - decoded row groups: the record batches of one row group, re-encoded for serving.
//!
//! A fetch decodes only the row groups it serves (a few MiB each, see
//! [`super::segment::ROW_GROUP_TARGET_BYTES`]), however large or compressible the segment is.
//! Loads run the object store read and the Parquet decode off the event loop
//! (`spawn_blocking`).

use super::segment::{SegmentIndex, StoredBatch};
use super::writer::SegmentMeta;
use super::Storage;
use crate::error::{Error, Result};
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
    indexes: Mutex<Budgeted<Arc<SegmentIndex>>>,
    groups: Mutex<Budgeted<Batches>>,
}

fn group_key(path: &str, group: usize) -> String {
    format!("{path}#{group}")
}

impl SegmentCache {
    pub fn new(budget: usize) -> SegmentCache {
        SegmentCache {
            indexes: Mutex::new(Budgeted::new(budget / 4)),
            groups: Mutex::new(Budgeted::new(budget - budget / 4)),
        }
    }

    /// Bytes currently held (decoded row groups and stored segment bytes).
    pub fn bytes(&self) -> usize {
        let g = self.groups.lock().map(|i| i.bytes).unwrap_or(0);
        let i = self.indexes.lock().map(|i| i.bytes).unwrap_or(0);
        g + i
    }

    /// A segment's stored bytes and parsed footer.
    pub async fn index(&self, storage: &Storage, seg: &SegmentMeta) -> Result<Arc<SegmentIndex>> {
        if let Some(i) = self.indexes.lock().ok().and_then(|c| c.get(&seg.path)) {
            return Ok(i);
        }
        let data = storage.get(&seg.path).await?;
        let base = seg.base;
        let index = tokio::task::spawn_blocking(move || SegmentIndex::load(data, base))
            .await
            .map_err(|e| Error::Internal(e.to_string()))??;
        if index.end != seg.last + 1 {
            return Err(Error::Storage(format!(
                "segment {} holds offsets {}..{}, its name says {}..={}",
                seg.path, seg.base, index.end, seg.base, seg.last
            )));
        }
        let index = Arc::new(index);
        if let Ok(mut c) = self.indexes.lock() {
            c.insert(seg.path.clone(), index.clone(), index.data.len());
        }
        Ok(index)
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
        let index = self.index(storage, seg).await?;
        let Some(group) = index.group_of(offset.max(seg.base)) else {
            return Ok(None);
        };
        let key = group_key(&seg.path, group);
        if let Some(b) = self.groups.lock().ok().and_then(|c| c.get(&key)) {
            return Ok(Some(b));
        }
        let batches = tokio::task::spawn_blocking(move || index.decode_group(group))
            .await
            .map_err(|e| Error::Internal(e.to_string()))??;
        let size: usize = batches.iter().map(|b| b.bytes.len()).sum();
        let batches = Arc::new(batches);
        if let Ok(mut c) = self.groups.lock() {
            c.insert(key, batches.clone(), size);
        }
        Ok(Some(batches))
    }

    /// Drop a segment (deleted by retention, merging or topic deletion).
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
        storage.put_create("seg", enc.data).await.unwrap();
        let seg = meta(0, 6 * 2048 - 1, "seg");
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
        let wrong = meta(0, 10, "seg");
        assert!(c.group_at(&storage, &wrong, 0).await.is_err());
    }
}
