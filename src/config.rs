//! Broker configuration: built-in defaults → `heraclitus.yaml` (or `--config FILE`) →
//! `HERACLITUS_…` environment variables (nested keys joined by `__`) → CLI flags.
//!
//! Every key here is used by the broker; unknown keys and bad values stop start-up with a message
//! naming the key (serde's `deny_unknown_fields` plus [`Settings::validate`]).

use serde::{Deserialize, Serialize};
use std::path::Path;

/// Kafka's `socket.request.max.bytes` default: the largest request frame we allocate for.
pub const DEFAULT_MAX_REQUEST_BYTES: usize = 100 * 1024 * 1024;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// Address the Kafka listener binds to.
    pub bind_host: String,
    pub kafka_port: u16,
    pub http_port: u16,
    /// Serve the HTTP port (status page, /metrics, /health) over TLS with `tls.cert_file` and
    /// `tls.key_file`, reloaded with them.
    pub http_tls: bool,
    /// Host advertised to clients in Metadata (an IPv4 address by default: librdkafka tries IPv6
    /// first for "localhost").
    pub advertised_host: String,
    /// Port advertised to clients; defaults to the bound Kafka port.
    pub advertised_port: Option<u16>,
    /// Kafka listeners (`PLAINTEXT://0.0.0.0:9092,SASL_SSL://:9094`); unset: one listener on
    /// `bind_host:kafka_port` (PLAINTEXT, or SASL_PLAINTEXT with `auth.enabled`).
    pub listeners: Option<String>,
    /// What Metadata advertises per listener (`SSL://kafka.example:9093`); a listener not
    /// named here advertises its own host (or `advertised_host` when bound to every
    /// interface) and port.
    pub advertised_listeners: Option<String>,
    /// Certificates of the SSL and SASL_SSL listeners.
    pub tls: TlsSettings,
    /// This broker's node id (1 when unset in standalone mode; in cluster mode assigned through
    /// the metadata store when unset, and kept across restarts at the same advertised address).
    pub node_id: Option<i32>,
    /// Create unknown topics on Metadata/Produce requests.
    pub auto_create_topics: bool,
    /// Partition count of auto-created topics and of CreateTopics with num_partitions = -1.
    pub default_partitions: i32,
    /// Largest replication factor CreateTopics accepts. `None`: the number of live brokers,
    /// as Kafka. The log's durability comes from the object store, not from copies on
    /// brokers, so an operator may accept more (tools that create topics with replication
    /// factor 3 then run against fewer brokers).
    pub max_replication_factor: Option<i16>,
    /// Largest request frame accepted (Kafka's `socket.request.max.bytes`).
    pub max_request_bytes: usize,
    /// Largest record batch accepted on produce (Kafka's `message.max.bytes`).
    pub max_message_bytes: usize,
    /// Requests one connection may have in flight before we stop reading from it.
    pub max_in_flight_per_connection: usize,
    /// Bytes of requests one connection may have in flight before we stop reading from it.
    pub max_in_flight_bytes_per_connection: usize,
    /// Largest Fetch response (Kafka's `fetch.max.bytes`): a response holds at most
    /// min(request max_bytes, this), but always at least one batch when one is available.
    pub fetch_max_bytes: usize,
    /// Incremental fetch sessions kept (KIP-227; Kafka's
    /// `max.incremental.fetch.session.cache.slots`). 0 disables them.
    pub fetch_session_cache_slots: usize,
    /// Client connections open at once (Kafka's `max.connections`); a connection beyond it is
    /// closed as soon as it is accepted.
    pub max_connections: usize,
    /// Client connections open at once from one IP address (`max.connections.per.ip`).
    pub max_connections_per_ip: usize,
    /// Partitions of all topics together; CreateTopics/CreatePartitions and auto-creation
    /// beyond it answer POLICY_VIOLATION.
    pub max_partitions: usize,
    /// Produced bytes accepted but not yet durable, broker-wide. When reached, connections
    /// stop reading Produce requests (TCP pushes back on producers) until flushes catch up.
    pub max_unflushed_bytes: usize,
    /// Decompressed bytes produce validation may hold at once, broker-wide (compressed
    /// batches are validated a chunk or a record at a time against this budget).
    pub max_decompressed_bytes_in_flight: usize,
    /// How long an idle idempotent producer's sequence state is kept (Kafka's
    /// `producer.id.expiration.ms`).
    pub producer_id_expiration_ms: u64,
    pub storage: StorageSettings,
    pub batching: BatchingSettings,
    pub retention: RetentionSettings,
    pub groups: GroupSettings,
    pub metrics: MetricsSettings,
    pub performance: PerformanceSettings,
    pub auth: AuthSettings,
    pub authorization: AuthorizationSettings,
    pub cluster: ClusterSettings,
}

