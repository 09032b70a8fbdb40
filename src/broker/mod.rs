//! The broker's shared state: settings, storage, the topic registry with each partition's
//! leader actor, topic creation/deletion (persisted under `meta/topics/`), and start-up
//! recovery (one LIST of the store to rebuild topics, segment indexes and next offsets).

pub mod producer_ids;
pub mod topic;

use crate::config::Settings;
use crate::error::{Error, Result};
use crate::group::state::GroupLimits;
use crate::group::GroupManager;
use crate::log::leader::{LeaderEnv, PartitionLeader, PartitionStats, Retention, Stop};
use crate::log::TopicPartition;
use crate::storage::cache::SegmentCache;
use crate::storage::writer::{SegmentMeta, SegmentWriter, WriterCmd, WriterConfig};
use crate::storage::{parse_segment_path, partition_prefix, topic_meta_path, Storage};
use actix::prelude::*;
use bytes::Bytes;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::sync::watch;
use topic::{validate_config, validate_name, TopicMeta, MAX_PARTITIONS};

/// One partition of a live topic.
#[derive(Clone)]
pub struct Partition {
    pub addr: Addr<PartitionLeader>,
    pub high_watermark: watch::Receiver<i64>,
    pub stats: Arc<PartitionStats>,
}

/// A live topic.
pub struct Topic {
    pub name: String,
    pub created_ms: i64,
    pub log_start: BTreeMap<i32, i64>,
    pub id: [u8; 16],
    pub partitions: Vec<Partition>,
    pub configs: BTreeMap<String, String>,
    pub retention: Arc<RwLock<Retention>>,
}

impl Topic {
    pub fn partition(&self, p: i32) -> Option<&Partition> {
        if p < 0 {
            return None;
        }
        self.partitions.get(p as usize)
    }

    /// The codec the topic's `compression.type` imposes (`None` for `producer`).
    pub fn compression(&self) -> Option<crate::protocol::compression::Codec> {
        self.configs
            .get("compression.type")
            .and_then(|v| crate::protocol::compression::Codec::from_config(v))
            .flatten()
    }

    /// `max.message.bytes` of this topic, if set.
    pub fn max_message_bytes(&self) -> Option<usize> {
        self.configs
            .get("max.message.bytes")
            .and_then(|v| v.parse().ok())
    }
}

/// The broker: everything a handler needs.
pub struct Broker {
    pub settings: Settings,
    pub storage: Storage,
    pub cluster_id: String,
    pub cache: Arc<SegmentCache>,
    pub metrics: Arc<crate::metrics::Metrics>,
    advertised_port: AtomicU16,
    topics: RwLock<HashMap<String, Arc<Topic>>>,
    admin: tokio::sync::Mutex<()>,
    env: LeaderEnv,
    writer: Addr<SegmentWriter>,
    arbiters: Vec<ArbiterHandle>,
    next_arbiter: AtomicUsize,
    pub ready: AtomicBool,
    pub shutting_down: AtomicBool,
    pub groups: GroupManager,
    /// SASL users and mechanisms.
    pub users: Arc<crate::auth::Users>,
    producer_ids: tokio::sync::Mutex<producer_ids::ProducerIds>,
}

