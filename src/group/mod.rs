//! Consumer groups: the classic protocol state machine ([`state`]), one [`coordinator`] actor
//! per group that owns it and the group's committed offsets (persisted before a commit is
//! answered: as `meta/groups/{group}.json` in standalone mode, in the metadata store under the
//! group's coordinator slot epoch in cluster mode — see [`OffsetStore`]), and the
//! [`GroupManager`] registry.

pub mod assignor;
pub mod configs;
pub mod consumer;
pub mod coordinator;
pub mod embedded;
pub mod state;

use crate::error::Result;
use crate::storage::Storage;
use actix::prelude::*;
use coordinator::{DropTopic, GroupCoordinator};
use serde::{Deserialize, Serialize};
use state::GroupLimits;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// A committed offset as persisted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommittedOffset {
    pub offset: i64,
    #[serde(default = "minus_one")]
    pub leader_epoch: i32,
    #[serde(default)]
    pub metadata: Option<String>,
    #[serde(default)]
    pub commit_ms: i64,
}

fn minus_one() -> i32 {
    -1
}

/// The persisted document of one group.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupDoc {
    pub group: String,
    /// topic → partition → committed offset
    pub offsets: BTreeMap<String, BTreeMap<i32, CommittedOffset>>,
}

/// `meta/groups/{group}.json`, with the group id percent-encoded outside `[A-Za-z0-9._-]`.
pub fn group_doc_path(group: &str) -> String {
    let mut enc = String::with_capacity(group.len());
    for b in group.bytes() {
        if b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-' {
            enc.push(b as char);
        } else {
            enc.push_str(&format!("%{b:02X}"));
        }
    }
    if enc.is_empty() || enc == "." || enc == ".." {
        enc = format!("%{}", enc.len());
    }
    format!("meta/groups/{enc}.json")
}

/// Where a group's committed offsets are persisted.
#[derive(Clone)]
pub enum OffsetStore {
    /// Standalone: one document per group in the object store.
    Objects(Storage),
    /// Cluster mode: rows in the metadata store, written only while this broker holds the
    /// group's coordinator slot under `epoch` (a deposed coordinator's write fails).
    Cluster {
        cluster: std::sync::Arc<crate::cluster::Cluster>,
        slot: i32,
        epoch: i32,
    },
}

impl OffsetStore {
    /// Persist a group's offsets (all of them).
    pub async fn save(&self, doc: &GroupDoc) -> Result<()> {
        match self {
            OffsetStore::Objects(storage) => {
                let body = serde_json::to_vec(doc)
                    .map_err(|e| crate::error::Error::Internal(e.to_string()))?;
                storage
                    .put_overwrite(&group_doc_path(&doc.group), bytes::Bytes::from(body))
                    .await
            }
            OffsetStore::Cluster {
                cluster,
                slot,
                epoch,
            } => {
                cluster
                    .store
                    .save_group_offsets(&doc.group, *slot, cluster.node_id, *epoch, &doc.offsets)
                    .await
            }
        }
    }

    /// Forget a deleted group.
    pub async fn delete(&self, group: &str) -> Result<()> {
        match self {
            OffsetStore::Objects(storage) => storage.delete(&group_doc_path(group)).await,
            OffsetStore::Cluster { .. } => {
                self.save(&GroupDoc {
                    group: group.to_string(),
                    offsets: BTreeMap::new(),
                })
                .await
            }
        }
    }
}

/// What metrics need of a group, published by its coordinator after every change.
#[derive(Debug, Clone, Default)]
pub struct GroupStats {
    pub phase: &'static str,
    pub members: usize,
    pub committed: Vec<((String, i32), i64)>,
}

pub type SharedStats = std::sync::Arc<std::sync::RwLock<GroupStats>>;

/// All group coordinators of this broker.
pub struct GroupManager {
    storage: Storage,
    limits: GroupLimits,
    /// Each group's coordinator, with the slot epoch it was started under (cluster mode; 0
    /// in standalone mode).
    groups: Mutex<HashMap<String, (Addr<GroupCoordinator>, i32)>>,
    cluster: Option<std::sync::Arc<crate::cluster::Cluster>>,
    stats: Mutex<HashMap<String, SharedStats>>,
    arbiters: Vec<ArbiterHandle>,
    next: AtomicUsize,
}

