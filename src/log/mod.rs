//! Partition logs: the plain [`partition::PartitionLog`] (offsets, hot tail, segment index,
//! durability waiters) and the thin [`leader::PartitionLeader`] actor that owns one.

pub mod leader;
pub mod partition;
pub mod producers;

use std::sync::Arc;

/// A topic-partition, cheap to clone.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    pub topic: Arc<str>,
    pub partition: i32,
}

impl TopicPartition {
    pub fn new(topic: &str, partition: i32) -> Self {
        TopicPartition {
            topic: Arc::from(topic),
            partition,
        }
    }
}

impl std::fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}
