//! The broker's shared state: settings, storage, the topic registry with each partition's
//! leader actor, topic creation/deletion (persisted under `meta/topics/`), and start-up
//! recovery (one LIST of the store to rebuild topics, segment indexes and next offsets).

mod cluster;
mod compactor;
pub mod fetch_sessions;
pub mod producer_ids;
pub mod topic;

use crate::config::Settings;
use crate::error::{Error, Result};
use crate::group::state::GroupLimits;
use crate::group::GroupManager;
use crate::log::leader::{LeaderEnv, PartitionLeader, PartitionStats, Retention, Stop};
use crate::log::partition::CompactPolicy;
use crate::log::TopicPartition;
use crate::storage::cache::SegmentCache;
use crate::storage::wal::{self, WalIndex, WalObjectDoc};
use crate::storage::writer::{SegmentMeta, SegmentWriter, WriterCmd, WriterConfig};
use crate::storage::{
    hex_id, parse_segment_path, partition_prefix, quarantine_path, tombstone_path, topic_id_prefix,
    topic_meta_path, Storage,
};
use actix::prelude::*;
use bytes::Bytes;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio::sync::watch;
use topic::{validate_config, validate_name, TopicMeta, MAX_PARTITIONS};

/// The internal topic Kafka keeps group offsets in. Here group state lives in the
/// coordinators' own store; the name is reserved and listed as internal (see
/// [`Broker::offsets_topic_partitions`]).
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

/// Where a standalone broker keeps the SCRAM credentials managed through the Kafka API.
pub const SCRAM_CREDENTIALS_PATH: &str = "meta/scram_credentials.json";

/// Where a standalone broker keeps the ACLs (cluster mode: the metadata store).
pub const ACLS_PATH: &str = "meta/acls.json";
/// The ACLs' document in the cluster metadata store.
const ACLS_DOCUMENT: &str = "acls";

/// Where a standalone broker keeps the group configs (cluster mode: the metadata store).
pub const GROUP_CONFIGS_PATH: &str = "meta/group_configs.json";
/// The group configs' document in the cluster metadata store.
const GROUP_CONFIGS_DOCUMENT: &str = "group_configs";

/// How a persisted document is read and written (`from_json`, `to_json`).
type DocumentCodec<T> = (
    fn(&[u8]) -> std::result::Result<T, String>,
    fn(&T) -> String,
);

/// One partition of a live topic.
#[derive(Clone)]
pub struct Partition {
    pub addr: Addr<PartitionLeader>,
    pub high_watermark: watch::Receiver<i64>,
    pub stats: Arc<PartitionStats>,
    /// The leader epoch this broker leads the partition under (0 in standalone mode).
    pub epoch: i32,
    /// The partition's epochs with their start offsets, oldest first (cluster mode; empty in
    /// standalone mode, where epoch 0 is the only one).
    pub epochs: Arc<Vec<(i32, i64)>>,
}

/// A live topic.
pub struct Topic {
    pub name: String,
    pub created_ms: i64,
    pub log_start: BTreeMap<i32, i64>,
    pub id: [u8; 16],
    /// Every partition of the topic; `None` where another broker leads it (cluster mode).
    pub partitions: Vec<Option<Partition>>,
    pub configs: BTreeMap<String, String>,
    pub retention: Arc<RwLock<Retention>>,
}

impl Topic {
    /// The partition's leader when this broker leads it.
    pub fn partition(&self, p: i32) -> Option<&Partition> {
        if p < 0 {
            return None;
        }
        self.partitions.get(p as usize)?.as_ref()
    }

    /// The partition's leader on this broker: UNKNOWN_TOPIC_OR_PARTITION for a partition the
    /// topic does not have, NOT_LEADER_OR_FOLLOWER for one another broker leads.
    pub fn local(&self, p: i32) -> Result<&Partition> {
        if p < 0 || p as usize >= self.partitions.len() {
            return Err(Error::UnknownTopicOrPartition);
        }
        self.partitions[p as usize].as_ref().ok_or(Error::NotLeader)
    }

    pub fn partition_count(&self) -> i32 {
        self.partitions.len() as i32
    }

    /// The partitions this broker leads, with their index.
    pub fn local_partitions(&self) -> impl Iterator<Item = (i32, &Partition)> {
        self.partitions
            .iter()
            .enumerate()
            .filter_map(|(i, p)| Some((i as i32, p.as_ref()?)))
    }

    /// The codec the topic's `compression.type` imposes (`None` for `producer`).
    pub fn compression(&self) -> Option<crate::protocol::compression::Codec> {
        self.configs
            .get("compression.type")
            .and_then(|v| crate::protocol::compression::Codec::from_config(v))
            .flatten()
    }