impl GroupManager {
    pub fn new(
        storage: Storage,
        limits: GroupLimits,
        arbiters: Vec<ArbiterHandle>,
        cluster: Option<std::sync::Arc<crate::cluster::Cluster>>,
    ) -> GroupManager {
        GroupManager {
            storage,
            limits,
            groups: Mutex::new(HashMap::new()),
            cluster,
            stats: Mutex::new(HashMap::new()),
            arbiters,
            next: AtomicUsize::new(0),
        }
    }

    /// Where the coordinator of `group` persists (cluster mode: `None` unless this broker
    /// holds the group's slot; the epoch is returned alongside).
    fn offset_store(&self, group: &str) -> Option<(OffsetStore, i32)> {
        match &self.cluster {
            None => Some((OffsetStore::Objects(self.storage.clone()), 0)),
            Some(c) => {
                let (slot, epoch) = c.my_slot(group)?;
                Some((
                    OffsetStore::Cluster {
                        cluster: c.clone(),
                        slot,
                        epoch,
                    },
                    epoch,
                ))
            }
        }
    }

    /// Cluster mode: make sure this broker coordinates `group` and that its coordinator runs
    /// under the slot's current epoch with the committed offsets loaded from the store.
    /// NOT_COORDINATOR when another broker holds the slot. A no-op in standalone mode.
    pub async fn route(&self, group: &str) -> std::result::Result<(), i16> {
        let Some(c) = &self.cluster else {
            return Ok(());
        };
        let Some((_, epoch)) = c.my_slot(group) else {
            return Err(crate::error::code::NOT_COORDINATOR);
        };
        let current = |g: &HashMap<String, (Addr<GroupCoordinator>, i32)>| {
            g.get(group)
                .is_some_and(|(a, e)| *e == epoch && a.connected())
        };
        if current(&self.groups.lock().unwrap_or_else(|e| e.into_inner())) {
            return Ok(());
        }
        let offsets = c
            .store
            .group_offsets(group)
            .await
            .map_err(|_| state::COORDINATOR_NOT_AVAILABLE)?;
        let mut g = self.groups.lock().unwrap_or_else(|e| e.into_inner());
        if current(&g) {
            return Ok(());
        }
        // A coordinator from an earlier tenure of the slot is stale: its members rejoin.
        if let Some((stale, _)) = g.remove(group) {
            stale.do_send(coordinator::Retire);
        }
        if !offsets.is_empty() {
            let Some(addr) = self.spawn(GroupDoc {
                group: group.to_string(),
                offsets,
            }) else {
                return Err(crate::error::code::NOT_COORDINATOR);
            };
            g.insert(group.to_string(), addr);
        }
        Ok(())
    }

    fn spawn(&self, doc: GroupDoc) -> Option<(Addr<GroupCoordinator>, i32)> {
        let (store, epoch) = self.offset_store(&doc.group)?;
        let shared: SharedStats = Default::default();
        self.stats
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(doc.group.clone(), shared.clone());
        let c = GroupCoordinator::new(doc, self.limits, store, shared);
        let addr = if self.arbiters.is_empty() {
            c.start()
        } else {
            let i = self.next.fetch_add(1, Ordering::Relaxed) % self.arbiters.len();
            GroupCoordinator::start_in_arbiter(&self.arbiters[i], move |_| c)
        };
        Some((addr, epoch))
    }