/// ACL authorization (Kafka's standard authorizer). Off by default: every client may do
/// everything, and the ACL APIs answer SECURITY_DISABLED as Kafka without an authorizer.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthorizationSettings {
    /// Check every request against the ACLs.
    pub enabled: bool,
    /// Principals allowed everything (`User:admin`), as a YAML list or, like Kafka's
    /// `super.users`, one string separated by `;` (handy in `HERACLITUS_AUTHORIZATION__SUPER_USERS`).
    #[serde(deserialize_with = "list_or_semicolons")]
    pub super_users: Vec<String>,
    /// Kafka's `allow.everyone.if.no.acl.found`: a resource no ACL applies to is open to all.
    pub allow_everyone_if_no_acl_found: bool,
    /// How a client certificate's subject becomes a principal name on SSL listeners: `dn`
    /// (Kafka's default: the whole RFC 2253 subject, `User:CN=alice,O=Acme`) or `cn` (its
    /// common name only, `User:alice`).
    pub ssl_principal: String,
}

impl Default for AuthorizationSettings {
    fn default() -> Self {
        AuthorizationSettings {
            enabled: false,
            super_users: Vec::new(),
            allow_everyone_if_no_acl_found: false,
            ssl_principal: "dn".into(),
        }
    }
}

fn list_or_semicolons<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum ListOrString {
        List(Vec<String>),
        One(String),
    }
    Ok(match ListOrString::deserialize(d)? {
        ListOrString::List(v) => v,
        ListOrString::One(s) => s
            .split(';')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect(),
    })
}

/// Cluster mode: several brokers over one storage path, coordinated through PostgreSQL.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterSettings {
    /// PostgreSQL DSN (`postgres://user@host:5432/db`); unset = standalone broker.
    pub metadata_store: Option<String>,
    /// This broker's rack (Metadata reports it; leaders are spread over racks).
    pub rack: Option<String>,
    /// How often this broker renews its lease.
    pub heartbeat_interval_ms: u64,
    /// A broker whose lease was not renewed for this long is dead: its partitions and group
    /// coordinator slots move to the live brokers with a new leader epoch.
    pub session_timeout_ms: u64,
    /// How often a broker looks for assignment changes in the store.
    pub poll_interval_ms: u64,
    /// Group coordinator slots (Kafka's `offsets.topic.num.partitions`); fixed when the
    /// cluster is first created.
    pub coordinator_slots: i32,
}

