//! Consumer groups: the classic protocol state machine ([`state`]), one [`coordinator`] actor
//! per group that owns it and the group's committed offsets (persisted as
//! `meta/groups/{group}.json` before a commit is answered), and the [`GroupManager`] registry.

pub mod coordinator;
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
    groups: Mutex<HashMap<String, Addr<GroupCoordinator>>>,
    stats: Mutex<HashMap<String, SharedStats>>,
    arbiters: Vec<ArbiterHandle>,
    next: AtomicUsize,
}

impl GroupManager {
    pub fn new(
        storage: Storage,
        limits: GroupLimits,
        arbiters: Vec<ArbiterHandle>,
    ) -> GroupManager {
        GroupManager {
            storage,
            limits,
            groups: Mutex::new(HashMap::new()),
            stats: Mutex::new(HashMap::new()),
            arbiters,
            next: AtomicUsize::new(0),
        }
    }

    fn spawn(&self, doc: GroupDoc) -> Addr<GroupCoordinator> {
        let shared: SharedStats = Default::default();
        self.stats
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(doc.group.clone(), shared.clone());
        let c = GroupCoordinator::new(doc, self.limits, self.storage.clone(), shared);
        if self.arbiters.is_empty() {
            c.start()
        } else {
            let i = self.next.fetch_add(1, Ordering::Relaxed) % self.arbiters.len();
            GroupCoordinator::start_in_arbiter(&self.arbiters[i], move |_| c)
        }
    }

    /// The coordinator of `group`, created (Empty) if it does not exist.
    pub fn get_or_create(&self, group: &str) -> Addr<GroupCoordinator> {
        let mut g = self.groups.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(a) = g.get(group) {
            if a.connected() {
                return a.clone();
            }
        }
        if g.len() >= 1024 && g.len().is_power_of_two() {
            // Coordinators of idle groups stop themselves; forget them now and then.
            let mut stats = self.stats.lock().unwrap_or_else(|e| e.into_inner());
            g.retain(|name, a| {
                let live = a.connected();
                if !live {
                    stats.remove(name);
                }
                live
            });
        }
        let addr = self.spawn(GroupDoc {
            group: group.to_string(),
            offsets: BTreeMap::new(),
        });
        g.insert(group.to_string(), addr.clone());
        addr
    }

    /// The coordinator of `group` if it exists.
    pub fn get(&self, group: &str) -> Option<Addr<GroupCoordinator>> {
        let g = self.groups.lock().unwrap_or_else(|e| e.into_inner());
        g.get(group).filter(|a| a.connected()).cloned()
    }

    pub fn all(&self) -> Vec<(String, Addr<GroupCoordinator>)> {
        let g = self.groups.lock().unwrap_or_else(|e| e.into_inner());
        let mut v: Vec<_> = g
            .iter()
            .filter(|(_, a)| a.connected())
            .map(|(k, a)| (k.clone(), a.clone()))
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
                    let addr = self.spawn(doc);
                    self.groups
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(name, addr);
                    n += 1;
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
