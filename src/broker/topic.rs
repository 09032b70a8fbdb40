//! Topic metadata: the persisted document (`meta/topics/{topic}.json`), name validation and
//! the topic configs we accept (and honour).

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Kafka's limit on topic name length.
pub const MAX_TOPIC_NAME_LEN: usize = 249;
/// Upper bound on partitions per topic: far beyond what one broker serves, low enough that a
/// hostile CreateTopics cannot make us start millions of actors.
pub const MAX_PARTITIONS: i32 = 10_000;

/// The persisted description of a topic.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct TopicMeta {
    pub name: String,
    /// Topic id as 32 hex digits.
    pub id: String,
    pub partitions: i32,
    #[serde(default)]
    pub configs: BTreeMap<String, String>,
    #[serde(default)]
    pub created_ms: i64,
    /// Log start offsets moved by DeleteRecords, per partition.
    #[serde(default)]
    pub log_start: BTreeMap<i32, i64>,
}

/// Kafka's topic name rules: 1–249 of `[a-zA-Z0-9._-]`, not `.` or `..`.
pub fn validate_name(name: &str) -> Result<()> {
    if name.is_empty() || name.len() > MAX_TOPIC_NAME_LEN {
        return Err(Error::InvalidTopic(format!(
            "topic name must be 1 to {MAX_TOPIC_NAME_LEN} characters"
        )));
    }
    if name == "." || name == ".." {
        return Err(Error::InvalidTopic(
            "topic name cannot be '.' or '..'".into(),
        ));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '-')
    {
        return Err(Error::InvalidTopic(format!(
            "topic name '{name}' contains characters other than ASCII alphanumerics, '.', '_' and '-'"
        )));
    }
    Ok(())
}

/// Topic configs we accept, with how each value is checked.
pub const TOPIC_CONFIGS: &[(&str, &str)] = &[
    (
        "retention.ms",
        "long >= -1: delete segments whose newest record is older",
    ),
    (
        "retention.bytes",
        "long >= -1: delete oldest segments beyond this size per partition",
    ),
    (
        "cleanup.policy",
        "delete, compact or compact,delete: compact keeps the newest record per key",
    ),
    (
        "delete.retention.ms",
        "long >= 0: how long a compacted topic keeps tombstones",
    ),
    (
        "min.compaction.lag.ms",
        "long >= 0: records younger than this are not compacted",
    ),
    (
        "max.compaction.lag.ms",
        "long >= 1: records older than this are compacted whatever the dirty ratio",
    ),
    (
        "min.cleanable.dirty.ratio",
        "double in [0, 1]: compact once this share of the log is not compacted",
    ),
    (
        "compression.type",
        "producer, uncompressed, gzip, snappy, lz4 or zstd",
    ),
    (
        "max.message.bytes",
        "int >= 0: largest record batch accepted",
    ),
    (
        "segment.bytes",
        "int >= 1: accepted; segment size is governed by batching and merging",
    ),
    (
        "segment.ms",
        "long >= 1: accepted; segment age is governed by batching and merging",
    ),
    ("min.insync.replicas", "1: a single broker has one replica"),
    (
        "message.timestamp.type",
        "CreateTime (LogAppendTime is not supported)",
    ),
];

/// Kafka topic configs that clients and tools set routinely but that have no effect on this
/// broker's storage (replication, local index files, compaction timing, tiered storage). They are
/// validated by type, stored and described — so tools work — and documented as inert.
pub const INERT_TOPIC_CONFIGS: &[(&str, &str)] = &[
    ("file.delete.delay.ms", "long"),
    ("flush.messages", "long"),
    ("flush.ms", "long"),
    ("index.interval.bytes", "int"),
    ("segment.index.bytes", "int"),
    ("segment.jitter.ms", "long"),
    ("preallocate", "bool"),
    ("unclean.leader.election.enable", "bool"),
    ("message.downconversion.enable", "bool"),
    ("message.timestamp.difference.max.ms", "long"),
    ("message.timestamp.before.max.ms", "long"),
    ("message.timestamp.after.max.ms", "long"),
    ("leader.replication.throttled.replicas", "string"),
    ("follower.replication.throttled.replicas", "string"),
    ("local.retention.ms", "long"),
    ("local.retention.bytes", "long"),
    ("remote.storage.enable", "bool"),
];

