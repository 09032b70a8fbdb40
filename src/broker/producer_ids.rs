//! Producer id allocation for idempotent producers. Ids are handed out from blocks reserved in
//! `meta/producer_ids.json` *before* use, so an id is never handed out twice, even across
//! crashes (a crash only skips the rest of a reserved block).

use crate::error::{Error, Result};
use crate::storage::Storage;
use bytes::Bytes;

/// Ids reserved per write of the allocation document.
pub const BLOCK: i64 = 1000;
const PATH: &str = "meta/producer_ids.json";

#[derive(Debug)]
pub struct ProducerIds {
    next: i64,
    block_end: i64,
}

impl ProducerIds {
    /// Read where the previous run's reservations ended.
    pub async fn load(storage: &Storage) -> Result<ProducerIds> {
        let reserved = match storage.get_opt(PATH).await? {
            Some(b) => {
                let v: serde_json::Value =
                    serde_json::from_slice(&b).map_err(|e| Error::Internal(e.to_string()))?;
                v.get("next_block_start")
                    .and_then(|v| v.as_i64())
                    .unwrap_or(0)
            }
            None => 0,
        };
        Ok(ProducerIds {
            next: reserved,
            block_end: reserved,
        })
    }

    /// Cluster mode: nothing reserved yet; blocks come from the metadata store.
    pub fn empty() -> ProducerIds {
        ProducerIds {
            next: 0,
            block_end: 0,
        }
    }

    /// A fresh producer id from blocks the cluster's metadata store reserves (atomically, so
    /// two brokers never hand out the same id).
    pub async fn allocate_from_store(
        &mut self,
        store: &crate::cluster::store::Store,
    ) -> Result<i64> {
        if self.next >= self.block_end {
            let start = store.reserve_producer_ids(BLOCK).await?;
            self.next = start;
            self.block_end = start + BLOCK;
        }
        let id = self.next;
        self.next += 1;
        Ok(id)
    }

    /// A fresh producer id; persists a new block reservation when the current one is used up.
    pub async fn allocate(&mut self, storage: &Storage) -> Result<i64> {
        if self.next >= self.block_end {
            let end = self.next + BLOCK;
            let doc = serde_json::json!({ "next_block_start": end });
            storage
                .put_overwrite(PATH, Bytes::from(doc.to_string()))
                .await?;
            self.block_end = end;
        }
        let id = self.next;
        self.next += 1;
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[actix_rt::test]
    async fn ids_never_repeat_across_restarts() {
        let s = Storage::open("memory://").unwrap();
        let mut a = ProducerIds::load(&s).await.unwrap();
        let x = a.allocate(&s).await.unwrap();
        let y = a.allocate(&s).await.unwrap();
        assert_eq!((x, y), (0, 1));
        let mut b = ProducerIds::load(&s).await.unwrap();
        assert_eq!(
            b.allocate(&s).await.unwrap(),
            BLOCK,
            "a restart skips the reserved block"
        );
    }
}
