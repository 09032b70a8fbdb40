//! The cluster metadata store on PostgreSQL: schema migrations, broker registrations and
//! heartbeats, topics, per-partition leader + leader epoch, the committed partition index
//! (which offsets live in which object), group coordinator slots, committed group offsets and
//! producer-id blocks. Every statement that acknowledges data checks the leader epoch in the
//! same transaction: that commit is the linearization point of a produce.
//!
//! Time comes from PostgreSQL (`now()`), so brokers' clocks never decide liveness.

use super::assign::Unit;
use crate::error::{Error, Result};
use crate::group::CommittedOffset;
use crate::log::TopicPartition;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Timeouts};
use std::collections::{BTreeMap, HashSet};
use std::time::Duration;
use tokio_postgres::NoTls;

/// Advisory lock key that serializes migrations (arbitrary constant: "heraclit").
const MIGRATION_LOCK: i64 = 0x6865_7261_636c_6974;
/// Advisory lock key that serializes leader assignment.
const BALANCE_LOCK: i64 = 0x6865_7261_6261_6c61;
/// Every store call gives up after this long (a paused or unreachable PostgreSQL must not
/// wedge a flush forever: the flush fails and is retried by the client).
pub const STATEMENT_TIMEOUT: Duration = Duration::from_secs(5);

/// Versioned migrations, applied in order, each in its own transaction, once.
const MIGRATIONS: &[(i32, &str)] = &[
    (
        1,
        r#"
CREATE TABLE cluster_meta (
  singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  cluster_id text NOT NULL,
  version bigint NOT NULL DEFAULT 0,
  next_producer_id bigint NOT NULL DEFAULT 0
);
CREATE TABLE brokers (
  node_id int PRIMARY KEY,
  address text NOT NULL,
  host text NOT NULL,
  port int NOT NULL,
  rack text,
  incarnation text NOT NULL,
  heartbeat timestamptz NOT NULL,
  live boolean NOT NULL
);
CREATE TABLE topics (
  topic_id bytea PRIMARY KEY,
  name text NOT NULL UNIQUE,
  partitions int NOT NULL,
  replication_factor int NOT NULL DEFAULT 1,
  configs jsonb NOT NULL,
  created_ms bigint NOT NULL
);
CREATE TABLE partitions (
  topic_id bytea NOT NULL REFERENCES topics ON DELETE CASCADE,
  partition int NOT NULL,
  leader int,
  leader_epoch int NOT NULL DEFAULT 0,
  replicas text,
  next_offset bigint NOT NULL DEFAULT 0,
  log_start bigint NOT NULL DEFAULT 0,
  PRIMARY KEY (topic_id, partition)
);
CREATE TABLE leader_epochs (
  topic_id bytea NOT NULL,
  partition int NOT NULL,
  epoch int NOT NULL,
  start_offset bigint NOT NULL,
  PRIMARY KEY (topic_id, partition, epoch),
  FOREIGN KEY (topic_id, partition) REFERENCES partitions ON DELETE CASCADE
);
CREATE TABLE wal_objects (
  path text PRIMARY KEY,
  size bigint NOT NULL,
  node_id int NOT NULL,
  created timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE log_entries (
  topic_id bytea NOT NULL,
  partition int NOT NULL,
  base_offset bigint NOT NULL,
  last_offset bigint NOT NULL,
  path text NOT NULL,
  size bigint NOT NULL,
  max_timestamp bigint,
  written_ms bigint NOT NULL,
  first_group int,
  groups int,
  object_size bigint,
  PRIMARY KEY (topic_id, partition, base_offset),
  FOREIGN KEY (topic_id, partition) REFERENCES partitions ON DELETE CASCADE
);
CREATE INDEX log_entries_path ON log_entries (path);
CREATE TABLE coordinators (
  slot int PRIMARY KEY,
  leader int,
  leader_epoch int NOT NULL DEFAULT 0
);
CREATE TABLE group_offsets (
  group_id bytea NOT NULL,
  topic text NOT NULL,
  partition int NOT NULL,
  committed_offset bigint NOT NULL,
  leader_epoch int NOT NULL,
  metadata bytea,
  commit_ms bigint NOT NULL,
  PRIMARY KEY (group_id, topic, partition)
);
"#,
    ),
    (
        2,
        // Every advertised listener of a broker, as a Kafka listener list.
        "ALTER TABLE brokers ADD COLUMN IF NOT EXISTS listeners text",
    ),
    (
        3,
        // SCRAM credentials managed through the Kafka API: one JSON document.
        "CREATE TABLE IF NOT EXISTS scram_credentials (id int PRIMARY KEY, doc text NOT NULL)",
    ),
    (
        4,
        // Cluster-wide documents changed through the Kafka API (the ACLs), by name.
        "CREATE TABLE IF NOT EXISTS documents (name text PRIMARY KEY, doc text NOT NULL)",
    ),
];

/// A registered broker as clients see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerInfo {
    pub node_id: i32,
    /// The address of its first listener.
    pub host: String,
    pub port: i32,
    pub rack: Option<String>,
    /// Every advertised listener (`SSL://host:port,…`); `None` from brokers that registered
    /// before listeners existed (their one address is `host:port`).
    pub listeners: Option<String>,
}

/// A topic as the store holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct TopicRow {
    pub id: [u8; 16],
    pub name: String,
    pub partitions: i32,
    /// Nominal: data lives in the object store; Metadata reports this many replicas.
    pub replication_factor: i32,
    pub configs: BTreeMap<String, String>,
    pub created_ms: i64,
}

/// One partition's leadership.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaderRow {
    pub topic_id: [u8; 16],
    pub partition: i32,
    pub leader: Option<i32>,
    pub epoch: i32,
    /// A replica assignment given at creation (nominal: reported in Metadata).
    pub replicas: Option<Vec<i32>>,
}

fn parse_replicas(s: Option<String>) -> Option<Vec<i32>> {
    s.map(|s| s.split(',').filter_map(|x| x.parse().ok()).collect())
}

fn format_replicas(r: &[Vec<i32>]) -> Vec<Option<String>> {
    r.iter()
        .map(|ids| {
            (!ids.is_empty()).then(|| {
                ids.iter()
                    .map(|i| i.to_string())
                    .collect::<Vec<_>>()
                    .join(",")
            })
        })
        .collect()
}