/// Validate one topic config entry.
pub fn validate_config(key: &str, value: &str) -> Result<()> {
    if let Some((_, t)) = INERT_TOPIC_CONFIGS.iter().find(|(k, _)| *k == key) {
        let ok = match *t {
            "long" | "int" => value.trim().parse::<i64>().is_ok(),
            "bool" => matches!(value.trim(), "true" | "false"),
            "double" => value.trim().parse::<f64>().is_ok(),
            _ => true,
        };
        return if ok {
            Ok(())
        } else {
            Err(Error::InvalidConfig(format!(
                "invalid value '{value}' for {key}: expected a {t}"
            )))
        };
    }
    let long = |min: i64| -> Result<()> {
        match value.trim().parse::<i64>() {
            Ok(v) if v >= min => Ok(()),
            _ => Err(Error::InvalidConfig(format!(
                "invalid value '{value}' for {key}: must be an integer >= {min}"
            ))),
        }
    };
    match key {
        "retention.ms" | "retention.bytes" => long(-1),
        // An int in Kafka: a value past i32::MAX is not a limit but a typo (or an attack).
        "max.message.bytes" => match value.trim().parse::<i64>() {
            Ok(v) if (0..=i32::MAX as i64).contains(&v) => Ok(()),
            _ => Err(Error::InvalidConfig(format!(
                "invalid value '{value}' for {key}: must be an integer in [0, {}]",
                i32::MAX
            ))),
        },
        "segment.bytes" | "segment.ms" => long(1),
        "cleanup.policy" => {
            let parts: Vec<&str> = value.split(',').map(str::trim).collect();
            if !parts.is_empty() && parts.iter().all(|p| matches!(*p, "delete" | "compact")) {
                Ok(())
            } else {
                Err(Error::InvalidConfig(format!(
                    "invalid cleanup.policy '{value}': delete, compact or compact,delete"
                )))
            }
        }
        "delete.retention.ms" | "min.compaction.lag.ms" => long(0),
        "max.compaction.lag.ms" => long(1),
        "min.cleanable.dirty.ratio" => match value.trim().parse::<f64>() {
            Ok(v) if (0.0..=1.0).contains(&v) => Ok(()),
            _ => Err(Error::InvalidConfig(format!(
                "invalid value '{value}' for {key}: must be a number in [0, 1]"
            ))),
        },
        "compression.type" => crate::protocol::compression::Codec::from_config(value)
            .map(|_| ())
            .ok_or_else(|| Error::InvalidConfig(format!("unknown compression.type '{value}'"))),
        "min.insync.replicas" => match value.trim() {
            "1" => Ok(()),
            _ => Err(Error::InvalidConfig(
                "min.insync.replicas must be 1 on a single broker".into(),
            )),
        },
        "message.timestamp.type" => match value {
            "CreateTime" => Ok(()),
            _ => Err(Error::InvalidConfig(format!(
                "message.timestamp.type '{value}' is not supported"
            ))),
        },
        _ => Err(Error::InvalidConfig(format!(
            "unknown topic config '{key}'"
        ))),
    }
}

/// A 16-byte id rendered as the base64url (no padding) string Kafka uses for cluster ids.
pub fn base64url_id(bytes: &[u8; 16]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(22);
    let mut bits: u32 = 0;
    let mut n = 0;
    for &b in bytes {
        bits = (bits << 8) | b as u32;
        n += 8;
        while n >= 6 {
            n -= 6;
            out.push(A[((bits >> n) & 0x3f) as usize] as char);
        }
    }
    if n > 0 {
        out.push(A[((bits << (6 - n)) & 0x3f) as usize] as char);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(validate_name("orders.v1_x-y").is_ok());
        assert!(validate_name("").is_err());
        assert!(validate_name("..").is_err());
        assert!(validate_name("a/b").is_err());
        assert!(validate_name(&"a".repeat(250)).is_err());
    }

    #[test]
    fn configs() {
        assert!(validate_config("retention.ms", "-1").is_ok());
        assert!(validate_config("retention.ms", "x").is_err());
        assert!(validate_config("cleanup.policy", "compact").is_ok());
        assert!(validate_config("cleanup.policy", "compact,delete").is_ok());
        assert!(validate_config("cleanup.policy", "compact,shred").is_err());
        assert!(validate_config("min.cleanable.dirty.ratio", "1.5").is_err());
        assert!(validate_config("delete.retention.ms", "-1").is_err());
        assert!(validate_config("compression.type", "zstd").is_ok());
        assert!(validate_config("bogus", "1").is_err());
    }

    #[test]
    fn cluster_id_is_22_chars() {
        assert_eq!(base64url_id(&[0u8; 16]), "AAAAAAAAAAAAAAAAAAAAAA");
        assert_eq!(base64url_id(&[255u8; 16]).len(), 22);
    }
}

