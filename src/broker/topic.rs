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
    ("cleanup.policy", "delete (compaction is not supported)"),
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

/// Validate one topic config entry.
pub fn validate_config(key: &str, value: &str) -> Result<()> {
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
        "max.message.bytes" => long(0),
        "segment.bytes" | "segment.ms" => long(1),
        "cleanup.policy" => match value {
            "delete" => Ok(()),
            _ => Err(Error::InvalidConfig(format!(
                "cleanup.policy '{value}' is not supported (only 'delete')"
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
        assert!(validate_config("cleanup.policy", "compact").is_err());
        assert!(validate_config("compression.type", "zstd").is_ok());
        assert!(validate_config("bogus", "1").is_err());
    }

    #[test]
    fn cluster_id_is_22_chars() {
        assert_eq!(base64url_id(&[0u8; 16]), "AAAAAAAAAAAAAAAAAAAAAA");
        assert_eq!(base64url_id(&[255u8; 16]).len(), 22);
    }
}