impl Broker {
    /// Open storage state: start the SegmentWriter, recover topics and partition logs from the
    /// store (one LIST), and return the broker ready to serve.
    pub async fn start(
        settings: Settings,
        storage: Storage,
        arbiters: Vec<ArbiterHandle>,
        metrics: Arc<crate::metrics::Metrics>,
    ) -> Result<Arc<Broker>> {
        let (writer, writer_tx) = SegmentWriter::start_writer(
            storage.clone(),
            WriterConfig {
                max_batch_bytes: settings.batching.max_batch_size,
                max_batch_messages: settings.batching.max_batch_messages,
                flush_interval: Duration::from_millis(settings.batching.flush_interval_ms),
                zstd_level: settings.performance.compression_level,
            },
            metrics.clone(),
        );
        let cache = Arc::new(SegmentCache::new(settings.storage.segment_cache_bytes));
        let env = LeaderEnv {
            writer: writer_tx,
            storage: storage.clone(),
            cache: cache.clone(),
            hot_total: Arc::new(AtomicUsize::new(0)),
            hot_budget: settings.storage.hot_tail_bytes,
            retention_check: Duration::from_millis(settings.retention.check_interval_ms),
            merge_target_bytes: settings.storage.merge_target_bytes,
            merge_min_segments: settings.storage.merge_min_segments,
            merge_interval: Duration::from_millis(settings.storage.merge_interval_ms),
            zstd_level: settings.performance.compression_level,
        };
        let cluster_id = load_or_create_cluster_id(&storage).await?;
        let pids = producer_ids::ProducerIds::load(&storage).await?;
        let users = Arc::new(
            crate::auth::Users::from_settings(&settings.auth).map_err(Error::InvalidConfig)?,
        );

        let g = &settings.groups;
        let groups = GroupManager::new(
            storage.clone(),
            GroupLimits {
                min_session_timeout: Duration::from_millis(g.min_session_timeout_ms),
                max_session_timeout: Duration::from_millis(g.max_session_timeout_ms),
                max_size: g.max_size,
                initial_rebalance_delay: Duration::from_millis(g.initial_rebalance_delay_ms),
            },
            arbiters.clone(),
        );
        let broker = Arc::new(Broker {
            advertised_port: AtomicU16::new(settings.advertised_port()),
            settings,
            storage,
            cluster_id,
            cache,
            metrics,
            topics: RwLock::new(HashMap::new()),
            admin: tokio::sync::Mutex::new(()),
            env,
            writer,
            arbiters,
            next_arbiter: AtomicUsize::new(0),
            ready: AtomicBool::new(false),
            shutting_down: AtomicBool::new(false),
            groups,
            users,
            producer_ids: tokio::sync::Mutex::new(pids),
        });
        broker.recover().await?;
        let n = broker.groups.recover().await?;
        tracing::info!("recovered {n} consumer group(s)");
        broker.ready.store(true, Ordering::SeqCst);
        Ok(broker)
    }

    pub fn advertised_host(&self) -> &str {
        &self.settings.advertised_host
    }

    pub fn advertised_port(&self) -> u16 {
        self.advertised_port.load(Ordering::Relaxed)
    }

    /// Record the bound port when the listener was bound to port 0 and none was configured.
    pub fn set_bound_port(&self, port: u16) {
        if self.settings.advertised_port.is_none() {
            self.advertised_port.store(port, Ordering::Relaxed);
        }
    }

    /// A producer id never handed out before (InitProducerId).
    pub async fn allocate_producer_id(&self) -> Result<i64> {
        self.producer_ids.lock().await.allocate(&self.storage).await
    }

    pub fn node_id(&self) -> i32 {
        self.settings.node_id
    }

    pub fn topic(&self, name: &str) -> Option<Arc<Topic>> {
        self.topics.read().ok()?.get(name).cloned()
    }

    pub fn topic_by_id(&self, id: &[u8; 16]) -> Option<Arc<Topic>> {
        self.topics
            .read()
            .ok()?
            .values()
            .find(|t| &t.id == id)
            .cloned()
    }