/// Config sources as DescribeConfigs reports them.
pub mod source {
    pub const DYNAMIC_TOPIC_CONFIG: i8 = 1;
    pub const STATIC_BROKER_CONFIG: i8 = 4;
    pub const DEFAULT_CONFIG: i8 = 5;
}

/// Config value types (DescribeConfigs v3+).
pub mod ctype {
    pub const BOOLEAN: i8 = 1;
    pub const STRING: i8 = 2;
    pub const INT: i8 = 3;
    pub const LONG: i8 = 5;
    pub const DOUBLE: i8 = 6;
    pub const LIST: i8 = 7;
}

/// One described config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigEntry {
    pub name: String,
    pub value: String,
    pub source: i8,
    pub read_only: bool,
    pub config_type: i8,
    pub doc: &'static str,
    /// The broker-level value this one overrides, if any (a synonym).
    pub default: Option<(String, String, i8)>,
}

/// The broker default of each topic config, and its broker-level name.
pub fn topic_defaults(
    s: &crate::config::Settings,
) -> Vec<(&'static str, String, &'static str, i8)> {
    vec![
        (
            "retention.ms",
            s.retention.ms.to_string(),
            "log.retention.ms",
            ctype::LONG,
        ),
        (
            "retention.bytes",
            s.retention.bytes.to_string(),
            "log.retention.bytes",
            ctype::LONG,
        ),
        (
            "cleanup.policy",
            "delete".into(),
            "log.cleanup.policy",
            ctype::LIST,
        ),
        (
            "compression.type",
            "producer".into(),
            "compression.type",
            ctype::STRING,
        ),
        (
            "delete.retention.ms",
            "86400000".into(),
            "log.cleaner.delete.retention.ms",
            ctype::LONG,
        ),
        (
            "min.compaction.lag.ms",
            "0".into(),
            "log.cleaner.min.compaction.lag.ms",
            ctype::LONG,
        ),
        (
            "max.compaction.lag.ms",
            i64::MAX.to_string(),
            "log.cleaner.max.compaction.lag.ms",
            ctype::LONG,
        ),
        (
            "min.cleanable.dirty.ratio",
            "0.5".into(),
            "log.cleaner.min.cleanable.ratio",
            ctype::DOUBLE,
        ),
        (
            "max.message.bytes",
            s.max_message_bytes.to_string(),
            "message.max.bytes",
            ctype::INT,
        ),
        (
            "segment.bytes",
            s.storage.merge_target_bytes.to_string(),
            "log.segment.bytes",
            ctype::INT,
        ),
        ("segment.ms", "604800000".into(), "log.roll.ms", ctype::LONG),
        (
            "min.insync.replicas",
            "1".into(),
            "min.insync.replicas",
            ctype::INT,
        ),
        (
            "message.timestamp.type",
            "CreateTime".into(),
            "log.message.timestamp.type",
            ctype::STRING,
        ),
    ]
}

fn doc_of(key: &str) -> &'static str {
    TOPIC_CONFIGS
        .iter()
        .find(|(k, _)| *k == key)
        .map(|(_, d)| *d)
        .unwrap_or("")
}