/// Everything a broker needs to route requests: refreshed whenever `version` moves.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub version: i64,
    pub topics: Vec<TopicRow>,
    pub leaders: Vec<LeaderRow>,
    /// Coordinator slot → (leader, epoch).
    pub slots: Vec<(Option<i32>, i32)>,
}

/// A partition's committed state, read when a broker takes over its leadership.
#[derive(Debug, Clone)]
pub struct CommittedLog {
    pub epoch: i32,
    pub leader: Option<i32>,
    pub next_offset: i64,
    pub log_start: i64,
    pub entries: Vec<crate::storage::writer::SegmentMeta>,
    /// (epoch, start offset), oldest first.
    pub epochs: Vec<(i32, i64)>,
}

/// One partition's share of a flush, to be committed.
#[derive(Debug, Clone)]
pub struct PartCommit {
    pub tp: TopicPartition,
    pub epoch: i32,
    pub base: i64,
    pub last: i64,
    pub bytes: u64,
    pub max_timestamp: i64,
    pub first_group: u32,
    pub groups: u32,
}

fn db(e: impl std::fmt::Display) -> Error {
    Error::Storage(format!("metadata store: {e}"))
}

/// PostgreSQL errors say only "db error" in their Display; the server's message is in the
/// source chain.
trait Detailed {
    fn detailed(self) -> Error;
}

impl Detailed for tokio_postgres::Error {
    fn detailed(self) -> Error {
        match self.as_db_error() {
            Some(d) => db(format!("{}: {}", d.code().code(), d.message())),
            None => db(self),
        }
    }
}

async fn timed<T>(f: impl std::future::Future<Output = Result<T>>) -> Result<T> {
    tokio::time::timeout(STATEMENT_TIMEOUT, f)
        .await
        .map_err(|_| db("timed out"))?
}

fn id_of(v: &[u8]) -> [u8; 16] {
    let mut id = [0u8; 16];
    if v.len() == 16 {
        id.copy_from_slice(v);
    }
    id
}

/// A pool of connections to the metadata store.
#[derive(Clone, Debug)]
pub struct Store {
    pool: Pool,
}

