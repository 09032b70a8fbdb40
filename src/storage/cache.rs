//! A bounded cache of decoded cold segments (re-encoded record batches), shared by all fetches.
//!
//! Loads go object store → `spawn_blocking` Parquet decode; eviction is oldest-inserted first
//! once the byte budget is exceeded.

use super::segment::{decode_segment, StoredBatch};
use super::Storage;
use crate::error::{Error, Result};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

type Batches = Arc<Vec<StoredBatch>>;

#[derive(Debug, Default)]
struct Inner {
    map: HashMap<String, (Batches, usize)>,
    order: VecDeque<String>,
    bytes: usize,
}

#[derive(Debug)]
pub struct SegmentCache {
    budget: usize,
    inner: Mutex<Inner>,
}

impl SegmentCache {
    pub fn new(budget: usize) -> SegmentCache {
        SegmentCache {
            budget,
            inner: Mutex::new(Inner::default()),
        }
    }

    /// Bytes currently held.
    pub fn bytes(&self) -> usize {
        self.inner.lock().map(|i| i.bytes).unwrap_or(0)
    }

    pub fn get(&self, path: &str) -> Option<Batches> {
        let inner = self.inner.lock().ok()?;
        inner.map.get(path).map(|(b, _)| b.clone())
    }

    /// The decoded batches of the segment at `path`, loading it if needed.
    pub async fn get_or_load(&self, storage: &Storage, path: &str) -> Result<Batches> {
        if let Some(b) = self.get(path) {
            return Ok(b);
        }
        let data = storage.get(path).await?;
        let batches = tokio::task::spawn_blocking(move || decode_segment(data))
            .await
            .map_err(|e| Error::Internal(e.to_string()))??;
        let size: usize = batches.iter().map(|b| b.bytes.len()).sum();
        let batches = Arc::new(batches);
        self.insert(path, batches.clone(), size);
        Ok(batches)
    }

    fn insert(&self, path: &str, batches: Batches, size: usize) {
        let Ok(mut inner) = self.inner.lock() else {
            return;
        };
        if inner.map.contains_key(path) {
            return;
        }
        inner.map.insert(path.to_string(), (batches, size));
        inner.order.push_back(path.to_string());
        inner.bytes += size;
        while inner.bytes > self.budget && inner.order.len() > 1 {
            if let Some(old) = inner.order.pop_front() {
                if let Some((_, s)) = inner.map.remove(&old) {
                    inner.bytes -= s;
                }
            }
        }
    }

    /// Drop a segment (deleted by retention, merging or topic deletion).
    pub fn remove(&self, path: &str) {
        let Ok(mut inner) = self.inner.lock() else {
            return;
        };
        if let Some((_, s)) = inner.map.remove(path) {
            inner.bytes -= s;
            inner.order.retain(|p| p != path);
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
        let c = SegmentCache::new(100);
        c.insert("a", stored(60), 60);
        c.insert("b", stored(60), 60);
        assert!(c.get("a").is_none());
        assert!(c.get("b").is_some());
        assert_eq!(c.bytes(), 60);
        c.remove("b");
        assert_eq!(c.bytes(), 0);
    }
}
