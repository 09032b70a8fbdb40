//! Cluster mode: N stateless brokers over one bucket, coordinated through PostgreSQL.
//!
//! - [`store`] holds every statement against the metadata store (schema migrations included).
//! - [`assign`] is the leader assignment as a plain function.
//! - [`Cluster`] is this broker's membership: its node id and incarnation, and the latest
//!   [`View`] of the cluster (live brokers, topics, each partition's leader and epoch,
//!   coordinator slots) that request handlers route with. The broker's cluster loop
//!   (`broker::cluster`) refreshes the view, heart-beats, runs the assignment when this broker
//!   is the controller, and starts or stops partition leaders to match it.
//!
//! Standalone mode (no `cluster.metadata_store`) has no `Cluster` at all.

pub mod assign;
pub mod store;

use crate::config::ClusterSettings;
use std::collections::HashMap;
use std::sync::RwLock;
use std::time::Duration;
use store::{BrokerInfo, Snapshot, Store};

/// What handlers route with; replaced as a whole on every refresh.
#[derive(Debug, Clone, Default)]
pub struct View {
    pub version: i64,
    /// Live brokers, by node id.
    pub brokers: Vec<BrokerInfo>,
    /// (topic id, partition) → (leader, leader epoch).
    pub leaders: HashMap<([u8; 16], i32), (Option<i32>, i32)>,
    /// Coordinator slot → (leader, epoch).
    pub slots: Vec<(Option<i32>, i32)>,
    /// Topic id → replication factor (nominal).
    pub replication: HashMap<[u8; 16], i32>,
    /// Replica lists given at creation, by (topic id, partition).
    pub assigned: HashMap<([u8; 16], i32), Vec<i32>>,
}

/// This broker's membership of the cluster.
#[derive(Debug)]
pub struct Cluster {
    pub store: Store,
    pub node_id: i32,
    /// Tells this process apart from an earlier one with the same node id.
    pub incarnation: String,
    pub settings: ClusterSettings,
    view: RwLock<View>,
    /// The newest snapshot version reconciled.
    applied: std::sync::atomic::AtomicI64,
    /// Serialises on-demand view refreshes (see `Broker::catch_up_view`).
    pub catch_up: tokio::sync::Mutex<()>,
    /// On-demand refreshes started so far: a request that waited for the lock while one
    /// started after it asked needs no refresh of its own.
    pub catch_ups_started: std::sync::atomic::AtomicU64,
    /// The store version the SCRAM credentials and ACLs were last loaded at (read before
    /// loading them: a change committed meanwhile moves the version past it, and the next tick
    /// loads again). Kept apart from the view's version, which other paths also move.
    pub auth_version: std::sync::atomic::AtomicI64,
}

impl Cluster {
    pub fn new(store: Store, node_id: i32, incarnation: String, settings: ClusterSettings) -> Self {
        Cluster {
            store,
            node_id,
            incarnation,
            settings,
            view: RwLock::new(View::default()),
            applied: std::sync::atomic::AtomicI64::new(-1),
            catch_up: tokio::sync::Mutex::new(()),
            catch_ups_started: std::sync::atomic::AtomicU64::new(0),
            auth_version: std::sync::atomic::AtomicI64::new(-1),
        }
    }

    pub fn applied_version(&self) -> i64 {
        self.applied.load(std::sync::atomic::Ordering::SeqCst)
    }

    pub fn set_applied_version(&self, v: i64) {
        self.applied
            .fetch_max(v, std::sync::atomic::Ordering::SeqCst);
    }

    pub fn session_timeout(&self) -> Duration {
        Duration::from_millis(self.settings.session_timeout_ms)
    }

    pub fn view(&self) -> View {
        self.view.read().map(|v| v.clone()).unwrap_or_default()
    }

    /// Replace the view from a store snapshot and the live brokers.
    pub fn set_view(&self, snap: &Snapshot, brokers: Vec<BrokerInfo>) {
        let leaders = snap
            .leaders
            .iter()
            .map(|l| ((l.topic_id, l.partition), (l.leader, l.epoch)))
            .collect();
        let v = View {
            version: snap.version,
            brokers,
            leaders,
            slots: snap.slots.clone(),
            assigned: snap
                .leaders
                .iter()
                .filter_map(|l| Some(((l.topic_id, l.partition), l.replicas.clone()?)))
                .collect(),
            replication: snap
                .topics
                .iter()
                .map(|t| (t.id, t.replication_factor))
                .collect(),
        };
        if let Ok(mut w) = self.view.write() {
            *w = v;
        }
    }

    /// Update only the live brokers (between assignment changes).
    pub fn set_brokers(&self, brokers: Vec<BrokerInfo>) {
        if let Ok(mut w) = self.view.write() {
            w.brokers = brokers;
        }
    }