    /// Whether `cleanup.policy` includes `compact`.
    pub fn is_compacted(&self) -> bool {
        self.configs
            .get("cleanup.policy")
            .is_some_and(|v| v.split(',').any(|p| p.trim() == "compact"))
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
    /// This broker's node id (configured, or assigned by the metadata store).
    node_id: i32,
    /// Cluster mode: membership and the routing view; `None` for a standalone broker.
    pub cluster: Option<Arc<crate::cluster::Cluster>>,
    /// Cluster mode, controller: unreferenced objects and since when they were seen so.
    gc_seen: Mutex<HashMap<String, std::time::Instant>>,
    /// Cluster mode, controller: the last orphan sweep.
    last_sweep: Mutex<Option<std::time::Instant>>,
    pub storage: Storage,
    pub cluster_id: String,
    pub cache: Arc<SegmentCache>,
    pub metrics: Arc<crate::metrics::Metrics>,
    /// The bound listeners (the first one is this broker's primary address).
    pub listeners: Vec<crate::network::ListenerInfo>,
    topics: RwLock<HashMap<String, Arc<Topic>>>,
    admin: tokio::sync::Mutex<()>,
    /// Names whose deletion is still running (CreateTopics for them answers a retriable error).
    deleting: std::sync::Mutex<HashSet<String>>,
    env: LeaderEnv,
    writer: Addr<SegmentWriter>,
    arbiters: Vec<ArbiterHandle>,
    next_arbiter: AtomicUsize,
    pub ready: AtomicBool,
    pub shutting_down: AtomicBool,
    pub groups: GroupManager,
    /// SASL users and mechanisms.
    pub users: Arc<crate::auth::Users>,
    /// ACL authorization (a no-op unless `authorization.enabled`).
    pub authorizer: crate::auth::acl::Authorizer,
    /// Per-group config overrides (ConfigResource GROUP).
    pub group_configs: crate::group::configs::GroupConfigStore,
    producer_ids: tokio::sync::Mutex<producer_ids::ProducerIds>,
    /// Decompressed bytes produce validation may hold at once (`max_decompressed_bytes_in_flight`).
    pub decode_budget: crate::protocol::records::DecodeBudget,
    /// Incremental fetch sessions (KIP-227).
    pub fetch_sessions: Mutex<fetch_sessions::FetchSessions>,
    /// Produced bytes not yet durable, in KiB permits (`max_unflushed_bytes`): a Produce takes
    /// its frame's size before it is read further and gives it back once durable.
    pub unflushed: Arc<tokio::sync::Semaphore>,
    /// The transaction coordinator (standalone mode; unset in cluster mode, which refuses
    /// transactional ids).
    pub transactions: std::sync::OnceLock<Addr<crate::txn::coordinator::TxnCoordinator>>,
    /// What Produce checks transactional records against (kept by the coordinator).
    pub txn_index: Arc<Mutex<crate::txn::coordinator::TxnIndex>>,
    unflushed_total_kib: u32,
}

impl Broker {
    /// Open storage state: start the SegmentWriter, recover topics and partition logs from the
    /// store (one LIST), and return the broker ready to serve.
    pub async fn start(
        settings: Settings,
        storage: Storage,
        arbiters: Vec<ArbiterHandle>,
        metrics: Arc<crate::metrics::Metrics>,
        listeners: Vec<crate::network::ListenerInfo>,
    ) -> Result<Arc<Broker>> {
        if listeners.is_empty() {
            return Err(Error::InvalidConfig("no listener".into()));
        }
        let sessions = fetch_sessions::FetchSessions::new(
            settings.fetch_session_cache_slots,
            settings.max_partitions,
        );
        let decode_budget =
            crate::protocol::records::DecodeBudget::new(settings.max_decompressed_bytes_in_flight);
        let (cluster, cluster_id) = match &settings.cluster.metadata_store {
            Some(dsn) => {
                let (c, id) = cluster::join(&settings, dsn, &listeners).await?;
                (Some(c), Some(id))
            }
            None => (None, None),
        };
        let node_id = cluster
            .as_ref()
            .map_or(settings.node_id.unwrap_or(1), |c| c.node_id);
        let wal = Arc::new(Mutex::new(match &cluster {
            // Cluster mode: object names carry the node id and this process's incarnation,
            // so no two brokers (or two runs of one) ever write the same name.
            Some(c) => WalIndex::with_prefix(format!("{}-{}-", c.node_id, c.incarnation)),
            None => WalIndex::new(0),
        }));
        let (writer, writer_tx) = SegmentWriter::start_writer(
            storage.clone(),
            WriterConfig {
                max_batch_bytes: settings.batching.max_batch_size,
                max_batch_messages: settings.batching.max_batch_messages,
                flush_interval: Duration::from_millis(settings.flush_interval_ms()),
                zstd_level: settings.performance.compression_level,
                max_object_bytes: settings.storage.max_object_bytes,
                max_in_flight: if settings.storage_is_s3() { 4 } else { 1 },
                decode_budget: decode_budget.clone(),
                cluster: cluster.clone(),
            },
            wal.clone(),
            metrics.clone(),
        );
        let cache = Arc::new(SegmentCache::new(settings.storage.segment_cache_bytes));
        // Transactional ids (standalone mode; cluster mode does not serve transactions yet).
        let (txn_docs, txn_in_use) = match &cluster {
            None => crate::txn::coordinator::load(&storage).await?,
            Some(_) => (Vec::new(), false),
        };
        let txn_index: Arc<Mutex<crate::txn::coordinator::TxnIndex>> = Default::default();
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
            wal,
            zstd_level: settings.performance.compression_level,
            producer_expiration: Duration::from_millis(settings.producer_id_expiration_ms),
            cluster: cluster.clone(),
            compaction_delay_ms: settings.compaction_delay_ms() as i64,
            transactions_in_use: Arc::new(AtomicBool::new(txn_in_use)),
            txn_index: txn_index.clone(),
        };
        let cluster_id = match cluster_id {
            Some(id) => id,
            None => load_or_create_cluster_id(&storage).await?,
        };
        let pids = if cluster.is_some() {
            producer_ids::ProducerIds::empty()
        } else {
            producer_ids::ProducerIds::load(&storage).await?
        };
        let authorizer = crate::auth::acl::Authorizer::new(&settings.authorization);
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
                consumer_session_timeout: Duration::from_millis(g.consumer_session_timeout_ms),
                consumer_heartbeat_interval: Duration::from_millis(
                    g.consumer_heartbeat_interval_ms,
                ),
            },
            arbiters.clone(),
            cluster.clone(),
        );
        let unflushed_total_kib = u32::try_from(settings.max_unflushed_bytes / 1024)
            .unwrap_or(u32::MAX)
            .clamp(1, tokio::sync::Semaphore::MAX_PERMITS as u32);
        let broker = Arc::new(Broker {
            node_id,
            cluster,
            gc_seen: Mutex::new(HashMap::new()),
            last_sweep: Mutex::new(None),
            listeners,
            settings,
            storage,
            cluster_id,
            cache,
            metrics,
            topics: RwLock::new(HashMap::new()),
            admin: tokio::sync::Mutex::new(()),
            deleting: std::sync::Mutex::new(HashSet::new()),
            env,
            writer,
            arbiters,
            next_arbiter: AtomicUsize::new(0),
            ready: AtomicBool::new(false),
            shutting_down: AtomicBool::new(false),
            groups,
            users,
            authorizer,
            group_configs: Default::default(),
            producer_ids: tokio::sync::Mutex::new(pids),
            decode_budget,
            fetch_sessions: Mutex::new(sessions),
            unflushed: Arc::new(tokio::sync::Semaphore::new(unflushed_total_kib as usize)),
            unflushed_total_kib,
            transactions: std::sync::OnceLock::new(),
            txn_index,
        });
        broker.load_scram_credentials().await?;
        broker.load_acls().await?;
        broker.load_group_configs().await?;
        if broker.cluster.is_some() {
            broker.start_cluster().await?;
            broker.ready.store(true, Ordering::SeqCst);
            return Ok(broker);
        }
        broker.recover().await?;
        broker.write_checkpoint().await;
        let interval = Duration::from_millis(broker.settings.storage.checkpoint_interval_ms.max(1));
        let weak = Arc::downgrade(&broker);
        actix::spawn(async move {
            loop {
                tokio::time::sleep(interval).await;
                let Some(b) = weak.upgrade() else { break };
                b.write_checkpoint().await;
            }
        });
        let interval = Duration::from_millis(broker.settings.storage.merge_interval_ms.max(1));
        let weak = Arc::downgrade(&broker);
        actix::spawn(async move {
            loop {
                tokio::time::sleep(interval).await;
                let Some(b) = weak.upgrade() else { break };
                if b.shutting_down.load(Ordering::Relaxed) {
                    break;
                }
                b.compact_due().await;
            }
        });
        let n = broker.groups.recover().await?;
        tracing::info!("recovered {n} consumer group(s)");
        // After the partitions and groups: transactions prepared before a restart write their
        // markers and offsets now.
        let ids = txn_docs.len();
        let coordinator = crate::txn::coordinator::TxnCoordinator::new(
            Arc::downgrade(&broker),
            broker.storage.clone(),
            txn_docs,
            broker.txn_index.clone(),
            txn_in_use,
        )
        .start();
        let _ = broker.transactions.set(coordinator);
        tracing::info!("recovered {ids} transactional id(s)");
        broker.ready.store(true, Ordering::SeqCst);
        Ok(broker)
    }

    /// Load the managed SCRAM credentials (start-up; cluster mode: whenever the store's
    /// version moved).
    pub async fn load_scram_credentials(&self) -> Result<()> {
        let doc = match &self.cluster {
            Some(c) => c.store.scram_credentials().await?.map(String::into_bytes),
            None => self
                .storage
                .get_opt(SCRAM_CREDENTIALS_PATH)
                .await?
                .map(|b| b.to_vec()),
        };
        if let Some(doc) = doc {
            let creds = crate::auth::credentials::from_json(&doc).map_err(Error::Internal)?;
            self.users.set_managed(creds);
        }
        Ok(())
    }

    /// A persisted document: the metadata store's row `document` in cluster mode, the object
    /// `path` standalone (`None` when it was never written).
    async fn read_document(&self, document: &str, path: &str) -> Result<Option<Vec<u8>>> {
        Ok(match &self.cluster {
            Some(c) => c.store.document(document).await?.map(String::into_bytes),
            None => self.storage.get_opt(path).await?.map(|b| b.to_vec()),
        })
    }

    /// For DescribeAcls / DescribeConfigs in cluster mode: the store's current `document`,
    /// parsed (the default when it was never written), so that a change made through another
    /// broker a moment ago is described before this broker's next poll applies it. `None`
    /// standalone (the local copy is the store) or when the store cannot be read (logged): the
    /// caller answers from its local copy.
    async fn stored_for_describe<T: Default>(
        &self,
        document: &str,
        parse: fn(&[u8]) -> std::result::Result<T, String>,
    ) -> Option<T> {
        let c = self.cluster.as_ref()?;
        match c.store.document(document).await {
            Ok(Some(doc)) => match parse(doc.as_bytes()) {
                Ok(v) => Some(v),
                Err(e) => {
                    tracing::warn!("stored {document} unreadable: {e}");
                    None
                }
            },
            Ok(None) => Some(T::default()),
            Err(e) => {
                tracing::warn!("metadata store unreachable, describing the local {document}: {e}");
                None
            }
        }
    }

    /// Load the ACLs (start-up; cluster mode: whenever the store's version moved).
    pub async fn load_acls(&self) -> Result<()> {
        if let Some(doc) = self.read_document(ACLS_DOCUMENT, ACLS_PATH).await? {
            let acls = crate::auth::acl::from_json(&doc).map_err(Error::Internal)?;
            self.authorizer.set(acls);
        }
        Ok(())
    }

    /// Load the group configs (start-up; cluster mode: whenever the store's version moved).
    pub async fn load_group_configs(&self) -> Result<()> {
        if let Some(doc) = self
            .read_document(GROUP_CONFIGS_DOCUMENT, GROUP_CONFIGS_PATH)
            .await?
        {
            let c = crate::group::configs::from_json(&doc).map_err(Error::Internal)?;
            self.group_configs.set(c);
        }
        Ok(())
    }

    /// Change the group configs: `f` maps the current overrides to the next ones (or an
    /// error, which changes nothing). Persisted like the ACLs (see [`Self::alter_acls`])
    /// before they are used or answered; `validate_only` checks without storing.
    pub async fn alter_group_configs(
        &self,
        validate_only: bool,
        f: impl FnOnce(
                &crate::group::configs::GroupConfigs,
            ) -> Result<crate::group::configs::GroupConfigs>
            + Send,
    ) -> Result<()> {
        use crate::group::configs::{check_size, from_json, to_json};
        let f = |current: &crate::group::configs::GroupConfigs| -> Result<crate::group::configs::GroupConfigs> {
            let next = f(current)?;
            check_size(&next)?;
            Ok(next)
        };
        if validate_only {
            f(&self.group_configs.get())?;
            return Ok(());
        }
        let (next, ()) = self
            .alter_document(
                GROUP_CONFIGS_DOCUMENT,
                GROUP_CONFIGS_PATH,
                (from_json, to_json),
                || self.group_configs.get(),
                |current| Ok((f(current)?, ())),
            )
            .await?;
        if let Some(next) = next {
            self.group_configs.set(next);
        }
        Ok(())
    }

    /// The group configs as DescribeConfigs and ListConfigResources answer them (see
    /// [`Self::stored_for_describe`]).
    pub async fn group_configs_for_describe(
        &self,
    ) -> std::sync::Arc<crate::group::configs::GroupConfigs> {
        match self
            .stored_for_describe(GROUP_CONFIGS_DOCUMENT, crate::group::configs::from_json)
            .await
        {
            Some(all) => std::sync::Arc::new(all),
            None => self.group_configs.get(),
        }
    }

    /// The session timeout and heartbeat interval of consumer-protocol group `group`.
    pub fn consumer_group_timeouts(
        &self,
        group: &str,
    ) -> (std::time::Duration, std::time::Duration) {
        let all = self.group_configs.get();
        crate::group::configs::consumer_timeouts(&self.settings.groups, all.get(group))
    }

    /// The ACLs as DescribeAcls answers them (see [`Self::stored_for_describe`]).
    pub async fn acls_for_describe(&self) -> std::sync::Arc<crate::auth::acl::Acls> {
        match self
            .stored_for_describe(ACLS_DOCUMENT, crate::auth::acl::from_json)
            .await
        {
            Some(acls) => std::sync::Arc::new(acls),
            None => self.authorizer.acls(),
        }
    }

    /// Change the ACLs: `f` maps the current set to the next one (and a result). The new set
    /// is persisted (the metadata store in cluster mode, where concurrent changes through other
    /// brokers serialize on its row; `meta/acls.json` standalone) before it is used or
    /// answered.
    pub async fn alter_acls<R: Send>(
        &self,
        f: impl FnOnce(&crate::auth::acl::Acls) -> (crate::auth::acl::Acls, R) + Send,
    ) -> Result<R> {
        use crate::auth::acl::{from_json, to_json};
        let (next, r) = self
            .alter_document(
                ACLS_DOCUMENT,
                ACLS_PATH,
                (from_json, to_json),
                || self.authorizer.acls(),
                |current| Ok(f(current)),
            )
            .await?;
        if let Some(next) = next {
            self.authorizer.set(next);
        }
        Ok(r)
    }

    /// Change a persisted document (ACLs, group configs): `f` maps the current value to the
    /// next one and a result (or an error, which changes nothing). In cluster mode inside the
    /// metadata store's transaction on its row (concurrent changes through other brokers
    /// serialize there); standalone under the admin lock against `local()`, written to `path`
    /// only when it changed. Returns the value to install (`None`: unchanged) once it is
    /// durable.
    async fn alter_document<T, R>(
        &self,
        document: &str,
        path: &str,
        (parse, serialize): DocumentCodec<T>,
        local: impl FnOnce() -> Arc<T>,
        f: impl FnOnce(&T) -> Result<(T, R)> + Send,
    ) -> Result<(Option<T>, R)>
    where
        T: Default + PartialEq + Send,
        R: Send,
    {
        if let Some(c) = &self.cluster {
            let (next, r) = c
                .store
                .alter_document(document, |current| {
                    let current = match current {
                        Some(d) => parse(d.as_bytes()).map_err(Error::Internal)?,
                        None => T::default(),
                    };
                    let (next, r) = f(&current)?;
                    Ok((serialize(&next), (next, r)))
                })
                .await?;
            return Ok((Some(next), r));
        }
        let _g = self.admin.lock().await;
        let current = local();
        let (next, r) = f(&current)?;
        if next == *current {
            return Ok((None, r));
        }
        self.storage
            .put_overwrite(path, Bytes::from(serialize(&next)))
            .await?;
        Ok((Some(next), r))
    }

    /// AlterUserScramCredentials: apply the changes, persist the result (the store in cluster
    /// mode, `meta/scram_credentials.json` standalone), then use it. Per user: (user, error
    /// code, message).
    pub async fn alter_scram_credentials(
        &self,
        changes: Vec<crate::auth::credentials::Change>,
    ) -> Result<Vec<(String, i16, Option<String>)>> {
        use crate::auth::credentials::{apply, from_json, to_json};
        if let Some(c) = &self.cluster {
            let (creds, results) = c
                .store
                .alter_scram_credentials(|current| {
                    let current = match current {
                        Some(d) => from_json(d.as_bytes()).map_err(Error::Internal)?,
                        None => Default::default(),
                    };
                    let (next, results) = apply(&current, &changes);
                    Ok((to_json(&next), (next, results)))
                })
                .await?;
            self.users.set_managed(creds);
            return Ok(results);
        }
        let _g = self.admin.lock().await;
        let current = self.users.managed();
        let (next, results) = apply(&current, &changes);
        if next != current {
            self.storage
                .put_overwrite(SCRAM_CREDENTIALS_PATH, Bytes::from(to_json(&next)))
                .await?;
            self.users.set_managed(next);
        }
        Ok(results)
    }

    /// The advertised host of the first listener (this broker's primary address).
    pub fn advertised_host(&self) -> &str {
        &self.listeners[0].advertised_host
    }

    pub fn advertised_port(&self) -> u16 {
        self.listeners[0].advertised_port
    }

    /// A broker's address as clients of `listener` must use it: this broker's own listener of
    /// that name; another broker's registered listener of that name (cluster mode); else its
    /// primary address.
    pub fn endpoint_on(
        &self,
        mut info: crate::cluster::store::BrokerInfo,
        listener: &str,
    ) -> crate::cluster::store::BrokerInfo {
        if info.node_id == self.node_id {
            if let Some(l) = self.listeners.iter().find(|l| l.name() == listener) {
                info.host = l.advertised_host.clone();
                info.port = i32::from(l.advertised_port);
            }
            return info;
        }
        let theirs = info
            .listeners
            .as_deref()
            .and_then(|l| crate::network::listeners::parse(l).ok())
            .and_then(|ls| ls.into_iter().find(|e| e.protocol.name() == listener));
        if let Some(e) = theirs {
            info.host = e.host;
            info.port = i32::from(e.port);
        }
        info
    }

    /// [`Broker::live_brokers`] with the addresses of `listener`.
    pub fn live_brokers_on(&self, listener: &str) -> Vec<crate::cluster::store::BrokerInfo> {
        self.live_brokers()
            .into_iter()
            .map(|b| self.endpoint_on(b, listener))
            .collect()
    }

    /// This broker's advertised listeners as a Kafka listener list.
    pub fn advertised_listeners(&self) -> String {
        self.listeners
            .iter()
            .map(|l| format!("{}://{}:{}", l.name(), l.advertised_host, l.advertised_port))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// A transactional id exists: partition leaders started from now on rebuild their
    /// transaction state from storage.
    pub fn mark_transactions_in_use(&self) {
        self.env.transactions_in_use.store(true, Ordering::Relaxed);
    }

    /// A producer id never handed out before (InitProducerId).
    pub async fn allocate_producer_id(&self) -> Result<i64> {
        let mut ids = self.producer_ids.lock().await;
        match &self.cluster {
            Some(c) => ids.allocate_from_store(&c.store).await,
            None => ids.allocate(&self.storage).await,
        }
    }

    /// KiB of the unflushed budget a Produce frame of `len` bytes takes (at most all of it).
    pub fn unflushed_kib(&self, len: usize) -> u32 {
        u32::try_from(len / 1024 + 1)
            .unwrap_or(u32::MAX)
            .min(self.unflushed_total_kib)
    }

    /// Bytes of the unflushed budget in use.
    pub fn unflushed_bytes(&self) -> usize {
        (self.unflushed_total_kib as usize - self.unflushed.available_permits()) * 1024
    }

    pub fn node_id(&self) -> i32 {
        self.node_id
    }

    /// The brokers clients may talk to: every live broker in cluster mode, else this one.
    pub fn live_brokers(&self) -> Vec<crate::cluster::store::BrokerInfo> {
        let me = || crate::cluster::store::BrokerInfo {
            node_id: self.node_id,
            host: self.advertised_host().to_string(),
            port: i32::from(self.advertised_port()),
            rack: self.settings.cluster.rack.clone(),
            listeners: Some(self.advertised_listeners()),
        };
        match &self.cluster {
            None => vec![me()],
            Some(c) => {
                let b = c.brokers();
                if b.is_empty() {
                    vec![me()]
                } else {
                    b
                }
            }
        }
    }

    /// Whether a replica assignment names distinct live brokers (at least one). Replicas are
    /// nominal: every broker reads the same object store, and the partition's leader is
    /// placed by the cluster's assignment (standalone: this broker is the only one).
    pub fn valid_replicas(&self, ids: &[i32]) -> bool {
        let live: HashSet<i32> = self.live_brokers().iter().map(|b| b.node_id).collect();
        let distinct: HashSet<i32> = ids.iter().copied().collect();
        !ids.is_empty() && distinct.len() == ids.len() && ids.iter().all(|i| live.contains(i))
    }

    /// The controller's node id (this broker in standalone mode).
    pub fn controller_id(&self) -> i32 {
        self.cluster
            .as_ref()
            .and_then(|c| c.controller())
            .unwrap_or(self.node_id)
    }

    /// A partition's nominal replicas (its leader first).
    pub fn replicas(&self, topic: &Topic, partition: i32, leader: i32) -> Vec<i32> {
        match &self.cluster {
            None => vec![leader],
            Some(c) => c.replicas(&topic.id, partition, leader),
        }
    }

    /// A partition's replica list as given at creation or by a reassignment (cluster mode;
    /// `None` when none was given: its leader is then its first replica).
    pub fn assigned_replicas(&self, topic: &Topic, partition: i32) -> Option<Vec<i32>> {
        self.cluster.as_ref()?.assigned(&topic.id, partition)
    }

    /// A partition's leader (-1 when it has none right now) and leader epoch.
    pub fn leader_of(&self, topic: &Topic, p: i32) -> (i32, i32) {
        match &self.cluster {
            None => (self.node_id, 0),
            Some(c) => match c.leader_of(&topic.id, p) {
                Some((Some(l), e)) if c.broker(l).is_some() => (l, e),
                Some((_, e)) => (-1, e),
                None => (-1, 0),
            },
        }
    }

    /// The partitions of the internal topic `__consumer_offsets` as (leader, leader epoch):
    /// standalone one partition led by this broker (it coordinates every group); in cluster
    /// mode one per coordinator slot, led by the slot's broker (-1 while it has none), as
    /// Kafka places groups on the partitions of `__consumer_offsets`. The topic is a view of
    /// where group offsets live: its log reads as empty and cannot be written to.
    pub fn offsets_topic_partitions(&self) -> Vec<(i32, i32)> {
        match &self.cluster {
            None => vec![(self.node_id, 0)],
            Some(c) => c
                .slot_leaders()
                .into_iter()
                .map(|(l, e)| (l.unwrap_or(-1), e))
                .collect(),
        }
    }

    /// The topic id of `__consumer_offsets`: derived from the cluster id, so every broker of a
    /// cluster (and every restart) reports the same one.
    pub fn offsets_topic_id(&self) -> [u8; 16] {
        let mut id = *b"__consumer_offs\x01";
        for (i, b) in self.cluster_id.bytes().enumerate() {
            id[i % 16] = id[i % 16].rotate_left(3) ^ b;
        }
        id
    }

    /// Whether this broker leads every one of these (topic, partition)s. In cluster mode a
    /// handler that finds it does not calls [`Broker::catch_up_view`] before answering: the
    /// client may have learnt of a topic or move from a broker whose view is newer.
    pub fn leads_all<'a>(&self, mut wanted: impl Iterator<Item = (&'a str, i32)>) -> bool {
        wanted.all(|(name, p)| {
            name == OFFSETS_TOPIC || self.topic(name).is_some_and(|t| t.local(p).is_ok())
        })
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
        let policy = configs
            .get("cleanup.policy")
            .map_or("delete", |v| v.as_str());
        let has = |p: &str| policy.split(',').any(|x| x.trim() == p);
        let float = |k: &str, d: f64| configs.get(k).and_then(|v| v.parse().ok()).unwrap_or(d);
        Retention {
            ms: get("retention.ms", self.settings.retention.ms),
            bytes: get("retention.bytes", self.settings.retention.bytes),
            delete: has("delete"),
            compact: has("compact").then(|| CompactPolicy {
                delete_retention_ms: get("delete.retention.ms", 86_400_000),
                min_lag_ms: get("min.compaction.lag.ms", 0),
                max_lag_ms: get("max.compaction.lag.ms", i64::MAX),
                min_dirty_ratio: float("min.cleanable.dirty.ratio", 0.5),
            }),
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
            partitions.push(Some(self.spawn_partition(
                TopicPartition::with_id(&meta.name, id, p),
                segs,
                start,
                &retention,
                (0, Arc::new(Vec::new())),
            )));
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
        tp: TopicPartition,
        segments: Vec<SegmentMeta>,
        log_start: Option<i64>,
        retention: &Arc<RwLock<Retention>>,
        (epoch, epochs): (i32, Arc<Vec<(i32, i64)>>),
    ) -> Partition {
        let (leader, hw, stats) = PartitionLeader::new(
            tp,
            segments,
            log_start,
            self.env.clone(),
            retention.clone(),
            epoch,
        );
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
            epoch,
            epochs,
        }
    }

    fn meta_of(topic: &Topic, partitions: i32, configs: BTreeMap<String, String>) -> TopicMeta {
        TopicMeta {
            name: topic.name.clone(),
            id: hex_id(&topic.id),
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
        if let Some(c) = &self.cluster {
            c.store.set_topic_configs(&topic.id, &configs).await?;
        } else {
            let mut meta = Self::meta_of(&topic, topic.partitions.len() as i32, configs.clone());
            meta.log_start = topic.log_start.clone();
            let doc =
                serde_json::to_vec_pretty(&meta).map_err(|e| Error::Internal(e.to_string()))?;
            self.storage
                .put_overwrite(&topic_meta_path(name), Bytes::from(doc))
                .await?;
        }
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
        if self.cluster.is_some() {
            // The leader commits the new log start to the metadata store before answering.
            let topic = self.topic(name).ok_or(Error::UnknownTopicOrPartition)?;
            let part = topic.local(partition)?;
            return part
                .addr
                .send(crate::log::leader::DeleteRecords(offset))
                .await
                .map_err(|_| Error::NotLeader)?;
        }
        let _g = self.admin.lock().await;
        let topic = self.topic(name).ok_or(Error::UnknownTopicOrPartition)?;
        let part = topic.local(partition)?;
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
        assignments: &[Vec<i32>],
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
        self.check_partition_budget(count - current)?;
        if validate_only {
            return Ok(());
        }
        if let Some(c) = self.cluster.clone() {
            c.store
                .grow_topic(&topic.id, current, count, assignments)
                .await?;
            drop(_g);
            if c.controller() == Some(c.node_id) {
                let _ = c.store.balance(c.session_timeout()).await;
            }
            self.await_leaders(name, Duration::from_secs(5)).await;
            tracing::info!("topic {name} grown from {current} to {count} partitions");
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
            partitions.push(Some(self.spawn_partition(
                TopicPartition::with_id(name, topic.id, p),
                Vec::new(),
                None,
                &topic.retention,
                (0, Arc::new(Vec::new())),
            )));
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
        if name == OFFSETS_TOPIC {
            return Err(Error::TopicAlreadyExists(format!(
                "'{OFFSETS_TOPIC}' is the broker's internal topic of group offsets"
            )));
        }
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
        if self.deleting.lock().is_ok_and(|d| d.contains(name)) {
            return Err(Error::TopicDeletionInProgress(name.to_string()));
        }
        self.check_partition_budget(partitions)?;
        Ok(())
    }

    /// Partitions of all live topics together.
    pub fn partition_count(&self) -> usize {
        self.topics
            .read()
            .map(|t| t.values().map(|t| t.partitions.len()).sum())
            .unwrap_or(0)
    }

    /// Refuse `more` partitions beyond the broker-wide cap (`max_partitions`).
    fn check_partition_budget(&self, more: i32) -> Result<()> {
        let max = self.settings.max_partitions;
        let now = self.partition_count();
        if now + more.max(0) as usize > max {
            return Err(Error::LimitReached(format!(
                "the broker serves {now} partitions; {more} more would exceed max_partitions = {max}"
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
        self.create_topic_replicated(name, partitions, 1, &[], configs)
            .await
    }

    /// Create a topic with a (nominal) replication factor: cluster mode reports that many
    /// replicas in Metadata; standalone has one broker, so 1.
    pub async fn create_topic_replicated(
        &self,
        name: &str,
        partitions: i32,
        replication_factor: i32,
        assignments: &[Vec<i32>],
        configs: BTreeMap<String, String>,
    ) -> Result<Arc<Topic>> {
        if self.cluster.is_some() {
            self.check_create(name, partitions, &configs)?;
            let t = self
                .cluster_create_topic(name, partitions, replication_factor, assignments, configs)
                .await?;
            self.await_leaders(name, Duration::from_secs(5)).await;
            return Ok(self.topic(name).unwrap_or(t));
        }
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

    /// Delete a topic. Under the admin lock: a tombstone naming its id is written, its
    /// metadata deleted and the name marked as being deleted. Then, without the lock: its
    /// leaders stop (waiting for a merge in flight), the SegmentWriter drops its buffers and
    /// answers once no write of them is in flight, and only then are its objects listed and
    /// deleted; the tombstone goes last. A crash anywhere in between leaves the tombstone, and
    /// recovery finishes the deletion of exactly that topic id's objects.
    pub async fn delete_topic(&self, name: &str) -> Result<()> {
        if name == OFFSETS_TOPIC {
            return Err(Error::InvalidTopic(format!(
                "the internal topic {OFFSETS_TOPIC} cannot be deleted"
            )));
        }
        if self.cluster.is_some() {
            let topic = self.topic(name).ok_or(Error::UnknownTopicOrPartition)?;
            self.cluster_delete_topic(&topic).await?;
            tracing::info!("deleted topic {name}");
            return Ok(());
        }
        let topic = {
            let _g = self.admin.lock().await;
            let topic = self.topic(name).ok_or(Error::UnknownTopicOrPartition)?;
            let tomb = serde_json::json!({ "name": name, "id": hex_id(&topic.id) });
            self.storage
                .put_overwrite(&tombstone_path(&topic.id), Bytes::from(tomb.to_string()))
                .await?;
            self.storage.delete(&topic_meta_path(name)).await?;
            if let Ok(mut d) = self.deleting.lock() {
                d.insert(name.to_string());
            }
            if let Ok(mut t) = self.topics.write() {
                t.remove(name);
            }
            topic
        };
        let res = self.purge_topic(&topic).await;
        if let Ok(mut d) = self.deleting.lock() {
            d.remove(name);
        }
        res?;
        self.groups.drop_topic(name).await;
        tracing::info!("deleted topic {name}");
        Ok(())
    }

    /// Stop a deleted topic's partitions, wait for their writes, delete their objects and
    /// finally the tombstone.
    async fn purge_topic(&self, topic: &Topic) -> Result<()> {
        for (i, p) in topic.local_partitions() {
            let _ = p.addr.send(Stop).await;
            let (tx, rx) = tokio::sync::oneshot::channel();
            let forget = WriterCmd::Forget {
                tp: TopicPartition::with_id(&topic.name, topic.id, i),
                done: Some(tx),
            };
            if self.env.writer.send(forget).await.is_ok() {
                let _ = rx.await;
            }
        }
        // Its parts of write-ahead objects: objects no other partition needs go too.
        let mut paths = self
            .env
            .wal
            .lock()
            .map(|mut w| w.release_topic(&topic.id))
            .unwrap_or_default();
        paths.extend(
            self.storage
                .list(&topic_id_prefix(&topic.name, &topic.id))
                .await?
                .into_iter()
                .map(|o| o.path),
        );
        // Segments written before topic ids were part of the layout belong to this topic too.
        for p in 0..topic.partitions.len() as i32 {
            let legacy = partition_prefix(&TopicPartition::new(&topic.name, p));
            paths.extend(
                self.storage
                    .list(&legacy)
                    .await?
                    .into_iter()
                    .map(|o| o.path),
            );
        }
        for path in paths {
            self.cache.remove(&path);
            self.storage.delete(&path).await?;
        }
        self.storage.delete(&tombstone_path(&topic.id)).await
    }

    /// Rebuild topics and partition indexes from the store: list `meta/` and `data/` once each.
    ///
    /// - An unreadable topic document is moved to `meta/quarantine/` and its topic is not
    ///   served; none of its data is touched.
    /// - Segments contained in a larger segment of the same partition (a merge interrupted
    ///   before it deleted its inputs) are deleted: the larger one holds every offset they hold.
    /// - Segments of a topic id with a tombstone (`meta/deleted/`) finish their deletion.
    /// - Segments of a topic that has neither metadata nor a tombstone are kept and reported:
    ///   a missing document proves nothing, so nothing is deleted on a guess.
    async fn recover(&self) -> Result<()> {
        let mut metas = Vec::new();
        for obj in self.storage.list("meta/topics").await? {
            if !obj.path.ends_with(".json") {
                continue;
            }
            let data = self.storage.get(&obj.path).await?;
            let parsed = serde_json::from_slice::<TopicMeta>(&data)
                .map_err(|e| e.to_string())
                .and_then(|m| parse_hex_id(&m.id).map(|_| m).map_err(|e| e.to_string()));
            match parsed {
                Ok(m) => metas.push(m),
                Err(e) => {
                    let aside = quarantine_path(&obj.path, crate::storage::writer::now_ms());
                    tracing::error!(
                        "topic metadata {} is unreadable ({e}); moved to {aside}, the topic is \
                         not served and its data is kept untouched",
                        obj.path
                    );
                    self.storage.put_overwrite(&aside, data).await?;
                    self.storage.delete(&obj.path).await?;
                }
            }
        }
        let mut tombstones: HashSet<[u8; 16]> = HashSet::new();
        for obj in self.storage.list("meta/deleted").await? {
            let id = obj
                .path
                .rsplit('/')
                .next()
                .and_then(|f| f.strip_suffix(".json"))
                .and_then(|h| parse_hex_id(h).ok());
            if let Some(id) = id {
                tombstones.insert(id);
            }
        }
        // A deletion that crashed between its tombstone and the metadata's removal: finish it.
        let mut finished = Vec::new();
        metas.retain(|m| {
            let dead = parse_hex_id(&m.id).is_ok_and(|id| tombstones.contains(&id));
            if dead {
                finished.push(topic_meta_path(&m.name));
            }
            !dead
        });
        for path in finished {
            tracing::info!("finishing an interrupted deletion: {path}");
            self.storage.delete(&path).await?;
        }
        let by_name: HashMap<String, [u8; 16]> = metas
            .iter()
            .filter_map(|m| Some((m.name.clone(), parse_hex_id(&m.id).ok()?)))
            .collect();
        // topic id → partition → segments
        let mut segs: HashMap<[u8; 16], HashMap<i32, Vec<SegmentMeta>>> = HashMap::new();
        let mut doomed = Vec::new();
        let mut unowned: BTreeMap<String, usize> = BTreeMap::new();
        for obj in self.storage.list("data").await? {
            if obj.path.ends_with(".tmp") {
                // A local write interrupted before it was linked into place: never durable.
                doomed.push(obj.path);
                continue;
            }
            let Some(sp) = parse_segment_path(&obj.path) else {
                continue;
            };
            let live = by_name.get(&sp.topic).copied();
            let owner = match sp.topic_id {
                Some(id) if tombstones.contains(&id) => {
                    doomed.push(obj.path);
                    continue;
                }
                Some(id) if live == Some(id) => id,
                None if live.is_some() => live.unwrap_or_default(),
                _ => {
                    *unowned.entry(sp.topic.clone()).or_default() += 1;
                    continue;
                }
            };
            segs.entry(owner)
                .or_default()
                .entry(sp.partition)
                .or_default()
                .push(SegmentMeta {
                    base: sp.base,
                    last: sp.last,
                    path: obj.path,
                    size: obj.size,
                    max_timestamp: None,
                    written_ms: obj.last_modified_ms,
                    wal: None,
                });
        }
        for (topic, n) in unowned {
            tracing::warn!(
                "{n} segment(s) of topic {topic} belong to no known topic (no metadata, no \
                 deletion record); kept, not served"
            );
        }
        // Each partition's table-layout segments, then where its log continues.
        let mut next: HashMap<([u8; 16], i32), i64> = HashMap::new();
        for (id, parts) in segs.iter_mut() {
            for (p, list) in parts.iter_mut() {
                let (keep, drop) = resolve_overlaps(std::mem::take(list));
                *list = keep;
                doomed.extend(drop.into_iter().map(|s| s.path));
                if let Some(last) = list.last() {
                    next.insert((*id, *p), last.last + 1);
                }
            }
        }
        let partitions: HashMap<[u8; 16], i32> = metas
            .iter()
            .filter_map(|m| Some((parse_hex_id(&m.id).ok()?, m.partitions)))
            .collect();
        let objects = self.recover_wal_objects(&mut doomed).await?;
        let plan = wal::plan_recovery(objects, next, |id| {
            if tombstones.contains(id) {
                wal::Owner::Deleted
            } else if let Some(n) = partitions.get(id) {
                wal::Owner::Live(*n)
            } else {
                wal::Owner::Unknown
            }
        });
        for ((id, p), entries) in plan.parts {
            segs.entry(id)
                .or_default()
                .entry(p)
                .or_default()
                .extend(entries);
        }
        if let Ok(mut w) = self.env.wal.lock() {
            for (doc, live) in plan.keep {
                w.add(doc.seq, doc.size, doc.written_ms, doc.parts, Some(live));
            }
        }
        if !plan.orphans.is_empty() {
            tracing::info!(
                "{} write-ahead object(s) hold nothing any partition needs; deleting",
                plan.orphans.len()
            );
        }
        doomed.extend(plan.orphans);
        for meta in &metas {
            let id = parse_hex_id(&meta.id)?;
            let parts = segs.remove(&id).unwrap_or_default();
            let topic = self.spawn_topic(meta, parts)?;
            if let Ok(mut t) = self.topics.write() {
                t.insert(meta.name.clone(), topic);
            }
        }
        for path in doomed {
            self.storage.delete(&path).await?;
        }
        for id in tombstones {
            self.storage.delete(&tombstone_path(&id)).await?;
        }
        tracing::info!(
            "recovered {} topic(s) from {}",
            metas.len(),
            self.storage.describe()
        );
        Ok(())
    }

    /// The write-ahead objects in the store, described by the checkpoint where it knows them
    /// and by their footers (read concurrently) where it does not. An object whose footer
    /// cannot be read is reported and kept, never deleted on a guess.
    async fn recover_wal_objects(&self, doomed: &mut Vec<String>) -> Result<Vec<WalObjectDoc>> {
        use futures::StreamExt;
        let checkpoint: Option<wal::CheckpointDoc> =
            match self.storage.get_opt(wal::CHECKPOINT_PATH).await? {
                None => None,
                Some(b) => match serde_json::from_slice(&b) {
                    Ok(d) => Some(d),
                    Err(e) => {
                        tracing::warn!("ignoring an unreadable write-ahead checkpoint: {e}");
                        None
                    }
                },
            };
        let mut known: HashMap<u64, WalObjectDoc> = HashMap::new();
        let mut next_seq = 0;
        if let Some(c) = checkpoint {
            next_seq = c.next_seq;
            known.extend(c.objects.into_iter().map(|o| (o.seq, o)));
        }
        let mut docs = Vec::new();
        let mut unknown = Vec::new();
        for obj in self.storage.list("wal").await? {
            if obj.path.ends_with(".tmp") {
                doomed.push(obj.path);
                continue;
            }
            let Some(seq) = wal::parse_wal_path(&obj.path) else {
                continue;
            };
            next_seq = next_seq.max(seq + 1);
            match known.remove(&seq) {
                Some(d) => docs.push(d),
                None => unknown.push((seq, obj)),
            }
        }
        let read = unknown.len();
        let cache = self.cache.clone();
        let storage = self.storage.clone();
        let mut footers = futures::stream::iter(unknown)
            .map(|(seq, obj)| {
                let (cache, storage) = (cache.clone(), storage.clone());
                async move {
                    let parts = cache
                        .object(&storage, &obj.path, obj.size)
                        .await
                        .and_then(|i| i.wal_parts());
                    (seq, obj, parts)
                }
            })
            .buffer_unordered(16);
        while let Some((seq, obj, parts)) = footers.next().await {
            match parts {
                Ok(Some(parts)) => docs.push(WalObjectDoc {
                    seq,
                    size: obj.size,
                    written_ms: obj.last_modified_ms,
                    parts,
                    released: Vec::new(),
                }),
                Ok(None) | Err(_) => {
                    tracing::error!(
                    "write-ahead object {} has no readable partition list ({}); kept, not served",
                    obj.path,
                    parts.err().map_or("not a write-ahead object".into(), |e| e.to_string())
                )
                }
            }
        }
        if let Ok(mut w) = self.env.wal.lock() {
            *w = WalIndex::new(next_seq);
        }
        tracing::info!(
            "write-ahead objects: {} listed, {read} footer(s) read (the rest from the checkpoint)",
            docs.len()
        );
        Ok(docs)
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
        self.write_checkpoint().await;
    }

    /// Write the write-ahead index checkpoint if it changed since the last one.
    pub async fn write_checkpoint(&self) {
        let doc = self
            .env
            .wal
            .lock()
            .ok()
            .and_then(|mut w| w.take_checkpoint());
        let Some(doc) = doc else { return };
        if let Err(e) = self.storage.put_overwrite(wal::CHECKPOINT_PATH, doc).await {
            tracing::warn!("could not checkpoint the write-ahead index: {e}");
            if let Ok(mut w) = self.env.wal.lock() {
                w.mark_dirty();
            }
        }
    }

    /// Write-ahead objects still needed, and their bytes.
    pub fn wal_stats(&self) -> (usize, u64) {
        self.env.wal.lock().map(|w| w.stats()).unwrap_or((0, 0))
    }

    pub fn hot_tail_bytes(&self) -> usize {
        self.env.hot_total.load(Ordering::Relaxed)
    }

    pub fn writer_addr(&self) -> &Addr<SegmentWriter> {
        &self.writer
    }
}

/// Split recovered segments into those to keep and those another segment makes redundant.
///
/// Only a segment whose every offset another kept segment holds (a merge's input next to the
/// merged output) is dropped; partial overlaps keep both (reads prefer the earlier).
pub fn resolve_overlaps(mut list: Vec<SegmentMeta>) -> (Vec<SegmentMeta>, Vec<SegmentMeta>) {
    // Equal ranges (a compacted topic's segment and its cleaned rewrite): the greater path
    // (the newest generation) wins.
    list.sort_by(|a, b| {
        a.base
            .cmp(&b.base)
            .then(b.last.cmp(&a.last))
            .then(b.path.cmp(&a.path))
    });
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
            wal: None,
        }
    }

    #[test]
    fn merged_segment_wins_over_its_inputs() {
        let (keep, drop) = resolve_overlaps(vec![s(0, 9), s(10, 19), s(0, 19), s(20, 29)]);
        assert_eq!(keep.iter().map(|s| s.base).collect::<Vec<_>>(), vec![0, 20]);
        assert_eq!(drop.len(), 2);
    }
}