    /// All live topics, sorted by name.
    pub fn topics(&self) -> Vec<Arc<Topic>> {
        let mut v: Vec<_> = self
            .topics
            .read()
            .map(|t| t.values().cloned().collect())
            .unwrap_or_default();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    fn retention_of(&self, configs: &BTreeMap<String, String>) -> Retention {
        let get = |k: &str, d: i64| configs.get(k).and_then(|v| v.parse().ok()).unwrap_or(d);
        Retention {
            ms: get("retention.ms", self.settings.retention.ms),
            bytes: get("retention.bytes", self.settings.retention.bytes),
        }
    }

    fn spawn_topic(
        &self,
        meta: &TopicMeta,
        mut segments: HashMap<i32, Vec<SegmentMeta>>,
    ) -> Result<Arc<Topic>> {
        let id = parse_hex_id(&meta.id)?;
        let retention = Arc::new(RwLock::new(self.retention_of(&meta.configs)));
        let mut partitions = Vec::with_capacity(meta.partitions as usize);
        for p in 0..meta.partitions {
            let segs = segments.remove(&p).unwrap_or_default();
            let start = meta.log_start.get(&p).copied();
            partitions.push(self.spawn_partition(&meta.name, p, segs, start, &retention));
        }
        Ok(Arc::new(Topic {
            name: meta.name.clone(),
            created_ms: meta.created_ms,
            log_start: meta.log_start.clone(),
            id,
            partitions,
            configs: meta.configs.clone(),
            retention,
        }))
    }

    fn spawn_partition(
        &self,
        topic: &str,
        p: i32,
        segments: Vec<SegmentMeta>,
        log_start: Option<i64>,
        retention: &Arc<RwLock<Retention>>,
    ) -> Partition {
        let tp = TopicPartition::new(topic, p);
        let (leader, hw, stats) =
            PartitionLeader::new(tp, segments, log_start, self.env.clone(), retention.clone());
        let addr = if self.arbiters.is_empty() {
            leader.start()
        } else {
            let i = self.next_arbiter.fetch_add(1, Ordering::Relaxed) % self.arbiters.len();
            PartitionLeader::start_in_arbiter(&self.arbiters[i], move |_| leader)
        };
        Partition {
            addr,
            high_watermark: hw,
            stats,
        }
    }

    fn meta_of(topic: &Topic, partitions: i32, configs: BTreeMap<String, String>) -> TopicMeta {
        TopicMeta {
            name: topic.name.clone(),
            id: uuid::Uuid::from_bytes(topic.id).simple().to_string(),
            partitions,
            configs,
            created_ms: topic.created_ms,
            log_start: topic.log_start.clone(),
        }
    }

    fn replace_topic(
        &self,
        old: &Topic,
        configs: BTreeMap<String, String>,
        log_start: BTreeMap<i32, i64>,
    ) -> Arc<Topic> {
        let t = Arc::new(Topic {
            name: old.name.clone(),
            created_ms: old.created_ms,
            log_start,
            id: old.id,
            partitions: old.partitions.clone(),
            configs,
            retention: old.retention.clone(),
        });
        if let Ok(mut m) = self.topics.write() {
            m.insert(old.name.clone(), t.clone());
        }
        t
    }

    /// Replace a topic's dynamic configs (AlterConfigs / IncrementalAlterConfigs): validated,
    /// persisted, then applied (retention at once, compression and size limits on next produce).
    pub async fn set_topic_configs(
        &self,
        name: &str,
        configs: BTreeMap<String, String>,
        validate_only: bool,
    ) -> Result<()> {
        for (k, v) in &configs {
            validate_config(k, v)?;
        }
        if validate_only {
            return self
                .topic(name)
                .map(|_| ())
                .ok_or(Error::UnknownTopicOrPartition);
        }
        let _g = self.admin.lock().await;
        let topic = self.topic(name).ok_or(Error::UnknownTopicOrPartition)?;
        let mut meta = Self::meta_of(&topic, topic.partitions.len() as i32, configs.clone());
        meta.log_start = topic.log_start.clone();
        let doc = serde_json::to_vec_pretty(&meta).map_err(|e| Error::Internal(e.to_string()))?;
        self.storage
            .put_overwrite(&topic_meta_path(name), Bytes::from(doc))
            .await?;
        let r = self.retention_of(&configs);
        if let Ok(mut w) = topic.retention.write() {
            *w = r;
        }
        self.replace_topic(&topic, configs, topic.log_start.clone());
        Ok(())
    }

    /// DeleteRecords on one partition; the new log start offset is persisted in the topic's
    /// metadata before it is reported.
    pub async fn delete_records(&self, name: &str, partition: i32, offset: i64) -> Result<i64> {
        let _g = self.admin.lock().await;
        let topic = self.topic(name).ok_or(Error::UnknownTopicOrPartition)?;
        let part = topic
            .partition(partition)
            .ok_or(Error::UnknownTopicOrPartition)?;
        let low = part
            .addr
            .send(crate::log::leader::DeleteRecords(offset))
            .await
            .map_err(|_| Error::NotLeader)??;
        let mut starts = topic.log_start.clone();
        if starts.get(&partition) != Some(&low) {
            starts.insert(partition, low);
            let mut meta =
                Self::meta_of(&topic, topic.partitions.len() as i32, topic.configs.clone());
            meta.log_start = starts.clone();
            let doc =
                serde_json::to_vec_pretty(&meta).map_err(|e| Error::Internal(e.to_string()))?;
            self.storage
                .put_overwrite(&topic_meta_path(name), Bytes::from(doc))
                .await?;
            self.replace_topic(&topic, topic.configs.clone(), starts);
        }
        Ok(low)
    }

    /// Grow a topic to `count` partitions (CreatePartitions); shrinking is refused.
    pub async fn create_partitions(
        &self,
        name: &str,
        count: i32,
        validate_only: bool,
    ) -> Result<()> {
        let _g = self.admin.lock().await;
        let topic = self.topic(name).ok_or(Error::UnknownTopicOrPartition)?;
        let current = topic.partitions.len() as i32;
        if count <= current {
            return Err(Error::InvalidPartitions(format!(
                "topic currently has {current} partitions, which is not fewer than the requested {count}"
            )));
        }
        if count > MAX_PARTITIONS {
            return Err(Error::InvalidPartitions(format!(
                "number of partitions must be at most {MAX_PARTITIONS}"
            )));
        }
        if validate_only {
            return Ok(());
        }
        let mut meta = Self::meta_of(&topic, count, topic.configs.clone());
        meta.log_start = topic.log_start.clone();
        let doc = serde_json::to_vec_pretty(&meta).map_err(|e| Error::Internal(e.to_string()))?;
        self.storage
            .put_overwrite(&topic_meta_path(name), Bytes::from(doc))
            .await?;
        let mut partitions = topic.partitions.clone();
        for p in current..count {
            partitions.push(self.spawn_partition(name, p, Vec::new(), None, &topic.retention));
        }
        let grown = Arc::new(Topic {
            name: topic.name.clone(),
            created_ms: topic.created_ms,
            log_start: topic.log_start.clone(),
            id: topic.id,
            partitions,
            configs: topic.configs.clone(),
            retention: topic.retention.clone(),
        });
        if let Ok(mut t) = self.topics.write() {
            t.insert(name.to_string(), grown);
        }
        tracing::info!("topic {name} grown from {current} to {count} partitions");
        Ok(())
    }

    /// Validate a topic creation without doing it.
    pub fn check_create(
        &self,
        name: &str,
        partitions: i32,
        configs: &BTreeMap<String, String>,
    ) -> Result<()> {
        validate_name(name)?;
        if !(1..=MAX_PARTITIONS).contains(&partitions) {
            return Err(Error::InvalidPartitions(format!(
                "number of partitions must be between 1 and {MAX_PARTITIONS}, got {partitions}"
            )));
        }
        for (k, v) in configs {
            validate_config(k, v)?;
        }
        if self.topic(name).is_some() {
            return Err(Error::TopicAlreadyExists(format!(
                "topic '{name}' already exists"
            )));
        }
        Ok(())
    }

    /// Create a topic: persist its metadata, then start its partition leaders.
    pub async fn create_topic(
        &self,
        name: &str,
        partitions: i32,
        configs: BTreeMap<String, String>,
    ) -> Result<Arc<Topic>> {
        let _g = self.admin.lock().await;
        self.check_create(name, partitions, &configs)?;
        let id = uuid::Uuid::new_v4();
        let meta = TopicMeta {
            name: name.to_string(),
            id: id.simple().to_string(),
            partitions,
            configs,
            created_ms: crate::storage::writer::now_ms(),
            log_start: BTreeMap::new(),
        };
        let doc = serde_json::to_vec_pretty(&meta).map_err(|e| Error::Internal(e.to_string()))?;
        self.storage
            .put_overwrite(&topic_meta_path(name), Bytes::from(doc))
            .await?;
        let topic = self.spawn_topic(&meta, HashMap::new())?;
        if let Ok(mut t) = self.topics.write() {
            t.insert(name.to_string(), topic.clone());
        }
        tracing::info!("created topic {name} with {partitions} partition(s)");
        Ok(topic)
    }

    /// Delete a topic: forget it, stop its leaders, delete its metadata, then its segments.
    pub async fn delete_topic(&self, name: &str) -> Result<()> {
        let _g = self.admin.lock().await;
        let topic = self
            .topics
            .write()
            .ok()
            .and_then(|mut t| t.remove(name))
            .ok_or(Error::UnknownTopicOrPartition)?;
        for (i, p) in topic.partitions.iter().enumerate() {
            let _ = p.addr.send(Stop).await;
            let _ = self
                .env
                .writer
                .send(WriterCmd::Forget {
                    tp: TopicPartition::new(name, i as i32),
                })
                .await;
        }
        self.storage.delete(&topic_meta_path(name)).await?;
        for p in 0..topic.partitions.len() as i32 {
            for obj in self.storage.list(&partition_prefix(name, p)).await? {
                self.cache.remove(&obj.path);
                self.storage.delete(&obj.path).await?;
            }
        }
        self.groups.drop_topic(name).await;
        tracing::info!("deleted topic {name}");
        Ok(())
    }

    /// Rebuild topics and partition indexes from the store: list `meta/topics/` and `data/`
    /// once each. Segments covered by a larger one (a merge interrupted before it deleted its
    /// inputs) are dropped; segments of topics without metadata (a deletion interrupted after
    /// its metadata went) are deleted.
    async fn recover(&self) -> Result<()> {
        let mut metas = Vec::new();
        for obj in self.storage.list("meta/topics").await? {
            if !obj.path.ends_with(".json") {
                continue;
            }
            let data = self.storage.get(&obj.path).await?;
            match serde_json::from_slice::<TopicMeta>(&data) {
                Ok(m) => metas.push(m),
                Err(e) => tracing::error!("ignoring unreadable topic metadata {}: {e}", obj.path),
            }
        }
        let mut segs: HashMap<String, HashMap<i32, Vec<SegmentMeta>>> = HashMap::new();
        for obj in self.storage.list("data").await? {
            let Some((topic, p, base, last)) = parse_segment_path(&obj.path) else {
                continue;
            };
            segs.entry(topic)
                .or_default()
                .entry(p)
                .or_default()
                .push(SegmentMeta {
                    base,
                    last,
                    path: obj.path,
                    size: obj.size,
                    max_timestamp: None,
                    written_ms: obj.last_modified_ms,
                });
        }
        let mut stale = Vec::new();
        for meta in &metas {
            let mut parts = segs.remove(&meta.name).unwrap_or_default();
            for list in parts.values_mut() {
                let (keep, drop) = resolve_overlaps(std::mem::take(list));
                *list = keep;
                stale.extend(drop);
            }
            let topic = self.spawn_topic(meta, parts)?;
            if let Ok(mut t) = self.topics.write() {
                t.insert(meta.name.clone(), topic);
            }
        }
        for (topic, parts) in segs {
            tracing::warn!("deleting segments of topic {topic}, which has no metadata");
            stale.extend(parts.into_values().flatten());
        }
        for s in stale {
            self.storage.delete(&s.path).await?;
        }
        tracing::info!(
            "recovered {} topic(s) from {}",
            metas.len(),
            self.storage.describe()
        );
        Ok(())
    }

    /// Flush every buffered append and wait for the writes (graceful shutdown).
    pub async fn flush_all(&self) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        if self
            .env
            .writer
            .send(WriterCmd::FlushAll { done: tx })
            .await
            .is_ok()
        {
            let _ = rx.await;
        }
    }