    /// The coordinator of `group`, created (Empty) if it does not exist. `None` only in
    /// cluster mode when this broker does not coordinate the group (call [`Self::route`]
    /// first).
    pub fn get_or_create(&self, group: &str) -> Option<Addr<GroupCoordinator>> {
        let mut g = self.groups.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((a, _)) = g.get(group) {
            if a.connected() {
                return Some(a.clone());
            }
        }
        if g.len() >= 1024 && g.len().is_power_of_two() {
            // Coordinators of idle groups stop themselves; forget them now and then.
            let mut stats = self.stats.lock().unwrap_or_else(|e| e.into_inner());
            g.retain(|name, (a, _)| {
                let live = a.connected();
                if !live {
                    stats.remove(name);
                }
                live
            });
        }
        let spawned = self.spawn(GroupDoc {
            group: group.to_string(),
            offsets: BTreeMap::new(),
        })?;
        let addr = spawned.0.clone();
        g.insert(group.to_string(), spawned);
        Some(addr)
    }

    /// The coordinator of `group` if it exists.
    pub fn get(&self, group: &str) -> Option<Addr<GroupCoordinator>> {
        let g = self.groups.lock().unwrap_or_else(|e| e.into_inner());
        g.get(group)
            .map(|(a, _)| a)
            .filter(|a| a.connected())
            .cloned()
    }

    pub fn all(&self) -> Vec<(String, Addr<GroupCoordinator>)> {
        let g = self.groups.lock().unwrap_or_else(|e| e.into_inner());
        let mut v: Vec<_> = g
            .iter()
            .filter(|(_, (a, _))| a.connected())
            .map(|(k, (a, _))| (k.clone(), a.clone()))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    /// Forget a deleted group.
    pub fn remove(&self, group: &str) {
        let mut g = self.groups.lock().unwrap_or_else(|e| e.into_inner());
        g.remove(group);
        self.stats
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(group);
    }

    /// Published state of every group (metrics).
    pub fn stats(&self) -> Vec<(String, GroupStats)> {
        let s = self.stats.lock().unwrap_or_else(|e| e.into_inner());
        s.iter()
            .map(|(k, v)| (k.clone(), v.read().map(|g| g.clone()).unwrap_or_default()))
            .collect()
    }

    /// Cluster mode: stop coordinators of groups whose slot this broker no longer holds.
    pub fn retire_moved(&self) {
        let Some(c) = &self.cluster else {
            return;
        };
        let mut g = self.groups.lock().unwrap_or_else(|e| e.into_inner());
        g.retain(|name, (addr, epoch)| {
            let current = c.my_slot(name).is_some_and(|(_, e)| e == *epoch);
            if !current {
                addr.do_send(coordinator::Retire);
            }
            current
        });
    }

    /// A topic was deleted: every group drops its offsets.
    pub async fn drop_topic(&self, topic: &str) {
        for (_, a) in self.all() {
            let _ = a.send(DropTopic(topic.to_string())).await;
        }
    }

    /// Load every persisted group (one LIST of `meta/groups/`).
    pub async fn recover(&self) -> Result<usize> {
        let mut n = 0;
        for obj in self.storage.list("meta/groups").await? {
            if !obj.path.ends_with(".json") {
                continue;
            }
            let data = self.storage.get(&obj.path).await?;
            match serde_json::from_slice::<GroupDoc>(&data) {
                Ok(doc) => {
                    let name = doc.group.clone();
                    if let Some(addr) = self.spawn(doc) {
                        self.groups
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .insert(name, addr);
                        n += 1;
                    }
                }
                Err(e) => tracing::error!("ignoring unreadable group document {}: {e}", obj.path),
            }
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_paths_are_safe() {
        assert_eq!(
            group_doc_path("my-group_1.x"),
            "meta/groups/my-group_1.x.json"
        );
        assert_eq!(group_doc_path("a/b c"), "meta/groups/a%2Fb%20c.json");
        assert_eq!(group_doc_path(".."), "meta/groups/%2.json");
    }

    #[test]
    fn doc_round_trips() {
        let mut doc = GroupDoc {
            group: "g".into(),
            ..Default::default()
        };
        doc.offsets.entry("t".into()).or_default().insert(
            3,
            CommittedOffset {
                offset: 42,
                leader_epoch: 0,
                metadata: Some("meta".into()),
                commit_ms: 1,
            },
        );
        let s = serde_json::to_string(&doc).unwrap();
        assert_eq!(serde_json::from_str::<GroupDoc>(&s).unwrap(), doc);
    }
}