/// Every config of a topic: its own values (dynamic) or the broker defaults.
pub fn describe_topic(
    s: &crate::config::Settings,
    configs: &BTreeMap<String, String>,
) -> Vec<ConfigEntry> {
    let inert = configs.iter().filter_map(|(k, v)| {
        INERT_TOPIC_CONFIGS
            .iter()
            .find(|(n, _)| n == k)
            .map(|(n, t)| ConfigEntry {
                name: n.to_string(),
                value: v.clone(),
                source: source::DYNAMIC_TOPIC_CONFIG,
                read_only: false,
                config_type: match *t {
                    "long" => ctype::LONG,
                    "int" => ctype::INT,
                    "bool" => ctype::BOOLEAN,
                    _ => ctype::STRING,
                },
                doc: "Accepted for compatibility; no effect on this broker's Parquet storage.",
                default: None,
            })
    });
    let mut out: Vec<ConfigEntry> = topic_defaults(s)
        .into_iter()
        .map(|(k, default, broker_key, t)| {
            let own = configs.get(k);
            ConfigEntry {
                name: k.to_string(),
                value: own.cloned().unwrap_or_else(|| default.clone()),
                source: if own.is_some() {
                    source::DYNAMIC_TOPIC_CONFIG
                } else {
                    source::DEFAULT_CONFIG
                },
                read_only: false,
                config_type: t,
                doc: doc_of(k),
                default: Some((
                    broker_key.to_string(),
                    default,
                    source::STATIC_BROKER_CONFIG,
                )),
            }
        })
        .collect();
    out.extend(inert);
    out
}

/// The broker's configs (read-only: they come from heraclitus.yaml / env / flags).
pub fn describe_broker(
    s: &crate::config::Settings,
    node_id: i32,
    advertised_listeners: String,
) -> Vec<ConfigEntry> {
    let e = |name: &str, value: String, t: i8, doc: &'static str| ConfigEntry {
        name: name.to_string(),
        value,
        source: source::STATIC_BROKER_CONFIG,
        read_only: true,
        config_type: t,
        doc,
        default: None,
    };
    vec![
        e("broker.id", node_id.to_string(), ctype::INT, "node_id"),
        e(
            "advertised.listeners",
            advertised_listeners,
            ctype::STRING,
            "advertised_listeners (or advertised_host / advertised_port)",
        ),
        e(
            "auto.create.topics.enable",
            s.auto_create_topics.to_string(),
            ctype::BOOLEAN,
            "auto_create_topics",
        ),
        e(
            "num.partitions",
            s.default_partitions.to_string(),
            ctype::INT,
            "default_partitions",
        ),
        e(
            "default.replication.factor",
            "1".into(),
            ctype::INT,
            "a single broker",
        ),
        e(
            "message.max.bytes",
            s.max_message_bytes.to_string(),
            ctype::INT,
            "max_message_bytes",
        ),
        e(
            "socket.request.max.bytes",
            s.max_request_bytes.to_string(),
            ctype::INT,
            "max_request_bytes",
        ),
        e(
            "log.retention.ms",
            s.retention.ms.to_string(),
            ctype::LONG,
            "retention.ms",
        ),
        e(
            "log.retention.bytes",
            s.retention.bytes.to_string(),
            ctype::LONG,
            "retention.bytes",
        ),
        e(
            "log.retention.check.interval.ms",
            s.retention.check_interval_ms.to_string(),
            ctype::LONG,
            "retention.check_interval_ms",
        ),
        e(
            "log.cleanup.policy",
            "delete".into(),
            ctype::LIST,
            "only delete",
        ),
        e(
            "compression.type",
            "producer".into(),
            ctype::STRING,
            "producer codec kept",
        ),
        e(
            "log.segment.bytes",
            s.storage.merge_target_bytes.to_string(),
            ctype::INT,
            "storage.merge_target_bytes",
        ),
        e(
            "group.min.session.timeout.ms",
            s.groups.min_session_timeout_ms.to_string(),
            ctype::INT,
            "groups.min_session_timeout_ms",
        ),
        e(
            "group.max.session.timeout.ms",
            s.groups.max_session_timeout_ms.to_string(),
            ctype::INT,
            "groups.max_session_timeout_ms",
        ),
        e(
            "group.max.size",
            s.groups.max_size.to_string(),
            ctype::INT,
            "groups.max_size",
        ),
        e(
            "group.initial.rebalance.delay.ms",
            s.groups.initial_rebalance_delay_ms.to_string(),
            ctype::INT,
            "groups.initial_rebalance_delay_ms",
        ),
        e(
            "offset.metadata.max.bytes",
            "4096".into(),
            ctype::INT,
            "committed metadata limit",
        ),
        e(
            "sasl.enabled.mechanisms",
            if s.auth.enabled {
                s.auth.mechanisms.join(",")
            } else {
                String::new()
            },
            ctype::LIST,
            "auth.mechanisms",
        ),
    ]
}