    pub fn hot_tail_bytes(&self) -> usize {
        self.env.hot_total.load(Ordering::Relaxed)
    }

    pub fn writer_addr(&self) -> &Addr<SegmentWriter> {
        &self.writer
    }
}

/// Split recovered segments into those to keep (non-overlapping, covering) and stale ones.
pub fn resolve_overlaps(mut list: Vec<SegmentMeta>) -> (Vec<SegmentMeta>, Vec<SegmentMeta>) {
    list.sort_by(|a, b| a.base.cmp(&b.base).then(b.last.cmp(&a.last)));
    let mut keep: Vec<SegmentMeta> = Vec::new();
    let mut drop = Vec::new();
    for s in list {
        match keep.last() {
            Some(k) if s.base <= k.last => {
                if s.last <= k.last {
                    drop.push(s);
                } else {
                    // Partial overlap: keep the part that continues the log.
                    tracing::warn!(
                        "segment {} overlaps {}; keeping both, reads prefer the earlier",
                        s.path,
                        k.path
                    );
                    keep.push(s);
                }
            }
            _ => keep.push(s),
        }
    }
    (keep, drop)
}

fn parse_hex_id(s: &str) -> Result<[u8; 16]> {
    let u =
        uuid::Uuid::parse_str(s).map_err(|e| Error::Internal(format!("bad topic id {s}: {e}")))?;
    Ok(*u.as_bytes())
}

