//! Partition logs: the plain [`partition::PartitionLog`] (offsets, hot tail, segment index,
//! durability waiters) and the thin [`leader::PartitionLeader`] actor that owns one.

pub mod leader;
pub mod partition;
pub mod producers;
pub mod transactions;

use std::sync::Arc;

/// A topic-partition, cheap to clone.
///
/// Identity below the topic registry is the topic *id*: two incarnations of a topic name (deleted
/// and recreated) are different partitions for the SegmentWriter, the leaders and the storage
/// layout, so an old flush can never land in the new topic. The name is kept for paths readable
/// by people and for logs.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    pub topic: Arc<str>,
    pub topic_id: [u8; 16],
    pub partition: i32,
}

impl TopicPartition {
    /// A partition of a topic without an id (unit tests, legacy segment paths).
    pub fn new(topic: &str, partition: i32) -> Self {
        Self::with_id(topic, [0; 16], partition)
    }

    pub fn with_id(topic: &str, topic_id: [u8; 16], partition: i32) -> Self {
        TopicPartition {
            topic: Arc::from(topic),
            topic_id,
            partition,
        }
    }
}

impl std::fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}