    pub fn version(&self) -> i64 {
        self.view.read().map(|v| v.version).unwrap_or(-1)
    }

    /// A partition's leader and epoch as last seen.
    pub fn leader_of(&self, topic_id: &[u8; 16], partition: i32) -> Option<(Option<i32>, i32)> {
        self.view
            .read()
            .ok()?
            .leaders
            .get(&(*topic_id, partition))
            .copied()
    }

    /// The nominal replicas of a partition led by `leader`: the leader, then the next live
    /// brokers by node id, as many as the topic's replication factor (every broker reads the
    /// same object store; "replicas" are the brokers a client may be sent to next).
    pub fn replicas(&self, topic_id: &[u8; 16], partition: i32, leader: i32) -> Vec<i32> {
        let Ok(v) = self.view.read() else {
            return vec![leader];
        };
        if let Some(r) = v.assigned.get(&(*topic_id, partition)) {
            return r.clone();
        }
        let rf = v.replication.get(topic_id).copied().unwrap_or(1).max(1) as usize;
        let ids: Vec<i32> = v.brokers.iter().map(|b| b.node_id).collect();
        let start = ids.iter().position(|b| *b == leader).unwrap_or(0);
        let mut out = vec![leader];
        for i in 1..ids.len() {
            if out.len() >= rf {
                break;
            }
            let b = ids[(start + i) % ids.len()];
            if b != leader {
                out.push(b);
            }
        }
        out
    }

    /// A partition's replica list given at creation or by a reassignment.
    pub fn assigned(&self, topic_id: &[u8; 16], partition: i32) -> Option<Vec<i32>> {
        self.view
            .read()
            .ok()?
            .assigned
            .get(&(*topic_id, partition))
            .cloned()
    }

    /// Every coordinator slot's leader (`None` unless live) and epoch.
    pub fn slot_leaders(&self) -> Vec<(Option<i32>, i32)> {
        let Ok(v) = self.view.read() else {
            return Vec::new();
        };
        v.slots
            .iter()
            .map(|&(l, e)| {
                let live = l.filter(|l| v.brokers.iter().any(|b| b.node_id == *l));
                (live, e)
            })
            .collect()
    }

    /// A live broker by id.
    pub fn broker(&self, node_id: i32) -> Option<BrokerInfo> {
        self.view
            .read()
            .ok()?
            .brokers
            .iter()
            .find(|b| b.node_id == node_id)
            .cloned()
    }

    pub fn brokers(&self) -> Vec<BrokerInfo> {
        self.view
            .read()
            .map(|v| v.brokers.clone())
            .unwrap_or_default()
    }

    /// The controller: the live broker with the lowest node id runs the assignment.
    pub fn controller(&self) -> Option<i32> {
        self.view.read().ok()?.brokers.first().map(|b| b.node_id)
    }

    /// The coordinator slot of a group (Java's `String.hashCode`, as Kafka places groups on
    /// `__consumer_offsets` partitions).
    pub fn slot_of(&self, group: &str) -> Option<i32> {
        let n = self.view.read().ok()?.slots.len();
        (n > 0).then(|| slot_for(group, n) as i32)
    }

    /// The broker coordinating `group`, if the slot has a live leader.
    pub fn coordinator_of(&self, group: &str) -> Option<BrokerInfo> {
        let v = self.view.read().ok()?;
        let n = v.slots.len();
        if n == 0 {
            return None;
        }
        let leader = v.slots[slot_for(group, n)].0?;
        v.brokers.iter().find(|b| b.node_id == leader).cloned()
    }

    /// (slot, epoch) when this broker coordinates `group`.
    pub fn my_slot(&self, group: &str) -> Option<(i32, i32)> {
        let v = self.view.read().ok()?;
        let n = v.slots.len();
        if n == 0 {
            return None;
        }
        let s = slot_for(group, n);
        match v.slots[s] {
            (Some(l), e) if l == self.node_id => Some((s as i32, e)),
            _ => None,
        }
    }
}

/// Java's `String.hashCode` of the UTF-16 code units, mapped to a slot like Kafka's
/// `Utils.abs(hash) % n`.
pub fn slot_for(group: &str, n: usize) -> usize {
    let mut h: i32 = 0;
    for u in group.encode_utf16() {
        h = h.wrapping_mul(31).wrapping_add(u as i32);
    }
    let abs = if h == i32::MIN { 0 } else { h.abs() };
    abs as usize % n.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_follow_java_string_hash() {
        // "group".hashCode() = 98629247 in Java.
        assert_eq!(slot_for("group", 1_000_000_007), 98_629_247);
        assert_eq!(slot_for("", 16), 0);
        assert!(slot_for("any-group", 16) < 16);
    }
}
