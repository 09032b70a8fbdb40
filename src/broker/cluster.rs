//! The broker's side of cluster mode: joining the cluster (schema, cluster id, registration),
//! the cluster loop (lease renewal, assignment when this broker is the controller, refresh of
//! the routing view, garbage collection of unreferenced objects), and reconciliation — starting
//! a leader from the committed index for every partition the store says this broker leads
//! under a new epoch, stopping the others. Topic administration goes through the store.

use super::{Broker, Partition, Topic};
use crate::cluster::store::{BrokerInfo, CommittedLog, Snapshot, Store, TopicRow};
use crate::cluster::Cluster;
use crate::config::Settings;
use crate::error::{Error, Result};
use crate::log::leader::Stop;
use crate::log::TopicPartition;
use crate::storage::writer::WriterCmd;
use futures::StreamExt;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// How long the store may be unreachable at start-up before the broker gives up.
const JOIN_PATIENCE: Duration = Duration::from_secs(60);
/// Objects are considered for garbage collection once recorded this long ago.
const GC_MIN_AGE: Duration = Duration::from_secs(30);
/// An unreferenced object is deleted after it was seen unreferenced this long (reads planned
/// with its index entries end first).
const GC_GRACE: Duration = Duration::from_secs(30);
/// How often the controller looks for objects no commit recorded.
const ORPHAN_SWEEP: Duration = Duration::from_secs(600);
/// Objects no commit recorded are deleted once this old (far beyond any commit's duration).
const ORPHAN_AGE: Duration = Duration::from_secs(600);
/// Partitions whose committed index is loaded at once when leadership arrives.
const TAKEOVER_CONCURRENCY: usize = 8;