async fn load_or_create_cluster_id(storage: &Storage) -> Result<String> {
    const PATH: &str = "meta/cluster.json";
    if let Some(b) = storage.get_opt(PATH).await? {
        let v: serde_json::Value =
            serde_json::from_slice(&b).map_err(|e| Error::Internal(e.to_string()))?;
        if let Some(id) = v.get("cluster_id").and_then(|v| v.as_str()) {
            return Ok(id.to_string());
        }
    }
    let id = topic::base64url_id(uuid::Uuid::new_v4().as_bytes());
    let doc = serde_json::json!({ "cluster_id": id });
    storage
        .put_overwrite(PATH, Bytes::from(doc.to_string()))
        .await?;
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(base: i64, last: i64) -> SegmentMeta {
        SegmentMeta {
            base,
            last,
            path: format!("{base}-{last}"),
            size: 1,
            max_timestamp: None,
            written_ms: 0,
        }
    }

    #[test]
    fn merged_segment_wins_over_its_inputs() {
        let (keep, drop) = resolve_overlaps(vec![s(0, 9), s(10, 19), s(0, 19), s(20, 29)]);
        assert_eq!(keep.iter().map(|s| s.base).collect::<Vec<_>>(), vec![0, 20]);
        assert_eq!(drop.len(), 2);
    }
}