impl Default for ClusterSettings {
    fn default() -> Self {
        ClusterSettings {
            metadata_store: None,
            rack: None,
            heartbeat_interval_ms: 1000,
            session_timeout_ms: 6000,
            poll_interval_ms: 250,
            coordinator_slots: 16,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageSettings {
    /// Storage DSN: a folder path (default), `file:///…`, `memory://`, or `s3://bucket/prefix`.
    #[serde(alias = "dsn")]
    pub path: String,
    /// Memory budget for recent batches kept as produced (served without re-encoding), bytes.
    pub hot_tail_bytes: usize,
    /// Memory budget for cold reads (stored segments + decoded row groups), bytes.
    pub segment_cache_bytes: usize,
    /// Small segments are merged into segments of up to this many bytes.
    pub merge_target_bytes: u64,
    /// A merge starts once a partition has this many consecutive small segments.
    pub merge_min_segments: usize,
    /// How often partitions look for segments to merge (ms).
    pub merge_interval_ms: u64,
    /// Largest object one flush writes (well below S3's 5 GiB single-PUT limit); a bigger
    /// backlog is written as several objects.
    pub max_object_bytes: usize,
    /// A partition's data waits at most about this long (ms) in write-ahead objects before
    /// the compactor rewrites it into the table layout (`None`: 10 s on a local folder or
    /// memory, 10 min on S3, where each compaction costs a PUT per partition).
    pub compaction_delay_ms: Option<u64>,
    /// How often the write-ahead index is checkpointed to the store when it changed (ms).
    pub checkpoint_interval_ms: u64,
    /// Write-ahead objects the compactor reads (whole, one GET each) and rewrites at a time,
    /// bytes: its memory bound, and how much of each partition one compacted segment gathers.
    pub compaction_batch_bytes: u64,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct BatchingSettings {
    /// Flush (one write-ahead object for all partitions) once this many bytes are buffered.
    pub max_batch_size: usize,
    /// Flush once this many records are buffered.
    pub max_batch_messages: usize,
    /// Flush once this long (ms) passed since the previous flush started (`None`: 1 ms on a
    /// local folder or memory, 250 ms on S3, where every flush is a PUT).
    pub flush_interval_ms: Option<u64>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionSettings {
    /// Broker default `retention.ms` (-1 = keep forever).
    pub ms: i64,
    /// Broker default `retention.bytes` per partition (-1 = unlimited).
    pub bytes: i64,
    /// How often retention is checked (ms).
    pub check_interval_ms: u64,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct GroupSettings {
    /// Smallest session timeout a member may ask for (Kafka's group.min.session.timeout.ms).
    pub min_session_timeout_ms: u64,
    /// Largest session timeout a member may ask for (group.max.session.timeout.ms).
    pub max_session_timeout_ms: u64,
    /// Most members one group may have (group.max.size).
    pub max_size: usize,
    /// Delay of an empty group's first rebalance (group.initial.rebalance.delay.ms).
    pub initial_rebalance_delay_ms: u64,
    /// Session timeout of consumer-protocol (KIP-848) members
    /// (group.consumer.session.timeout.ms).
    pub consumer_session_timeout_ms: u64,
    /// How often consumer-protocol members heartbeat (group.consumer.heartbeat.interval.ms).
    pub consumer_heartbeat_interval_ms: u64,
    /// Bounds of a group's `consumer.session.timeout.ms` config
    /// (group.consumer.min/max.session.timeout.ms); widened to include the broker default.
    pub consumer_min_session_timeout_ms: u64,
    pub consumer_max_session_timeout_ms: u64,
    /// Bounds of a group's `consumer.heartbeat.interval.ms` config
    /// (group.consumer.min/max.heartbeat.interval.ms); widened to include the broker default.
    pub consumer_min_heartbeat_interval_ms: u64,
    pub consumer_max_heartbeat_interval_ms: u64,
}

impl Default for GroupSettings {
    fn default() -> Self {
        GroupSettings {
            min_session_timeout_ms: 6_000,
            max_session_timeout_ms: 1_800_000,
            max_size: 10_000,
            initial_rebalance_delay_ms: 3_000,
            consumer_session_timeout_ms: 45_000,
            consumer_heartbeat_interval_ms: 5_000,
            consumer_min_session_timeout_ms: 45_000,
            consumer_max_session_timeout_ms: 60_000,
            consumer_min_heartbeat_interval_ms: 5_000,
            consumer_max_heartbeat_interval_ms: 15_000,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsSettings {
    pub enabled: bool,
    pub prefix: String,
    /// When set, `/metrics`, the status page and `/api/v1/` need `Authorization: Bearer <this>`
    /// (`/health` and `/ready` stay open for probes).
    pub bearer_token: Option<String>,
    /// When both are set, the same pages also accept HTTP basic authentication with them.
    pub basic_username: Option<String>,
    pub basic_password: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct PerformanceSettings {
    pub tcp_nodelay: bool,
    /// SO_SNDBUF for client sockets (0 = OS default).
    pub socket_send_buffer_bytes: usize,
    /// SO_RCVBUF for client sockets (0 = OS default).
    pub socket_recv_buffer_bytes: usize,
    /// Worker threads (actix arbiters) that run Connection and PartitionLeader actors
    /// (0 = number of cores).
    pub buffer_pool_size: usize,
    /// zstd level of the Parquet pages the broker writes.
    pub compression_level: i32,
}

/// TLS for SSL and SASL_SSL listeners (rustls; TLS 1.2 and 1.3). Certificate and key files
/// are re-read on SIGHUP and when they change on disk; connections keep their session.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsSettings {
    /// PEM certificate chain (the broker's certificate first).
    pub cert_file: Option<String>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: Option<String>,
    /// PEM CA certificates that client certificates must chain to (mutual TLS).
    pub client_ca_file: Option<String>,
    /// `none`, `requested` (verified when presented) or `required` (Kafka's
    /// `ssl.client.auth`).
    pub client_auth: String,
    /// A handshake not finished by then closes the connection.
    pub handshake_timeout_ms: u64,
}

impl Default for TlsSettings {
    fn default() -> Self {
        TlsSettings {
            cert_file: None,
            key_file: None,
            client_ca_file: None,
            client_auth: "none".into(),
            handshake_timeout_ms: 10_000,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthSettings {
    /// Require SASL authentication on the Kafka port.
    pub enabled: bool,
    /// The mechanism (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512) when `mechanisms` is empty.
    pub mechanism: String,
    /// Several enabled mechanisms.
    pub mechanisms: Vec<String>,
    /// A PLAIN user, as in the seed config.
    pub plain_username: String,
    pub plain_password: String,
    /// More users: a PLAIN password and/or salted SCRAM credentials
    /// (`heraclitus scram-credential` prints one).
    pub users: Vec<UserSettings>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct UserSettings {
    pub username: String,
    #[serde(default)]
    pub password: Option<String>,
    #[serde(default)]
    pub scram_sha_256: Option<String>,
    #[serde(default)]
    pub scram_sha_512: Option<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            bind_host: "0.0.0.0".into(),
            kafka_port: 9092,
            http_port: 9093,
            http_tls: false,
            advertised_host: "127.0.0.1".into(),
            advertised_port: None,
            listeners: None,
            advertised_listeners: None,
            tls: TlsSettings::default(),
            node_id: None,
            auto_create_topics: true,
            default_partitions: 1,
            max_replication_factor: None,
            max_request_bytes: DEFAULT_MAX_REQUEST_BYTES,
            max_message_bytes: 1024 * 1024 + 12,
            max_in_flight_per_connection: 1000,
            max_in_flight_bytes_per_connection: 16 * 1024 * 1024,
            fetch_max_bytes: 55 * 1024 * 1024,
            fetch_session_cache_slots: 1000,
            max_connections: 10_000,
            max_connections_per_ip: 10_000,
            max_partitions: 100_000,
            max_unflushed_bytes: 256 * 1024 * 1024,
            max_decompressed_bytes_in_flight: 256 * 1024 * 1024,
            producer_id_expiration_ms: 86_400_000,
            storage: StorageSettings::default(),
            batching: BatchingSettings::default(),
            retention: RetentionSettings::default(),
            groups: GroupSettings::default(),
            metrics: MetricsSettings::default(),
            performance: PerformanceSettings::default(),
            auth: AuthSettings::default(),
            authorization: AuthorizationSettings::default(),
            cluster: ClusterSettings::default(),
        }
    }
}

impl Default for StorageSettings {
    fn default() -> Self {
        StorageSettings {
            path: "./data".into(),
            hot_tail_bytes: 32 * 1024 * 1024,
            segment_cache_bytes: 64 * 1024 * 1024,
            merge_target_bytes: 64 * 1024 * 1024,
            merge_min_segments: 8,
            merge_interval_ms: 10_000,
            max_object_bytes: 256 * 1024 * 1024,
            compaction_delay_ms: None,
            checkpoint_interval_ms: 10_000,
            compaction_batch_bytes: 256 * 1024 * 1024,
        }
    }
}

impl Default for BatchingSettings {
    fn default() -> Self {
        BatchingSettings {
            max_batch_size: 8 * 1024 * 1024,
            max_batch_messages: 100_000,
            flush_interval_ms: None,
        }
    }
}

impl Default for RetentionSettings {
    fn default() -> Self {
        RetentionSettings {
            ms: 7 * 24 * 3600 * 1000,
            bytes: -1,
            check_interval_ms: 30_000,
        }
    }
}

impl Default for MetricsSettings {
    fn default() -> Self {
        MetricsSettings {
            enabled: true,
            prefix: "heraclitus".into(),
            bearer_token: None,
            basic_username: None,
            basic_password: None,
        }
    }
}

impl Default for PerformanceSettings {
    fn default() -> Self {
        PerformanceSettings {
            tcp_nodelay: true,
            socket_send_buffer_bytes: 0,
            socket_recv_buffer_bytes: 0,
            buffer_pool_size: 0,
            compression_level: 1,
        }
    }
}

impl Default for AuthSettings {
    fn default() -> Self {
        AuthSettings {
            enabled: false,
            mechanism: "PLAIN".into(),
            mechanisms: Vec::new(),
            plain_username: String::new(),
            plain_password: String::new(),
            users: Vec::new(),
        }
    }
}

/// Loading or validating the configuration failed; the message names the key.
#[derive(Debug, thiserror::Error)]
#[error("configuration error: {0}")]
pub struct ConfigError(pub String);

impl Settings {
    /// Layer defaults, the YAML file (required when given explicitly, optional
    /// `heraclitus.yaml` in the working directory otherwise) and `HERACLITUS_…` variables.
    pub fn load(file: Option<&Path>) -> Result<Settings, ConfigError> {
        let mut builder = config::Config::builder();
        match file {
            Some(path) => {
                builder = builder.add_source(
                    config::File::from(path)
                        .format(config::FileFormat::Yaml)
                        .required(true),
                )
            }
            None => {
                builder = builder.add_source(
                    config::File::with_name("heraclitus.yaml")
                        .format(config::FileFormat::Yaml)
                        .required(false),
                )
            }
        }
        builder = builder.add_source(
            config::Environment::with_prefix("HERACLITUS")
                .prefix_separator("_")
                .separator("__")
                .try_parsing(true),
        );
        let built = builder.build().map_err(|e| ConfigError(e.to_string()))?;
        let settings: Settings = built
            .try_deserialize()
            .map_err(|e| ConfigError(e.to_string()))?;
        settings.validate()?;
        Ok(settings)
    }

    /// Reject values that would make the broker misbehave, naming the key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |k: &str, why: &str| Err(ConfigError(format!("{k}: {why}")));
        if self.default_partitions < 1 {
            return bad("default_partitions", "must be at least 1");
        }
        if self.max_replication_factor.is_some_and(|r| r < 1) {
            return bad("max_replication_factor", "must be at least 1 (or null)");
        }
        if self.http_tls && (self.tls.cert_file.is_none() || self.tls.key_file.is_none()) {
            return bad("http_tls", "needs tls.cert_file and tls.key_file");
        }
        if !matches!(self.authorization.ssl_principal.as_str(), "dn" | "cn") {
            return bad("authorization.ssl_principal", "must be dn or cn");
        }
        for u in &self.authorization.super_users {
            if !u
                .split_once(':')
                .is_some_and(|(k, n)| !k.is_empty() && !n.is_empty())
            {
                return bad(
                    "authorization.super_users",
                    "principals are written Type:name, e.g. User:admin",
                );
            }
        }
        if self.max_request_bytes < 1024 || self.max_request_bytes > i32::MAX as usize {
            return bad("max_request_bytes", "must be between 1024 and 2147483647");
        }
        if self.max_message_bytes < 64 || self.max_message_bytes > self.max_request_bytes {
            return bad(
                "max_message_bytes",
                "must be between 64 and max_request_bytes",
            );
        }
        if self.max_in_flight_bytes_per_connection < 1024 {
            return bad(
                "max_in_flight_bytes_per_connection",
                "must be at least 1024",
            );
        }
        if self.max_in_flight_per_connection == 0 {
            return bad("max_in_flight_per_connection", "must be at least 1");
        }
        if self.fetch_session_cache_slots > 1_000_000 {
            return bad("fetch_session_cache_slots", "must be at most 1000000");
        }
        if self.fetch_max_bytes < 1024 || self.fetch_max_bytes > i32::MAX as usize {
            return bad("fetch_max_bytes", "must be between 1024 and 2147483647");
        }
        if self.max_connections == 0 {
            return bad("max_connections", "must be at least 1");
        }
        if self.max_connections_per_ip == 0 {
            return bad("max_connections_per_ip", "must be at least 1");
        }
        if self.max_partitions == 0 {
            return bad("max_partitions", "must be at least 1");
        }
        if self.max_unflushed_bytes < self.max_request_bytes.min(64 * 1024 * 1024) {
            return bad(
                "max_unflushed_bytes",
                "must be at least max_request_bytes (or 64 MiB, whichever is smaller)",
            );
        }
        if self.max_decompressed_bytes_in_flight < 1024 * 1024 {
            return bad("max_decompressed_bytes_in_flight", "must be at least 1 MiB");
        }
        if self.producer_id_expiration_ms == 0 {
            return bad("producer_id_expiration_ms", "must be at least 1");
        }
        if self.storage.max_object_bytes < 1024 * 1024
            || self.storage.max_object_bytes > 4 * 1024 * 1024 * 1024
        {
            return bad(
                "storage.max_object_bytes",
                "must be between 1 MiB and 4 GiB",
            );
        }
        if self.storage.path.trim().is_empty() {
            return bad("storage.path", "must not be empty");
        }
        if self.batching.max_batch_size == 0 {
            return bad("batching.max_batch_size", "must be at least 1");
        }
        if self.batching.max_batch_messages == 0 {
            return bad("batching.max_batch_messages", "must be at least 1");
        }
        if !(-7..=22).contains(&self.performance.compression_level) {
            return bad(
                "performance.compression_level",
                "zstd level must be in -7..=22",
            );
        }
        if self.advertised_host.trim().is_empty() {
            return bad("advertised_host", "must not be empty");
        }
        let listeners = match crate::network::listeners::resolve(self) {
            Ok(l) => l,
            Err(e) => return bad("listeners", &e),
        };
        let t = &self.tls;
        if !["none", "requested", "required"].contains(&t.client_auth.as_str()) {
            return bad("tls.client_auth", "must be none, requested or required");
        }
        if t.client_auth != "none" && t.client_ca_file.is_none() {
            return bad(
                "tls.client_ca_file",
                "needed to verify client certificates (tls.client_auth)",
            );
        }
        if !(100..=600_000).contains(&t.handshake_timeout_ms) {
            return bad("tls.handshake_timeout_ms", "must be between 100 and 600000");
        }
        for l in &listeners {
            if l.protocol.tls() && (t.cert_file.is_none() || t.key_file.is_none()) {
                return bad(
                    "tls.cert_file",
                    &format!(
                        "the {} listener needs tls.cert_file and tls.key_file",
                        l.name()
                    ),
                );
            }
            if l.protocol.sasl() && !self.auth.enabled {
                return bad(
                    "auth.enabled",
                    &format!(
                        "the {} listener needs SASL users (auth.enabled and users)",
                        l.name()
                    ),
                );
            }
        }
        if self.node_id.is_some_and(|n| n < 0) {
            return bad("node_id", "must be 0 or more");
        }
        let c = &self.cluster;
        if let Some(dsn) = &c.metadata_store {
            if dsn.parse::<tokio_postgres::Config>().is_err() {
                return bad(
                    "cluster.metadata_store",
                    "not a PostgreSQL connection string (postgres://user@host:port/db)",
                );
            }
            if self.storage.path.starts_with("memory://") {
                return bad(
                    "storage.path",
                    "cluster mode needs storage all brokers share (a folder or s3://), not memory://",
                );
            }
        }
        if c.heartbeat_interval_ms == 0 || c.poll_interval_ms == 0 {
            return bad(
                "cluster.heartbeat_interval_ms",
                "intervals must be at least 1 ms",
            );
        }
        if c.session_timeout_ms < 2 * c.heartbeat_interval_ms {
            return bad(
                "cluster.session_timeout_ms",
                "must be at least twice cluster.heartbeat_interval_ms",
            );
        }
        if !(1..=1000).contains(&c.coordinator_slots) {
            return bad("cluster.coordinator_slots", "must be between 1 and 1000");
        }
        let p = &self.metrics.prefix;
        let valid_prefix = p
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid_prefix {
            return bad(
                "metrics.prefix",
                "must be a Prometheus name: letters, digits and '_', not starting with a digit",
            );
        }
        crate::auth::Users::from_settings(&self.auth).map_err(ConfigError)?;

        if self.storage.merge_min_segments < 2 {
            return bad("storage.merge_min_segments", "must be at least 2");
        }
        if self.storage.merge_interval_ms == 0 {
            return bad("storage.merge_interval_ms", "must be at least 1");
        }
        if self.groups.min_session_timeout_ms > self.groups.max_session_timeout_ms {
            return bad(
                "groups.min_session_timeout_ms",
                "must not exceed groups.max_session_timeout_ms",
            );
        }
        if self.groups.consumer_min_session_timeout_ms > self.groups.consumer_max_session_timeout_ms
            || self.groups.consumer_min_heartbeat_interval_ms
                > self.groups.consumer_max_heartbeat_interval_ms
        {
            return bad(
                "groups.consumer_min_session_timeout_ms",
                "each groups.consumer_min_* must not exceed its groups.consumer_max_*",
            );
        }
        if self.groups.consumer_heartbeat_interval_ms == 0
            || self.groups.consumer_heartbeat_interval_ms >= self.groups.consumer_session_timeout_ms
        {
            return bad(
                "groups.consumer_heartbeat_interval_ms",
                "must be positive and below groups.consumer_session_timeout_ms",
            );
        }
        if self.groups.max_size == 0 {
            return bad("groups.max_size", "must be at least 1");
        }
        if self.retention.check_interval_ms == 0 {
            return bad("retention.check_interval_ms", "must be at least 1");
        }
        Ok(())
    }

    /// Whether the log lives on S3 (request-priced: defaults favour fewer, larger requests).
    pub fn storage_is_s3(&self) -> bool {
        self.storage.path.trim().starts_with("s3://")
    }

    /// The flush interval in effect (ms).
    pub fn flush_interval_ms(&self) -> u64 {
        self.batching
            .flush_interval_ms
            .unwrap_or(if self.storage_is_s3() { 250 } else { 1 })
    }

    /// The compaction delay in effect (ms).
    pub fn compaction_delay_ms(&self) -> u64 {
        self.storage
            .compaction_delay_ms
            .unwrap_or(if self.storage_is_s3() {
                600_000
            } else {
                10_000
            })
    }

    pub fn advertised_port(&self) -> u16 {
        self.advertised_port.unwrap_or(self.kafka_port)
    }

    /// The settings as YAML in the shape of `heraclitus.yaml` (loadable again), with every
    /// secret (passwords, SCRAM credentials) replaced by `"****"`.
    pub fn to_masked_yaml(&self) -> String {
        let mut s = self.clone();
        let mask = |v: &mut String| {
            if !v.is_empty() {
                *v = "****".into();
            }
        };
        mask(&mut s.auth.plain_password);
        for v in [&mut s.metrics.bearer_token, &mut s.metrics.basic_password]
            .into_iter()
            .flatten()
        {
            mask(v);
        }
        for u in s.auth.users.iter_mut() {
            for v in [&mut u.password, &mut u.scram_sha_256, &mut u.scram_sha_512]
                .into_iter()
                .flatten()
            {
                mask(v);
            }
        }
        if let Some(dsn) = s.cluster.metadata_store.as_mut() {
            *dsn = mask_dsn_password(dsn);
        }
        let value = serde_json::to_value(&s).unwrap_or_default();
        let mut out = String::new();
        yaml_value(&value, 0, &mut out);
        out
    }
}

/// `postgres://user:secret@host/db` → `postgres://user:****@host/db`; key=value DSNs get their
/// `password=` value masked.
fn mask_dsn_password(dsn: &str) -> String {
    if let Some((scheme, rest)) = dsn.split_once("://") {
        if let Some((auth, host)) = rest.split_once('@') {
            if let Some((user, _)) = auth.split_once(':') {
                return format!("{scheme}://{user}:****@{host}");
            }
        }
        return dsn.to_string();
    }
    dsn.split_whitespace()
        .map(|kv| {
            if kv.starts_with("password=") {
                "password=****".to_string()
            } else {
                kv.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Emit a JSON value as block-style YAML (strings double-quoted, JSON escapes being valid
/// YAML escapes), so the output can be loaded back as a configuration file.
fn yaml_value(v: &serde_json::Value, indent: usize, out: &mut String) {
    use serde_json::Value;
    let pad = " ".repeat(indent);
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                match v {
                    Value::Object(inner) if !inner.is_empty() => {
                        out.push_str(&format!("{pad}{k}:\n"));
                        yaml_value(v, indent + 2, out);
                    }
                    Value::Array(items) if !items.is_empty() => {
                        out.push_str(&format!("{pad}{k}:\n"));
                        yaml_value(v, indent + 2, out);
                    }
                    _ => out.push_str(&format!("{pad}{k}: {}\n", yaml_scalar(v))),
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                match item {
                    Value::Object(m) if !m.is_empty() => {
                        let mut nested = String::new();
                        yaml_value(item, indent + 2, &mut nested);
                        // The first key goes on the dash's line.
                        let trimmed = nested.trim_start_matches(' ');
                        out.push_str(&format!("{pad}- {trimmed}"));
                    }
                    _ => out.push_str(&format!("{pad}- {}\n", yaml_scalar(item))),
                }
            }
        }
        other => out.push_str(&format!("{pad}{}\n", yaml_scalar(other))),
    }
}

fn yaml_scalar(v: &serde_json::Value) -> String {
    use serde_json::Value;
    match v {
        Value::Null => "null".into(),
        Value::Object(_) => "{}".into(),
        Value::Array(_) => "[]".into(),
        // JSON strings are YAML double-quoted strings.
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn file_overrides_defaults_and_dsn_is_an_alias() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        writeln!(
            f,
            "kafka_port: 19092\nstorage:\n  dsn: memory://\nbatching:\n  flush_interval_ms: 7"
        )
        .unwrap();
        let s = Settings::load(Some(f.path())).unwrap();
        assert_eq!(s.kafka_port, 19092);
        assert_eq!(s.storage.path, "memory://");
        assert_eq!(s.flush_interval_ms(), 7);
        let mut d = Settings::default();
        assert_eq!(
            (d.flush_interval_ms(), d.compaction_delay_ms()),
            (1, 10_000)
        );
        d.storage.path = "s3://bucket/prefix".into();
        assert_eq!(
            (d.flush_interval_ms(), d.compaction_delay_ms()),
            (250, 600_000)
        );
        assert_eq!(s.http_port, 9093);
    }

    /// The documented heraclitus.yaml must load and state exactly the built-in defaults.
    #[test]
    fn shipped_yaml_documents_the_defaults() {
        let path = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/heraclitus.yaml"));
        let s = Settings::load(Some(path)).unwrap();
        let d = Settings::default();
        assert_eq!(format!("{s:?}"), format!("{d:?}"));
    }

    /// `heraclitus config` prints what the broker would run with: loadable again, secrets masked.
    #[test]
    fn masked_yaml_round_trips_without_secrets() {
        let mut s = Settings::default();
        s.auth.plain_username = "admin".into();
        s.auth.plain_password = "hunter2".into();
        s.auth.users.push(UserSettings {
            username: "bob".into(),
            password: Some("pw".into()),
            scram_sha_256: None,
            scram_sha_512: None,
        });
        s.kafka_port = 19_092;
        let y = s.to_masked_yaml();
        assert!(!y.contains("hunter2") && !y.contains("\"pw\""), "{y}");
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(y.as_bytes()).unwrap();
        let back = Settings::load(Some(f.path())).unwrap();
        assert_eq!(back.kafka_port, 19_092);
        assert_eq!(back.auth.plain_password, "****");
        assert_eq!(back.auth.users[0].username, "bob");
        let d = Settings::default().to_masked_yaml();
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(d.as_bytes()).unwrap();
        let back = Settings::load(Some(f.path())).unwrap();
        assert_eq!(format!("{back:?}"), format!("{:?}", Settings::default()));
    }

    #[test]
    fn unknown_key_is_rejected_with_its_name() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        writeln!(f, "storage:\n  pathh: /tmp/x").unwrap();
        let e = Settings::load(Some(f.path())).unwrap_err().to_string();
        assert!(e.contains("pathh"), "{e}");
    }

    #[test]
    fn bad_value_is_rejected_with_its_name() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        writeln!(f, "default_partitions: 0").unwrap();
        let e = Settings::load(Some(f.path())).unwrap_err().to_string();
        assert!(e.contains("default_partitions"), "{e}");
        let mut f = tempfile::NamedTempFile::new().unwrap();
        writeln!(f, "kafka_port: notaport").unwrap();
        let e = Settings::load(Some(f.path())).unwrap_err().to_string();
        assert!(e.contains("kafka_port"), "{e}");
        let mut f = tempfile::NamedTempFile::new().unwrap();
        writeln!(f, "metrics:\n  prefix: my-broker").unwrap();
        let e = Settings::load(Some(f.path())).unwrap_err().to_string();
        assert!(e.contains("metrics.prefix"), "{e}");
    }
}