/// Connect to the metadata store, migrate its schema, and register this broker.
pub(super) async fn join(
    settings: &Settings,
    dsn: &str,
    listeners: &[crate::network::ListenerInfo],
) -> Result<(Arc<Cluster>, String)> {
    let store = Store::connect(dsn)?;
    let started = Instant::now();
    loop {
        match store.migrate().await {
            Ok(()) => break,
            Err(e) if started.elapsed() < JOIN_PATIENCE => {
                tracing::warn!("metadata store not reachable yet ({e}); retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(e) => return Err(e),
        }
    }
    let c = &settings.cluster;
    let cluster_id = store
        .init_cluster(
            &uuid::Uuid::new_v4().simple().to_string()[..22],
            c.coordinator_slots,
        )
        .await?;
    let incarnation = uuid::Uuid::new_v4().simple().to_string()[..12].to_string();
    let first = listeners
        .first()
        .ok_or_else(|| Error::InvalidConfig("no listener".into()))?;
    let info = BrokerInfo {
        node_id: settings.node_id.unwrap_or(-1),
        host: first.advertised_host.clone(),
        port: i32::from(first.advertised_port),
        rack: c.rack.clone(),
        listeners: Some(
            listeners
                .iter()
                .map(|l| format!("{}://{}:{}", l.name(), l.advertised_host, l.advertised_port))
                .collect::<Vec<_>>()
                .join(","),
        ),
    };
    let session = Duration::from_millis(c.session_timeout_ms);
    let node_id = store
        .register(settings.node_id, &info, &incarnation, session)
        .await?;
    tracing::info!(
        "joined cluster {cluster_id} as node {node_id} (incarnation {incarnation}), advertised {}:{}",
        info.host,
        info.port
    );
    Ok((
        Arc::new(Cluster::new(store, node_id, incarnation, c.clone())),
        cluster_id,
    ))
}

impl Broker {
    fn cluster_ref(&self) -> Result<&Arc<Cluster>> {
        self.cluster
            .as_ref()
            .ok_or_else(|| Error::Internal("not in cluster mode".into()))
    }

    /// First view of the cluster, then the background loops.
    pub(super) async fn start_cluster(self: &Arc<Self>) -> Result<()> {
        let c = self.cluster_ref()?.clone();
        self.cluster_tick(true).await?;
        // Lease renewal.
        let weak = Arc::downgrade(self);
        let hb = Duration::from_millis(c.settings.heartbeat_interval_ms);
        actix::spawn(async move {
            loop {
                tokio::time::sleep(hb).await;
                let Some(b) = weak.upgrade() else { break };
                if b.shutting_down.load(Ordering::Relaxed) {
                    break;
                }
                let Some(c) = b.cluster.clone() else { break };
                match c.store.heartbeat(c.node_id, &c.incarnation).await {
                    Ok(true) => {}
                    Ok(false) if b.shutting_down.load(Ordering::Relaxed) => break,
                    Ok(false) => {
                        // Another process registered this node id (everything this one led
                        // got a new epoch then): nothing here can commit any more.
                        tracing::error!(
                            "node id {} was registered by another process (or this broker left \
                             the cluster); exiting",
                            c.node_id
                        );
                        std::process::exit(1);
                    }
                    Err(e) => tracing::warn!("lease renewal failed: {e}"),
                }
            }
        });
        // Assignment, view refresh, reconciliation, garbage collection.
        let weak = Arc::downgrade(self);
        let poll = Duration::from_millis(c.settings.poll_interval_ms);
        actix::spawn(async move {
            loop {
                tokio::time::sleep(poll).await;
                let Some(b) = weak.upgrade() else { break };
                if b.shutting_down.load(Ordering::Relaxed) {
                    break;
                }
                if let Err(e) = b.cluster_tick(false).await {
                    tracing::warn!("cluster refresh failed: {e}");
                }
            }
        });
        Ok(())
    }

    /// One round of the cluster loop.
    async fn cluster_tick(&self, force: bool) -> Result<()> {
        let c = self.cluster_ref()?.clone();
        let session = c.session_timeout();
        let brokers = c.store.live_brokers(session).await?;
        let live_changed = {
            let old: Vec<i32> = c.brokers().iter().map(|b| b.node_id).collect();
            old != brokers.iter().map(|b| b.node_id).collect::<Vec<_>>()
        };
        c.set_brokers(brokers.clone());
        let controller = brokers.first().map(|b| b.node_id) == Some(c.node_id);
        if controller && (live_changed || force || self.needs_assignment(&c)) {
            match c.store.balance(session).await {
                Ok(0) => {}
                Ok(n) => tracing::info!("assignment: {n} leadership move(s)"),
                Err(e) => tracing::warn!("assignment failed: {e}"),
            }
        }
        let version = c.store.version().await?;
        if version != c.auth_version.load(Ordering::SeqCst) {
            // SCRAM credentials, ACLs and group configs may have changed through another broker. The version
            // is read before they are: a change committed meanwhile is loaded next tick; a
            // failed load is retried.
            let loaded = self
                .load_scram_credentials()
                .await
                .and(self.load_acls().await)
                .and(self.load_group_configs().await);
            match loaded {
                Ok(()) => c.auth_version.store(version, Ordering::SeqCst),
                Err(e) => {
                    tracing::warn!("SCRAM credentials / ACLs / group configs not reloaded: {e}")
                }
            }
        }
        if force || version != c.version() || self.has_stopped_leader() || self.missing_leader(&c) {
            let snap = c.store.snapshot().await?;
            c.set_view(&snap, brokers);
            self.reconcile(&snap).await;
            self.groups.retire_moved();
        }
        if controller {
            self.collect_garbage(&c).await;
        }
        Ok(())
    }

    /// A unit without a live leader (the controller assigns at once, not only when the set of
    /// live brokers changes).
    fn needs_assignment(&self, c: &Cluster) -> bool {
        let v = c.view();
        let live: HashSet<i32> = v.brokers.iter().map(|b| b.node_id).collect();
        v.leaders
            .values()
            .map(|(l, _)| l)
            .chain(v.slots.iter().map(|(l, _)| l))
            .any(|l| l.is_none_or(|l| !live.contains(&l)))
    }

    /// A partition the view says this broker leads has no local leader under that epoch (its
    /// takeover failed, e.g. the store timed out): reconcile again.
    fn missing_leader(&self, c: &Cluster) -> bool {
        let v = c.view();
        v.leaders.iter().any(|((tid, p), (leader, epoch))| {
            *leader == Some(c.node_id)
                && self
                    .topic_by_id(tid)
                    .is_some_and(|t| t.partition(*p).is_none_or(|part| part.epoch != *epoch))
        })
    }

    /// A local leader stepped down (fenced commit): reconcile to restart it if still ours.
    fn has_stopped_leader(&self) -> bool {
        self.topics()
            .iter()
            .any(|t| t.local_partitions().any(|(_, p)| !p.addr.connected()))
    }

    /// Make the local leaders match the snapshot: start a leader from the committed index for
    /// each partition led here under an epoch no local leader has, stop every other local
    /// leader, and follow topic creations, deletions and config changes.
    async fn reconcile(&self, snap: &Snapshot) {
        let Some(c) = self.cluster.clone() else {
            return;
        };
        let _g = self.admin.lock().await;
        // A snapshot older than one already applied (read before another reconcile ran).
        if snap.version < c.applied_version() {
            return;
        }
        c.set_applied_version(snap.version);
        let mine: HashMap<([u8; 16], i32), i32> = snap
            .leaders
            .iter()
            .filter(|l| l.leader == Some(c.node_id))
            .map(|l| ((l.topic_id, l.partition), l.epoch))
            .collect();
        let wanted: HashMap<&str, &TopicRow> =
            snap.topics.iter().map(|t| (t.name.as_str(), t)).collect();

        // Topics gone (or replaced by a new incarnation of the name).
        for t in self.topics() {
            if wanted.get(t.name.as_str()).is_none_or(|w| w.id != t.id) {
                if let Ok(mut m) = self.topics.write() {
                    m.remove(&t.name);
                }
                for (p, part) in t.local_partitions() {
                    self.stop_leader(&t, p, part).await;
                }
                self.groups.drop_topic(&t.name).await;
                tracing::info!("topic {} deleted", t.name);
            }
        }

        let mut starts: Vec<(Arc<Topic>, i32, i32)> = Vec::new();
        for row in &snap.topics {
            let existing = self.topic(&row.name).filter(|t| t.id == row.id);
            let retention = match &existing {
                Some(t) => {
                    if t.configs != row.configs {
                        if let Ok(mut w) = t.retention.write() {
                            *w = self.retention_of(&row.configs);
                        }
                    }
                    t.retention.clone()
                }
                None => Arc::new(RwLock::new(self.retention_of(&row.configs))),
            };
            let mut partitions: Vec<Option<Partition>> = existing
                .as_ref()
                .map(|t| t.partitions.clone())
                .unwrap_or_default();
            partitions.resize(row.partitions.max(0) as usize, None);
            for (i, slot) in partitions.iter_mut().enumerate() {
                let p = i as i32;
                let want = mine.get(&(row.id, p)).copied();
                let keep = matches!((&slot, want), (Some(part), Some(e)) if part.epoch == e && part.addr.connected());
                if keep {
                    continue;
                }
                if let Some(part) = slot.take() {
                    if let Some(t) = &existing {
                        self.stop_leader(t, p, &part).await;
                    }
                }
                if let Some(e) = want {
                    starts.push((Arc::new(Topic::placeholder(row)), p, e));
                }
            }
            let t = Arc::new(Topic {
                name: row.name.clone(),
                created_ms: row.created_ms,
                log_start: BTreeMap::new(),
                id: row.id,
                partitions,
                configs: row.configs.clone(),
                retention,
            });
            if let Ok(mut m) = self.topics.write() {
                m.insert(row.name.clone(), t);
            }
        }

        // Take over: load each committed index (a few at a time) and start its leader.
        let store = c.store.clone();
        let loaded: Vec<_> = futures::stream::iter(starts)
            .map(|(t, p, e)| {
                let store = store.clone();
                async move {
                    let tp = TopicPartition::with_id(&t.name, t.id, p);
                    let log = store.committed_log(&tp).await;
                    (t, p, e, log)
                }
            })
            .buffer_unordered(TAKEOVER_CONCURRENCY)
            .collect()
            .await;
        for (t, p, e, log) in loaded {
            match log {
                Ok(Some(log)) if log.leader == Some(c.node_id) && log.epoch == e => {
                    self.start_leader(&t.name, p, log);
                }
                Ok(_) => {} // moved on meanwhile: the next refresh sees it.
                Err(e) => tracing::warn!("{}-{p}: could not load the committed index: {e}", t.name),
            }
        }
    }

    /// Start a leader from its committed index and put it into the topic.
    fn start_leader(&self, name: &str, p: i32, log: CommittedLog) {
        let Some(topic) = self.topic(name) else {
            return;
        };
        let next = log.entries.last().map_or(0, |s| s.last + 1);
        if next != log.next_offset {
            tracing::error!(
                "{name}-{p}: committed end {} does not match its index (ends at {next}); not led",
                log.next_offset
            );
            return;
        }
        let part = self.spawn_partition(
            TopicPartition::with_id(name, topic.id, p),
            log.entries,
            Some(log.log_start),
            &topic.retention,
            (log.epoch, Arc::new(log.epochs)),
        );
        tracing::info!(
            "{name}-{p}: leading under epoch {} from offset {}",
            log.epoch,
            log.next_offset
        );
        let mut partitions = topic.partitions.clone();
        if let Some(slot) = partitions.get_mut(p as usize) {
            *slot = Some(part);
        }
        let t = Arc::new(Topic {
            name: topic.name.clone(),
            created_ms: topic.created_ms,
            log_start: topic.log_start.clone(),
            id: topic.id,
            partitions,
            configs: topic.configs.clone(),
            retention: topic.retention.clone(),
        });
        if let Ok(mut m) = self.topics.write() {
            m.insert(name.to_string(), t);
        }
    }

    /// Stop a local leader and wait until the writer holds nothing of it (a later leader of
    /// the same partition on this broker starts from a clean buffer).
    async fn stop_leader(&self, topic: &Topic, p: i32, part: &Partition) {
        let _ = part.addr.send(Stop).await;
        let (tx, rx) = tokio::sync::oneshot::channel();
        let forget = WriterCmd::Forget {
            tp: TopicPartition::with_id(&topic.name, topic.id, p),
            done: Some(tx),
        };
        if self.env.writer.send(forget).await.is_ok() {
            let _ = rx.await;
        }
        tracing::info!(
            "{}-{p}: no longer led here (epoch {})",
            topic.name,
            part.epoch
        );
    }

    /// Delete objects no committed index row refers to any more (controller only): an object
    /// is deleted once it was seen unreferenced for [`GC_GRACE`] (reads planned with it end
    /// first). Every [`ORPHAN_SWEEP`], write-ahead objects the store never recorded that are
    /// older than [`ORPHAN_AGE`] (a crash between a PUT and its commit) are deleted too.
    async fn collect_garbage(&self, c: &Cluster) {
        let found = match c.store.unreferenced_objects(GC_MIN_AGE, 10_000).await {
            Ok(p) => p,
            Err(e) => {
                tracing::debug!("garbage collection: {e}");
                return;
            }
        };
        let due: Vec<String> = {
            let Ok(mut seen) = self.gc_seen.lock() else {
                return;
            };
            let now = Instant::now();
            let found: HashSet<&String> = found.iter().collect();
            seen.retain(|p, _| found.contains(p));
            for p in found {
                seen.entry(p.clone()).or_insert(now);
            }
            seen.iter()
                .filter(|(_, t)| now.duration_since(**t) >= GC_GRACE)
                .map(|(p, _)| p.clone())
                .take(1000)
                .collect()
        };
        if !due.is_empty() {
            match c.store.forget_objects(&due).await {
                Ok(paths) => {
                    for path in paths {
                        if let Ok(mut seen) = self.gc_seen.lock() {
                            seen.remove(&path);
                        }
                        self.cache.remove(&path);
                        if let Err(e) = self.storage.delete(&path).await {
                            tracing::warn!("garbage collection: could not delete {path}: {e}");
                        }
                    }
                }
                Err(e) => tracing::debug!("garbage collection: {e}"),
            }
        }
        let sweep_due = self
            .last_sweep
            .lock()
            .map(|mut t| {
                let due = t.is_none_or(|t| t.elapsed() >= ORPHAN_SWEEP);
                if due {
                    *t = Some(Instant::now());
                }
                due
            })
            .unwrap_or(false);
        if sweep_due {
            self.sweep_orphans(c).await;
        }
    }

    async fn sweep_orphans(&self, c: &Cluster) {
        let now = crate::storage::writer::now_ms();
        // Objects of a live broker process may be between their PUT and their commit: never
        // swept, whatever the clocks say. A process that is not live can commit nothing (its
        // partitions moved with a new epoch when its lease ended).
        let Ok(live) = c.store.live_incarnations(c.session_timeout()).await else {
            return;
        };
        let mut old = Vec::new();
        // Only write-ahead objects named by cluster brokers (`wal/{node}-{incarnation}-{seq}`):
        // nothing else in the bucket is ever guessed to be garbage.
        match self.storage.list("wal").await {
            Ok(objs) => old.extend(
                objs.into_iter()
                    .filter(|o| now - o.last_modified_ms >= ORPHAN_AGE.as_millis() as i64)
                    .filter(|o| {
                        o.path
                            .strip_prefix(crate::storage::wal::WAL_PREFIX)
                            .and_then(|n| n.rsplit_once('-'))
                            .is_some_and(|(owner, _)| {
                                owner.matches('-').count() == 1 && !live.contains(owner)
                            })
                    })
                    .map(|o| o.path),
            ),
            Err(e) => {
                tracing::debug!("orphan sweep: {e}");
                return;
            }
        }
        let mut deleted = 0;
        for chunk in old.chunks(1000) {
            let Ok(known) = c.store.known_objects(chunk).await else {
                return;
            };
            for path in chunk.iter().filter(|p| !known.contains(*p)) {
                if self.storage.delete(path).await.is_ok() {
                    deleted += 1;
                }
            }
        }
        if deleted > 0 {
            tracing::info!("orphan sweep: deleted {deleted} object(s) no commit recorded");
        }
    }

    /// Cluster mode CreateTopics: the topic and its partitions go into the store; the
    /// controller gives them leaders, and every broker follows.
    pub(super) async fn cluster_create_topic(
        &self,
        name: &str,
        partitions: i32,
        replication_factor: i32,
        assignments: &[Vec<i32>],
        configs: BTreeMap<String, String>,
    ) -> Result<Arc<Topic>> {
        let c = self.cluster_ref()?.clone();
        let row = TopicRow {
            id: *uuid::Uuid::new_v4().as_bytes(),
            name: name.to_string(),
            partitions,
            replication_factor,
            configs,
            created_ms: crate::storage::writer::now_ms(),
        };
        c.store
            .create_topic(&row, assignments)
            .await
            .map_err(|e| match e {
                Error::TopicAlreadyExists(n) => {
                    Error::TopicAlreadyExists(format!("topic '{n}' already exists"))
                }
                e => e,
            })?;
        // Leaders are assigned now when this broker is the controller; else within a poll.
        if c.controller() == Some(c.node_id) {
            let _ = c.store.balance(c.session_timeout()).await;
        }
        let topic = Arc::new(Topic::placeholder(&row));
        if let Ok(mut m) = self.topics.write() {
            m.entry(name.to_string()).or_insert_with(|| topic.clone());
        }
        tracing::info!("created topic {name} with {partitions} partition(s)");
        Ok(self.topic(name).unwrap_or(topic))
    }

    /// Wait (briefly) until this broker's view has leaders for every partition of `name`, so
    /// that a CreateTopics answer is followed by a Metadata answer naming them.
    pub async fn await_leaders(&self, name: &str, timeout: Duration) {
        let Some(c) = self.cluster.clone() else {
            return;
        };
        let started = Instant::now();
        while started.elapsed() < timeout {
            if let Ok(snap) = c.store.snapshot().await {
                let topic = snap.topics.iter().find(|t| t.name == name).map(|t| t.id);
                let ready = topic.is_some_and(|id| {
                    snap.leaders
                        .iter()
                        .filter(|l| l.topic_id == id)
                        .all(|l| l.leader.is_some())
                });
                if ready {
                    let brokers = c.brokers();
                    c.set_view(&snap, brokers);
                    self.reconcile(&snap).await;
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Cluster mode DeleteTopics: remove it from the store (index rows with it); every broker
    /// stops its leaders on its next refresh; the objects are collected once unreferenced.
    pub(super) async fn cluster_delete_topic(&self, topic: &Topic) -> Result<()> {
        let c = self.cluster_ref()?.clone();
        if !c.store.delete_topic(&topic.id).await? {
            return Err(Error::UnknownTopicOrPartition);
        }
        if let Ok(snap) = c.store.snapshot().await {
            let brokers = c.brokers();
            c.set_view(&snap, brokers);
            self.reconcile(&snap).await;
        }
        Ok(())
    }

    /// Re-read the store's view now instead of at the next poll: a client may learn of a topic
    /// or a leadership move from another broker before this one's loop saw it, and some of its
    /// requests (ListOffsets in librdkafka) treat UNKNOWN_TOPIC_OR_PARTITION as final.
    /// Single-flight: concurrent callers share one refresh that started after they asked.
    pub async fn catch_up_view(&self) {
        let Some(c) = self.cluster.clone() else {
            return;
        };
        let asked = c.catch_ups_started.load(Ordering::SeqCst);
        let _turn = c.catch_up.lock().await;
        if c.catch_ups_started.load(Ordering::SeqCst) != asked {
            return;
        }
        c.catch_ups_started.fetch_add(1, Ordering::SeqCst);
        if let Ok(snap) = c.store.snapshot().await {
            let brokers = c.brokers();
            c.set_view(&snap, brokers);
            self.reconcile(&snap).await;
        }
    }

    /// Cluster mode: move a partition's leadership to `target` (optionally recording its new
    /// replica list), then follow the store at once. `Ok(None)`: the target is not live or the
    /// partition is gone; `Ok(Some(moved))` otherwise.
    pub async fn move_leader(
        &self,
        topic: &Topic,
        partition: i32,
        target: i32,
        replicas: Option<&[i32]>,
    ) -> Result<Option<bool>> {
        let c = self.cluster_ref()?.clone();
        let r = c
            .store
            .move_leader(&topic.id, partition, target, replicas, c.session_timeout())
            .await?;
        if r.is_some() {
            if let Ok(snap) = c.store.snapshot().await {
                let brokers = c.brokers();
                c.set_view(&snap, brokers);
                self.reconcile(&snap).await;
            }
        }
        Ok(r)
    }

    /// Cluster mode: run the leader assignment now (any broker may: it runs under the store's
    /// assignment lock) and follow the store; gives leaderless partitions a live leader.
    pub async fn assign_now(&self) -> Result<usize> {
        let c = self.cluster_ref()?.clone();
        let n = c.store.balance(c.session_timeout()).await?;
        let snap = c.store.snapshot().await?;
        let brokers = c.brokers();
        c.set_view(&snap, brokers);
        self.reconcile(&snap).await;
        Ok(n)
    }

    /// Graceful leave (SIGTERM): after the final flush, give up the lease so the controller
    /// moves every partition and coordinator slot at once; clients see NOT_LEADER_OR_FOLLOWER
    /// / NOT_COORDINATOR and follow.
    pub async fn leave_cluster(&self) {
        let Some(c) = self.cluster.clone() else {
            return;
        };
        if let Err(e) = c.store.deregister(c.node_id, &c.incarnation).await {
            tracing::warn!("could not leave the cluster cleanly: {e}");
            return;
        }
        // Run the assignment ourselves (we are no longer live, so nothing lands here).
        match c.store.balance(c.session_timeout()).await {
            Ok(n) => tracing::info!("left the cluster: {n} leadership move(s)"),
            Err(e) => tracing::warn!("left the cluster; assignment failed: {e}"),
        }
    }
}

impl Topic {
    /// A topic as the store describes it, with no local leader yet.
    fn placeholder(row: &TopicRow) -> Topic {
        Topic {
            name: row.name.clone(),
            created_ms: row.created_ms,
            log_start: BTreeMap::new(),
            id: row.id,
            partitions: vec![None; row.partitions.max(0) as usize],
            configs: row.configs.clone(),
            retention: Arc::new(RwLock::new(super::Retention {
                ms: -1,
                bytes: -1,
                delete: true,
                compact: None,
            })),
        }
    }
}