impl Store {
    /// Connect (lazily: the first statement opens a connection).
    pub fn connect(dsn: &str) -> Result<Store> {
        let mut cfg: tokio_postgres::Config = dsn
            .parse()
            .map_err(|e| Error::InvalidConfig(format!("cluster.metadata_store: {e}")))?;
        cfg.connect_timeout(Duration::from_secs(5));
        cfg.keepalives(true);
        cfg.keepalives_idle(Duration::from_secs(10));
        if cfg.get_application_name().is_none() {
            cfg.application_name("heraclitus");
        }
        let mgr = Manager::from_config(
            cfg,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(mgr)
            .max_size(32)
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .timeouts(Timeouts {
                wait: Some(STATEMENT_TIMEOUT),
                create: Some(STATEMENT_TIMEOUT),
                recycle: Some(STATEMENT_TIMEOUT),
            })
            .build()
            .map_err(db)?;
        Ok(Store { pool })
    }

    async fn client(&self) -> Result<deadpool_postgres::Object> {
        self.pool.get().await.map_err(db)
    }

    /// Create or upgrade the schema. Several brokers starting at once serialize on an advisory
    /// lock; each migration runs in its own transaction and is recorded.
    pub async fn migrate(&self) -> Result<()> {
        let mut c = self.client().await?;
        c.execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
            .await
            .map_err(Detailed::detailed)?;
        let res = async {
            c.batch_execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version int PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())",
            )
            .await
            .map_err(Detailed::detailed)?;
            for (version, sql) in MIGRATIONS {
                let done = c
                    .query_opt("SELECT 1 FROM schema_migrations WHERE version = $1", &[version])
                    .await
                    .map_err(Detailed::detailed)?
                    .is_some();
                if done {
                    continue;
                }
                let tx = c.transaction().await.map_err(Detailed::detailed)?;
                tx.batch_execute(sql).await.map_err(Detailed::detailed)?;
                tx.execute("INSERT INTO schema_migrations (version) VALUES ($1)", &[version])
                    .await
                    .map_err(Detailed::detailed)?;
                tx.commit().await.map_err(Detailed::detailed)?;
                tracing::info!("metadata store: applied schema migration {version}");
            }
            Ok::<_, Error>(())
        }
        .await;
        let _ = c
            .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
            .await;
        res
    }

    /// The cluster id, created on first use; also makes sure `slots` coordinator rows exist.
    pub async fn init_cluster(&self, proposed_id: &str, slots: i32) -> Result<String> {
        timed(async {
            let c = self.client().await?;
            c.execute(
                "INSERT INTO cluster_meta (cluster_id) VALUES ($1) ON CONFLICT DO NOTHING",
                &[&proposed_id],
            )
            .await
            .map_err(Detailed::detailed)?;
            c.execute(
                "INSERT INTO coordinators (slot) SELECT generate_series(0, $1 - 1) ON CONFLICT DO NOTHING",
                &[&slots],
            )
            .await
            .map_err(Detailed::detailed)?;
            let row = c
                .query_one("SELECT cluster_id FROM cluster_meta", &[])
                .await
                .map_err(Detailed::detailed)?;
            Ok(row.get(0))
        })
        .await
    }

    /// Register this broker process. With `node_id` given, claim it (refused while another
    /// live process holds it); without, reuse the id last registered for `address` or take
    /// the next free one. Returns the node id.
    pub async fn register(
        &self,
        node_id: Option<i32>,
        info: &BrokerInfo,
        incarnation: &str,
        session: Duration,
    ) -> Result<i32> {
        let session_ms = session.as_millis() as f64;
        let address = format!("{}:{}", info.host, info.port);
        timed(async {
            let mut c = self.client().await?;
            let tx = c.transaction().await.map_err(Detailed::detailed)?;
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&BALANCE_LOCK])
                .await
                .map_err(Detailed::detailed)?;
            let id = match node_id {
                Some(id) => id,
                None => {
                    let reuse = tx
                        .query_opt(
                            "SELECT node_id FROM brokers WHERE address = $1 AND NOT (live AND heartbeat > now() - make_interval(secs => $2::float8 / 1000.0)) ORDER BY node_id LIMIT 1",
                            &[&address, &session_ms],
                        )
                        .await
                        .map_err(Detailed::detailed)?;
                    match reuse {
                        Some(r) => r.get(0),
                        None => tx
                            .query_one("SELECT COALESCE(max(node_id), 0) + 1 FROM brokers", &[])
                            .await
                            .map_err(Detailed::detailed)?
                            .get(0),
                    }
                }
            };
            let held = tx
                .query_opt(
                    "SELECT address FROM brokers WHERE node_id = $1 AND live AND heartbeat > now() - make_interval(secs => $2::float8 / 1000.0) AND incarnation <> $3",
                    &[&id, &session_ms, &incarnation],
                )
                .await
                .map_err(Detailed::detailed)?;
            if let Some(r) = held {
                let other: String = r.get(0);
                return Err(Error::InvalidConfig(format!(
                    "node id {id} is held by a live broker at {other}; give this broker another node_id or stop that one"
                )));
            }
            tx.execute(
                "INSERT INTO brokers (node_id, address, host, port, rack, incarnation, heartbeat, live, listeners)
                 VALUES ($1, $2, $3, $4, $5, $6, now(), true, $7)
                 ON CONFLICT (node_id) DO UPDATE SET address = $2, host = $3, port = $4, rack = $5,
                   incarnation = $6, heartbeat = now(), live = true, listeners = $7",
                &[&id, &address, &info.host, &info.port, &info.rack, &incarnation, &info.listeners],
            )
            .await
            .map_err(Detailed::detailed)?;
            // A new process under this node id: whatever an earlier process of it led gets a
            // new epoch, so that process (paused, say) can commit nothing any more.
            tx.execute(
                "WITH u AS (UPDATE partitions SET leader_epoch = leader_epoch + 1 WHERE leader = $1
                            RETURNING topic_id, partition, leader_epoch, next_offset)
                 INSERT INTO leader_epochs (topic_id, partition, epoch, start_offset)
                 SELECT topic_id, partition, leader_epoch, next_offset FROM u ON CONFLICT DO NOTHING",
                &[&id],
            )
            .await
            .map_err(Detailed::detailed)?;
            tx.execute(
                "UPDATE coordinators SET leader_epoch = leader_epoch + 1 WHERE leader = $1",
                &[&id],
            )
            .await
            .map_err(Detailed::detailed)?;
            tx.execute("UPDATE cluster_meta SET version = version + 1", &[])
                .await
                .map_err(Detailed::detailed)?;
            tx.commit().await.map_err(Detailed::detailed)?;
            Ok(id)
        })
        .await
    }

    /// Renew this broker's lease. `false` when another process took the node id over.
    pub async fn heartbeat(&self, node_id: i32, incarnation: &str) -> Result<bool> {
        timed(async {
            let c = self.client().await?;
            let n = c
                .execute(
                    "UPDATE brokers SET heartbeat = now() WHERE node_id = $1 AND incarnation = $2 AND live",
                    &[&node_id, &incarnation],
                )
                .await
                .map_err(Detailed::detailed)?;
            Ok(n == 1)
        })
        .await
    }

    /// Leave the cluster (graceful shutdown): no longer live, so the next assignment moves
    /// every partition away at once instead of after the session timeout.
    pub async fn deregister(&self, node_id: i32, incarnation: &str) -> Result<()> {
        timed(async {
            let c = self.client().await?;
            c.execute(
                "UPDATE brokers SET live = false WHERE node_id = $1 AND incarnation = $2",
                &[&node_id, &incarnation],
            )
            .await
            .map_err(Detailed::detailed)?;
            Ok(())
        })
        .await
    }

    /// Brokers whose lease is current, by node id.
    pub async fn live_brokers(&self, session: Duration) -> Result<Vec<BrokerInfo>> {
        let session_ms = session.as_millis() as f64;
        timed(async {
            let c = self.client().await?;
            let rows = c
                .query(
                    "SELECT node_id, host, port, rack, listeners FROM brokers WHERE live AND heartbeat > now() - make_interval(secs => $1::float8 / 1000.0) ORDER BY node_id",
                    &[&session_ms],
                )
                .await
                .map_err(Detailed::detailed)?;
            Ok(rows
                .iter()
                .map(|r| BrokerInfo {
                    node_id: r.get(0),
                    host: r.get(1),
                    port: r.get(2),
                    rack: r.get(3),
                    listeners: r.get(4),
                })
                .collect())
        })
        .await
    }

    /// `{node}-{incarnation}` of every broker process whose lease is current (the orphan
    /// sweep never touches their objects: they may be between a PUT and its commit).
    pub async fn live_incarnations(&self, session: Duration) -> Result<HashSet<String>> {
        let session_ms = session.as_millis() as f64;
        timed(async {
            let c = self.client().await?;
            let rows = c
                .query(
                    "SELECT node_id::text || '-' || incarnation FROM brokers WHERE live AND heartbeat > now() - make_interval(secs => $1::float8 / 1000.0)",
                    &[&session_ms],
                )
                .await
                .map_err(Detailed::detailed)?;
            Ok(rows.iter().map(|r| r.get(0)).collect())
        })
        .await
    }

    /// The assignment version (moves whenever topics, leaders or brokers change).
    pub async fn version(&self) -> Result<i64> {
        timed(async {
            let c = self.client().await?;
            Ok(c.query_one("SELECT version FROM cluster_meta", &[])
                .await
                .map_err(Detailed::detailed)?
                .get(0))
        })
        .await
    }

    /// Topics, leaders and coordinator slots, read in one snapshot.
    pub async fn snapshot(&self) -> Result<Snapshot> {
        timed(async {
            let mut c = self.client().await?;
            let tx = c
                .build_transaction()
                .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
                .read_only(true)
                .start()
                .await
                .map_err(Detailed::detailed)?;
            let version: i64 = tx
                .query_one("SELECT version FROM cluster_meta", &[])
                .await
                .map_err(Detailed::detailed)?
                .get(0);
            let topics = tx
                .query(
                    "SELECT topic_id, name, partitions, configs::text, created_ms, replication_factor FROM topics ORDER BY name",
                    &[],
                )
                .await
                .map_err(Detailed::detailed)?
                .iter()
                .map(|r| {
                    let id: Vec<u8> = r.get(0);
                    let configs: String = r.get(3);
                    TopicRow {
                        id: id_of(&id),
                        name: r.get(1),
                        partitions: r.get(2),
                        configs: serde_json::from_str(&configs).unwrap_or_default(),
                        created_ms: r.get(4),
                        replication_factor: r.get(5),
                    }
                })
                .collect();
            let leaders = tx
                .query(
                    "SELECT topic_id, partition, leader, leader_epoch, replicas FROM partitions",
                    &[],
                )
                .await
                .map_err(Detailed::detailed)?
                .iter()
                .map(|r| {
                    let id: Vec<u8> = r.get(0);
                    LeaderRow {
                        topic_id: id_of(&id),
                        partition: r.get(1),
                        leader: r.get(2),
                        epoch: r.get(3),
                        replicas: parse_replicas(r.get(4)),
                    }
                })
                .collect();
            let slots = tx
                .query(
                    "SELECT leader, leader_epoch FROM coordinators ORDER BY slot",
                    &[],
                )
                .await
                .map_err(Detailed::detailed)?
                .iter()
                .map(|r| (r.get(0), r.get(1)))
                .collect();
            tx.commit().await.map_err(Detailed::detailed)?;
            Ok(Snapshot {
                version,
                topics,
                leaders,
                slots,
            })
        })
        .await
    }

    /// Create a topic with its partitions (no leader yet: the next assignment gives them one);
    /// `assignments`, when given, are the partitions' replica lists (nominal).
    pub async fn create_topic(&self, t: &TopicRow, assignments: &[Vec<i32>]) -> Result<()> {
        let replicas = format_replicas(assignments);
        let configs = serde_json::to_string(&t.configs).map_err(db)?;
        timed(async {
            let mut c = self.client().await?;
            let tx = c.transaction().await.map_err(Detailed::detailed)?;
            let n = tx
                .execute(
                    "INSERT INTO topics (topic_id, name, partitions, configs, created_ms, replication_factor) VALUES ($1, $2, $3, $4::text::jsonb, $5, $6) ON CONFLICT DO NOTHING",
                    &[&t.id.as_slice(), &t.name, &t.partitions, &configs, &t.created_ms, &t.replication_factor],
                )
                .await
                .map_err(Detailed::detailed)?;
            if n == 0 {
                return Err(Error::TopicAlreadyExists(t.name.clone()));
            }
            tx.execute(
                "INSERT INTO partitions (topic_id, partition, replicas)
                 SELECT $1, p, ($3::text[])[p + 1] FROM generate_series(0, $2 - 1) AS p",
                &[&t.id.as_slice(), &t.partitions, &replicas],
            )
            .await
            .map_err(Detailed::detailed)?;
            tx.execute("UPDATE cluster_meta SET version = version + 1", &[])
                .await
                .map_err(Detailed::detailed)?;
            tx.commit().await.map_err(Detailed::detailed)?;
            Ok(())
        })
        .await
    }

    /// Grow a topic to `count` partitions.
    pub async fn grow_topic(
        &self,
        id: &[u8; 16],
        from: i32,
        count: i32,
        assignments: &[Vec<i32>],
    ) -> Result<()> {
        let replicas = format_replicas(assignments);
        timed(async {
            let mut c = self.client().await?;
            let tx = c.transaction().await.map_err(Detailed::detailed)?;
            let n = tx
                .execute(
                    "UPDATE topics SET partitions = $3 WHERE topic_id = $1 AND partitions = $2",
                    &[&id.as_slice(), &from, &count],
                )
                .await
                .map_err(Detailed::detailed)?;
            if n == 0 {
                return Err(Error::InvalidPartitions(
                    "the topic changed meanwhile; retry".into(),
                ));
            }
            tx.execute(
                "INSERT INTO partitions (topic_id, partition, replicas)
                 SELECT $1, p, ($4::text[])[p - $2 + 1] FROM generate_series($2, $3 - 1) AS p",
                &[&id.as_slice(), &from, &count, &replicas],
            )
            .await
            .map_err(Detailed::detailed)?;
            tx.execute("UPDATE cluster_meta SET version = version + 1", &[])
                .await
                .map_err(Detailed::detailed)?;
            tx.commit().await.map_err(Detailed::detailed)?;
            Ok(())
        })
        .await
    }

    /// Replace a topic's configs.
    pub async fn set_topic_configs(
        &self,
        id: &[u8; 16],
        configs: &BTreeMap<String, String>,
    ) -> Result<()> {
        let configs = serde_json::to_string(configs).map_err(db)?;
        timed(async {
            let mut c = self.client().await?;
            let tx = c.transaction().await.map_err(Detailed::detailed)?;
            tx.execute(
                "UPDATE topics SET configs = $2::text::jsonb WHERE topic_id = $1",
                &[&id.as_slice(), &configs],
            )
            .await
            .map_err(Detailed::detailed)?;
            tx.execute("UPDATE cluster_meta SET version = version + 1", &[])
                .await
                .map_err(Detailed::detailed)?;
            tx.commit().await.map_err(Detailed::detailed)?;
            Ok(())
        })
        .await
    }

    /// Delete a topic: its partitions and index rows go with it; objects no index row refers
    /// to any more are collected by [`Store::collect_garbage`].
    pub async fn delete_topic(&self, id: &[u8; 16]) -> Result<bool> {
        timed(async {
            let mut c = self.client().await?;
            let tx = c.transaction().await.map_err(Detailed::detailed)?;
            let n = tx
                .execute("DELETE FROM topics WHERE topic_id = $1", &[&id.as_slice()])
                .await
                .map_err(Detailed::detailed)?;
            tx.execute("UPDATE cluster_meta SET version = version + 1", &[])
                .await
                .map_err(Detailed::detailed)?;
            tx.commit().await.map_err(Detailed::detailed)?;
            Ok(n == 1)
        })
        .await
    }

    /// Every unit of leadership with its current leader (partitions, then coordinator slots).
    /// Run the assignment: inside one transaction under the assignment lock, read live brokers
    /// and every unit's leader, apply `plan`'s moves with epoch + 1, and record each partition's
    /// new epoch with the offset it starts at. Returns how many units moved.
    pub async fn balance(&self, session: Duration) -> Result<usize> {
        let session_ms = session.as_millis() as f64;
        timed(async {
            let mut c = self.client().await?;
            let tx = c.transaction().await.map_err(Detailed::detailed)?;
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&BALANCE_LOCK])
                .await
                .map_err(Detailed::detailed)?;
            let live: Vec<(i32, Option<String>)> = tx
                .query(
                    "SELECT node_id, rack FROM brokers WHERE live AND heartbeat > now() - make_interval(secs => $1::float8 / 1000.0) ORDER BY node_id",
                    &[&session_ms],
                )
                .await
                .map_err(Detailed::detailed)?
                .iter()
                .map(|r| (r.get(0), r.get(1)))
                .collect();
            let mut units = Vec::new();
            for r in tx
                .query("SELECT topic_id, partition, leader FROM partitions", &[])
                .await
                .map_err(Detailed::detailed)?
            {
                let id: Vec<u8> = r.get(0);
                units.push((Unit::Partition(id_of(&id), r.get(1)), r.get(2)));
            }
            for r in tx
                .query("SELECT slot, leader FROM coordinators", &[])
                .await
                .map_err(Detailed::detailed)?
            {
                units.push((Unit::Slot(r.get(0)), r.get(1)));
            }
            let moves = super::assign::plan(&live, &units);
            if moves.is_empty() {
                return Ok(0);
            }
            let (mut tids, mut parts, mut pleaders) = (Vec::new(), Vec::new(), Vec::new());
            let (mut slots, mut sleaders) = (Vec::new(), Vec::new());
            for (unit, leader) in &moves {
                match unit {
                    Unit::Partition(id, p) => {
                        tids.push(id.to_vec());
                        parts.push(*p);
                        pleaders.push(*leader);
                    }
                    Unit::Slot(s) => {
                        slots.push(*s);
                        sleaders.push(*leader);
                    }
                }
            }
            tx.execute(
                "WITH m AS (SELECT * FROM unnest($1::bytea[], $2::int4[], $3::int4[]) AS m(topic_id, partition, leader)),
                 u AS (UPDATE partitions p SET leader = m.leader, leader_epoch = p.leader_epoch + 1
                       FROM m WHERE p.topic_id = m.topic_id AND p.partition = m.partition
                       RETURNING p.topic_id, p.partition, p.leader_epoch, p.next_offset)
                 INSERT INTO leader_epochs (topic_id, partition, epoch, start_offset)
                 SELECT topic_id, partition, leader_epoch, next_offset FROM u
                 ON CONFLICT DO NOTHING",
                &[&tids, &parts, &pleaders],
            )
            .await
            .map_err(Detailed::detailed)?;
            tx.execute(
                "UPDATE coordinators c SET leader = m.leader, leader_epoch = c.leader_epoch + 1
                 FROM unnest($1::int4[], $2::int4[]) AS m(slot, leader) WHERE c.slot = m.slot",
                &[&slots, &sleaders],
            )
            .await
            .map_err(Detailed::detailed)?;
            tx.execute("UPDATE cluster_meta SET version = version + 1", &[])
                .await
                .map_err(Detailed::detailed)?;
            tx.commit().await.map_err(Detailed::detailed)?;
            Ok(moves.len())
        })
        .await
    }

    /// Move one partition's leadership to `target` (ElectLeaders, AlterPartitionReassignments),
    /// and with `replicas` record its new replica list, in one transaction under the
    /// assignment lock: the target must be live; the epoch is bumped (and its start offset
    /// recorded) only when the leader changes, fencing the previous leader's commits exactly as
    /// an assignment move does. Returns whether the leader changed; `Ok(None)` when the target
    /// is not live or the partition does not exist.
    pub async fn move_leader(
        &self,
        id: &[u8; 16],
        partition: i32,
        target: i32,
        replicas: Option<&[i32]>,
        session: Duration,
    ) -> Result<Option<bool>> {
        let session_ms = session.as_millis() as f64;
        let replicas = replicas.map(|r| format_replicas(&[r.to_vec()]).remove(0));
        timed(async {
            let mut c = self.client().await?;
            let tx = c.transaction().await.map_err(Detailed::detailed)?;
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&BALANCE_LOCK])
                .await
                .map_err(Detailed::detailed)?;
            let live = tx
                .query_opt(
                    "SELECT 1 FROM brokers WHERE node_id = $1 AND live AND heartbeat > now() - make_interval(secs => $2::float8 / 1000.0)",
                    &[&target, &session_ms],
                )
                .await
                .map_err(Detailed::detailed)?;
            let current = tx
                .query_opt(
                    "SELECT leader FROM partitions WHERE topic_id = $1 AND partition = $2",
                    &[&id.as_slice(), &partition],
                )
                .await
                .map_err(Detailed::detailed)?;
            let (Some(_), Some(current)) = (live, current) else {
                return Ok(None);
            };
            let leader: Option<i32> = current.get(0);
            let moved = leader != Some(target);
            if moved {
                tx.execute(
                    "WITH u AS (UPDATE partitions SET leader = $3, leader_epoch = leader_epoch + 1
                                WHERE topic_id = $1 AND partition = $2
                                RETURNING topic_id, partition, leader_epoch, next_offset)
                     INSERT INTO leader_epochs (topic_id, partition, epoch, start_offset)
                     SELECT topic_id, partition, leader_epoch, next_offset FROM u
                     ON CONFLICT DO NOTHING",
                    &[&id.as_slice(), &partition, &target],
                )
                .await
                .map_err(Detailed::detailed)?;
            }
            if let Some(r) = &replicas {
                tx.execute(
                    "UPDATE partitions SET replicas = $3 WHERE topic_id = $1 AND partition = $2",
                    &[&id.as_slice(), &partition, r],
                )
                .await
                .map_err(Detailed::detailed)?;
            }
            if moved || replicas.is_some() {
                tx.execute("UPDATE cluster_meta SET version = version + 1", &[])
                    .await
                    .map_err(Detailed::detailed)?;
            }
            tx.commit().await.map_err(Detailed::detailed)?;
            Ok(Some(moved))
        })
        .await
    }

    /// The managed SCRAM credentials (`auth::credentials` JSON; `None` when none were ever set).
    pub async fn scram_credentials(&self) -> Result<Option<String>> {
        timed(async {
            let c = self.client().await?;
            let row = c
                .query_opt("SELECT doc FROM scram_credentials WHERE id = 1", &[])
                .await
                .map_err(Detailed::detailed)?;
            Ok(row.map(|r| r.get(0)))
        })
        .await
    }

    /// Change the managed SCRAM credentials: `f` maps the current document to the new one (and
    /// a result), inside one transaction holding the row, so concurrent changes through
    /// different brokers serialize. Bumps the cluster version (every broker reloads them).
    pub async fn alter_scram_credentials<R: Send>(
        &self,
        f: impl FnOnce(Option<&str>) -> Result<(String, R)> + Send,
    ) -> Result<R> {
        timed(async {
            let mut c = self.client().await?;
            let tx = c.transaction().await.map_err(Detailed::detailed)?;
            tx.execute(
                "INSERT INTO scram_credentials (id, doc) VALUES (1, '{}') ON CONFLICT DO NOTHING",
                &[],
            )
            .await
            .map_err(Detailed::detailed)?;
            let current: String = tx
                .query_one(
                    "SELECT doc FROM scram_credentials WHERE id = 1 FOR UPDATE",
                    &[],
                )
                .await
                .map_err(Detailed::detailed)?
                .get(0);
            let (doc, r) = f(Some(current.as_str()))?;
            if doc != current {
                tx.execute(
                    "UPDATE scram_credentials SET doc = $1 WHERE id = 1",
                    &[&doc],
                )
                .await
                .map_err(Detailed::detailed)?;
                tx.execute("UPDATE cluster_meta SET version = version + 1", &[])
                    .await
                    .map_err(Detailed::detailed)?;
            }
            tx.commit().await.map_err(Detailed::detailed)?;
            Ok(r)
        })
        .await
    }

    /// A cluster-wide document by name (`None` when it was never written).
    pub async fn document(&self, name: &str) -> Result<Option<String>> {
        timed(async {
            let c = self.client().await?;
            let row = c
                .query_opt("SELECT doc FROM documents WHERE name = $1", &[&name])
                .await
                .map_err(Detailed::detailed)?;
            Ok(row.map(|r| r.get::<_, String>(0)).filter(|d| !d.is_empty()))
        })
        .await
    }

    /// Change a document: `f` maps the current one to the next (and a result) inside one
    /// transaction holding its row, so concurrent changes through different brokers
    /// serialize. A change bumps the cluster version (every broker reloads it).
    pub async fn alter_document<R: Send>(
        &self,
        name: &str,
        f: impl FnOnce(Option<&str>) -> Result<(String, R)> + Send,
    ) -> Result<R> {
        timed(async {
            let mut c = self.client().await?;
            let tx = c.transaction().await.map_err(Detailed::detailed)?;
            tx.execute(
                "INSERT INTO documents (name, doc) VALUES ($1, '') ON CONFLICT DO NOTHING",
                &[&name],
            )
            .await
            .map_err(Detailed::detailed)?;
            let current: String = tx
                .query_one(
                    "SELECT doc FROM documents WHERE name = $1 FOR UPDATE",
                    &[&name],
                )
                .await
                .map_err(Detailed::detailed)?
                .get(0);
            let (doc, r) = f((!current.is_empty()).then_some(current.as_str()))?;
            if doc != current {
                tx.execute(
                    "UPDATE documents SET doc = $2 WHERE name = $1",
                    &[&name, &doc],
                )
                .await
                .map_err(Detailed::detailed)?;
                tx.execute("UPDATE cluster_meta SET version = version + 1", &[])
                    .await
                    .map_err(Detailed::detailed)?;
            }
            tx.commit().await.map_err(Detailed::detailed)?;
            Ok(r)
        })
        .await
    }

    /// The committed state of one partition (taking over its leadership).
    pub async fn committed_log(&self, tp: &TopicPartition) -> Result<Option<CommittedLog>> {
        use crate::storage::writer::{SegmentMeta, WalSlice};
        timed(async {
            let mut c = self.client().await?;
            let tx = c
                .build_transaction()
                .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
                .read_only(true)
                .start()
                .await
                .map_err(Detailed::detailed)?;
            let id = tp.topic_id.as_slice();
            let Some(p) = tx
                .query_opt(
                    "SELECT leader, leader_epoch, next_offset, log_start FROM partitions WHERE topic_id = $1 AND partition = $2",
                    &[&id, &tp.partition],
                )
                .await
                .map_err(Detailed::detailed)?
            else {
                return Ok(None);
            };
            let entries = tx
                .query(
                    "SELECT base_offset, last_offset, path, size, max_timestamp, written_ms, first_group, groups, object_size
                     FROM log_entries WHERE topic_id = $1 AND partition = $2 ORDER BY base_offset",
                    &[&id, &tp.partition],
                )
                .await
                .map_err(Detailed::detailed)?
                .iter()
                .map(|r| {
                    let first_group: Option<i32> = r.get(6);
                    let groups: Option<i32> = r.get(7);
                    let object_size: Option<i64> = r.get(8);
                    SegmentMeta {
                        base: r.get(0),
                        last: r.get(1),
                        path: r.get(2),
                        size: r.get::<_, i64>(3) as u64,
                        max_timestamp: r.get(4),
                        written_ms: r.get(5),
                        wal: match (first_group, groups, object_size) {
                            (Some(f), Some(g), Some(s)) => Some(WalSlice {
                                first_group: f as u32,
                                groups: g as u32,
                                object_size: s as u64,
                            }),
                            _ => None,
                        },
                    }
                })
                .collect();
            let epochs = tx
                .query(
                    "SELECT epoch, start_offset FROM leader_epochs WHERE topic_id = $1 AND partition = $2 ORDER BY epoch",
                    &[&id, &tp.partition],
                )
                .await
                .map_err(Detailed::detailed)?
                .iter()
                .map(|r| (r.get(0), r.get(1)))
                .collect();
            tx.commit().await.map_err(Detailed::detailed)?;
            Ok(Some(CommittedLog {
                leader: p.get(0),
                epoch: p.get(1),
                next_offset: p.get(2),
                log_start: p.get(3),
                entries,
                epochs,
            }))
        })
        .await
    }

    /// Commit one flush: record the object and, for every part whose partition this broker
    /// still leads under the part's epoch and whose base is the partition's committed end,
    /// its index row, advancing the committed end. Returns the partitions committed; any
    /// other part is fenced (never acknowledged).
    pub async fn commit_flush(
        &self,
        node_id: i32,
        path: &str,
        object_size: u64,
        written_ms: i64,
        parts: &[PartCommit],
    ) -> Result<HashSet<TopicPartition>> {
        let mut tids = Vec::with_capacity(parts.len());
        let mut pnums = Vec::with_capacity(parts.len());
        let mut epochs = Vec::with_capacity(parts.len());
        let mut bases = Vec::with_capacity(parts.len());
        let mut lasts = Vec::with_capacity(parts.len());
        let mut sizes = Vec::with_capacity(parts.len());
        let mut max_ts = Vec::with_capacity(parts.len());
        let mut firsts = Vec::with_capacity(parts.len());
        let mut groups = Vec::with_capacity(parts.len());
        for p in parts {
            tids.push(p.tp.topic_id.to_vec());
            pnums.push(p.tp.partition);
            epochs.push(p.epoch);
            bases.push(p.base);
            lasts.push(p.last);
            sizes.push(p.bytes as i64);
            max_ts.push(p.max_timestamp);
            firsts.push(p.first_group as i32);
            groups.push(p.groups as i32);
        }
        let osize = object_size as i64;
        timed(async {
            let mut c = self.client().await?;
            let tx = c.transaction().await.map_err(Detailed::detailed)?;
            tx.execute(
                "INSERT INTO wal_objects (path, size, node_id) VALUES ($1, $2, $3)",
                &[&path, &osize, &node_id],
            )
            .await
            .map_err(Detailed::detailed)?;
            let rows = tx
                .query(
                    "WITH i AS (SELECT * FROM unnest($1::bytea[], $2::int4[], $3::int4[], $4::int8[], $5::int8[], $6::int8[], $7::int8[], $8::int4[], $9::int4[])
                                AS i(topic_id, partition, epoch, base, last, size, max_ts, first_group, groups)),
                     u AS (UPDATE partitions p SET next_offset = i.last + 1 FROM i
                           WHERE p.topic_id = i.topic_id AND p.partition = i.partition AND p.leader = $10
                             AND p.leader_epoch = i.epoch AND p.next_offset = i.base
                           RETURNING p.topic_id, p.partition)
                     INSERT INTO log_entries (topic_id, partition, base_offset, last_offset, path, size, max_timestamp, written_ms, first_group, groups, object_size)
                     SELECT i.topic_id, i.partition, i.base, i.last, $11, i.size, i.max_ts, $12, i.first_group, i.groups, $13
                     FROM i JOIN u ON u.topic_id = i.topic_id AND u.partition = i.partition
                     RETURNING topic_id, partition",
                    &[&tids, &pnums, &epochs, &bases, &lasts, &sizes, &max_ts, &firsts, &groups, &node_id, &path, &written_ms, &osize],
                )
                .await
                .map_err(Detailed::detailed)?;
            tx.commit().await.map_err(Detailed::detailed)?;
            let done: HashSet<([u8; 16], i32)> = rows
                .iter()
                .map(|r| {
                    let id: Vec<u8> = r.get(0);
                    (id_of(&id), r.get(1))
                })
                .collect();
            Ok(parts
                .iter()
                .filter(|p| done.contains(&(p.tp.topic_id, p.tp.partition)))
                .map(|p| p.tp.clone())
                .collect())
        })
        .await
    }

    /// Change one partition's committed index as its leader under `epoch`: remove the entries
    /// `removed` (matched by base, last offset and object, so a merged entry that starts at
    /// the same base is never taken for one of its inputs), add `added` (a table segment,
    /// recorded as an object of the store), and move the log start up to `log_start`.
    /// `Error::Fenced` when this broker no longer leads the partition under `epoch`; nothing
    /// changes unless every removed entry was there.
    pub async fn swap_entries(
        &self,
        tp: &TopicPartition,
        node_id: i32,
        epoch: i32,
        removed: &[crate::storage::writer::SegmentMeta],
        added: Option<&crate::storage::writer::SegmentMeta>,
        log_start: Option<i64>,
    ) -> Result<()> {
        let id = tp.topic_id.to_vec();
        let bases: Vec<i64> = removed.iter().map(|s| s.base).collect();
        let lasts: Vec<i64> = removed.iter().map(|s| s.last).collect();
        let paths: Vec<String> = removed.iter().map(|s| s.path.clone()).collect();
        timed(async {
            let mut c = self.client().await?;
            let tx = c.transaction().await.map_err(Detailed::detailed)?;
            let led = tx
                .query_opt(
                    "SELECT 1 FROM partitions WHERE topic_id = $1 AND partition = $2 AND leader = $3 AND leader_epoch = $4 FOR UPDATE",
                    &[&id, &tp.partition, &node_id, &epoch],
                )
                .await
                .map_err(Detailed::detailed)?;
            if led.is_none() {
                return Err(Error::Fenced);
            }
            let n = tx
                .execute(
                    "DELETE FROM log_entries e USING unnest($3::int8[], $4::int8[], $5::text[]) AS r(base, last, path)
                     WHERE e.topic_id = $1 AND e.partition = $2
                       AND e.base_offset = r.base AND e.last_offset = r.last AND e.path = r.path",
                    &[&id, &tp.partition, &bases, &lasts, &paths],
                )
                .await
                .map_err(Detailed::detailed)?;
            if n != bases.len() as u64 {
                return Err(Error::Internal(format!(
                    "{tp}: committed index differs from the leader's ({n} of {} entries)",
                    bases.len()
                )));
            }
            if let Some(s) = added {
                let size = s.size as i64;
                tx.execute(
                    "INSERT INTO wal_objects (path, size, node_id) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                    &[&s.path, &size, &node_id],
                )
                .await
                .map_err(Detailed::detailed)?;
                tx.execute(
                    "INSERT INTO log_entries (topic_id, partition, base_offset, last_offset, path, size, max_timestamp, written_ms)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                    &[&id, &tp.partition, &s.base, &s.last, &s.path, &size, &s.max_timestamp, &s.written_ms],
                )
                .await
                .map_err(Detailed::detailed)?;
            }
            if let Some(ls) = log_start {
                tx.execute(
                    "UPDATE partitions SET log_start = greatest(log_start, $3) WHERE topic_id = $1 AND partition = $2",
                    &[&id, &tp.partition, &ls],
                )
                .await
                .map_err(Detailed::detailed)?;
            }
            tx.commit().await.map_err(Detailed::detailed)?;
            Ok(())
        })
        .await
    }

    /// Objects (write-ahead objects and table segments) that no index row refers to, recorded
    /// at least `min_age` ago.
    pub async fn unreferenced_objects(&self, min_age: Duration, limit: i64) -> Result<Vec<String>> {
        let age_ms = min_age.as_millis() as f64;
        timed(async {
            let c = self.client().await?;
            let rows = c
                .query(
                    "SELECT w.path FROM wal_objects w
                     WHERE w.created < now() - make_interval(secs => $1::float8 / 1000.0)
                       AND NOT EXISTS (SELECT 1 FROM log_entries e WHERE e.path = w.path)
                     LIMIT $2",
                    &[&age_ms, &limit],
                )
                .await
                .map_err(Detailed::detailed)?;
            Ok(rows.iter().map(|r| r.get(0)).collect())
        })
        .await
    }

    /// Forget objects that are still unreferenced; returns those forgotten (the caller
    /// deletes them from object storage).
    pub async fn forget_objects(&self, paths: &[String]) -> Result<Vec<String>> {
        timed(async {
            let c = self.client().await?;
            let rows = c
                .query(
                    "DELETE FROM wal_objects o WHERE o.path = ANY($1)
                       AND NOT EXISTS (SELECT 1 FROM log_entries e WHERE e.path = o.path)
                     RETURNING o.path",
                    &[&paths],
                )
                .await
                .map_err(Detailed::detailed)?;
            Ok(rows.iter().map(|r| r.get(0)).collect())
        })
        .await
    }

    /// Whether a write-ahead object is recorded (orphan sweeps keep recorded ones).
    pub async fn known_objects(&self, paths: &[String]) -> Result<HashSet<String>> {
        timed(async {
            let c = self.client().await?;
            let rows = c
                .query(
                    "SELECT path FROM wal_objects WHERE path = ANY($1)",
                    &[&paths],
                )
                .await
                .map_err(Detailed::detailed)?;
            Ok(rows.iter().map(|r| r.get(0)).collect())
        })
        .await
    }

    /// A block of `n` producer ids, reserved before use.
    pub async fn reserve_producer_ids(&self, n: i64) -> Result<i64> {
        timed(async {
            let c = self.client().await?;
            let row = c
                .query_one(
                    "UPDATE cluster_meta SET next_producer_id = next_producer_id + $1 RETURNING next_producer_id - $1",
                    &[&n],
                )
                .await
                .map_err(Detailed::detailed)?;
            Ok(row.get(0))
        })
        .await
    }

    /// Committed offsets of a group.
    pub async fn group_offsets(
        &self,
        group: &str,
    ) -> Result<BTreeMap<String, BTreeMap<i32, CommittedOffset>>> {
        timed(async {
            let c = self.client().await?;
            let rows = c
                .query(
                    "SELECT topic, partition, committed_offset, leader_epoch, metadata, commit_ms FROM group_offsets WHERE group_id = $1",
                    &[&group.as_bytes()],
                )
                .await
                .map_err(Detailed::detailed)?;
            let mut out: BTreeMap<String, BTreeMap<i32, CommittedOffset>> = BTreeMap::new();
            for r in rows {
                let metadata: Option<Vec<u8>> = r.get(4);
                out.entry(r.get(0)).or_default().insert(
                    r.get(1),
                    CommittedOffset {
                        offset: r.get(2),
                        leader_epoch: r.get(3),
                        // Kafka strings may hold NUL, which PostgreSQL text cannot: bytes.
                        metadata: metadata.map(|m| String::from_utf8_lossy(&m).into_owned()),
                        commit_ms: r.get(5),
                    },
                );
            }
            Ok(out)
        })
        .await
    }

    /// Replace a group's committed offsets, only while this broker holds the group's
    /// coordinator slot under `epoch` (a deposed coordinator's commit fails).
    pub async fn save_group_offsets(
        &self,
        group: &str,
        slot: i32,
        node_id: i32,
        epoch: i32,
        offsets: &BTreeMap<String, BTreeMap<i32, CommittedOffset>>,
    ) -> Result<()> {
        let (mut topics, mut parts, mut offs, mut eps, mut metas, mut ms) = (
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
        );
        for (t, m) in offsets {
            for (p, o) in m {
                topics.push(t.clone());
                parts.push(*p);
                offs.push(o.offset);
                eps.push(o.leader_epoch);
                metas.push(o.metadata.as_ref().map(|m| m.as_bytes().to_vec()));
                ms.push(o.commit_ms);
            }
        }
        timed(async {
            let mut c = self.client().await?;
            let tx = c.transaction().await.map_err(Detailed::detailed)?;
            let held = tx
                .query_opt(
                    "SELECT 1 FROM coordinators WHERE slot = $1 AND leader = $2 AND leader_epoch = $3 FOR SHARE",
                    &[&slot, &node_id, &epoch],
                )
                .await
                .map_err(Detailed::detailed)?;
            if held.is_none() {
                return Err(Error::NotCoordinator);
            }
            let gid = group.as_bytes();
            tx.execute("DELETE FROM group_offsets WHERE group_id = $1", &[&gid])
                .await
                .map_err(Detailed::detailed)?;
            tx.execute(
                "INSERT INTO group_offsets (group_id, topic, partition, committed_offset, leader_epoch, metadata, commit_ms)
                 SELECT $1, * FROM unnest($2::text[], $3::int4[], $4::int8[], $5::int4[], $6::bytea[], $7::int8[])",
                &[&gid, &topics, &parts, &offs, &eps, &metas, &ms],
            )
            .await
            .map_err(Detailed::detailed)?;
            tx.commit().await.map_err(Detailed::detailed)?;
            Ok(())
        })
        .await
    }

    /// Groups with committed offsets (ListGroups on a coordinator that just took over).
    pub async fn group_ids(&self) -> Result<Vec<String>> {
        timed(async {
            let c = self.client().await?;
            let rows = c
                .query("SELECT DISTINCT group_id FROM group_offsets", &[])
                .await
                .map_err(Detailed::detailed)?;
            Ok(rows
                .iter()
                .map(|r| String::from_utf8_lossy(r.get::<_, &[u8]>(0)).into_owned())
                .collect())
        })
        .await
    }
}
