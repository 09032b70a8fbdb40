//! The one internal error type of the broker and its mapping to Kafka error codes.
//!
//! Every failure a client can observe goes through [`Error::code`]: that is the only place where
//! internal failures become Kafka wire error codes.

use thiserror::Error;

/// Kafka wire error codes we emit (see Kafka's `Errors.java`).
pub mod code {
    pub const NONE: i16 = 0;
    pub const UNKNOWN_SERVER_ERROR: i16 = -1;
    pub const OFFSET_OUT_OF_RANGE: i16 = 1;
    pub const CORRUPT_MESSAGE: i16 = 2;
    pub const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
    pub const INVALID_FETCH_SIZE: i16 = 4;
    pub const LEADER_NOT_AVAILABLE: i16 = 5;
    pub const NOT_LEADER_OR_FOLLOWER: i16 = 6;
    pub const NOT_COORDINATOR: i16 = 16;
    pub const FENCED_LEADER_EPOCH: i16 = 74;
    pub const UNKNOWN_LEADER_EPOCH: i16 = 75;
    pub const REQUEST_TIMED_OUT: i16 = 7;
    pub const MESSAGE_TOO_LARGE: i16 = 10;
    pub const INVALID_TOPIC_EXCEPTION: i16 = 17;
    pub const RECORD_LIST_TOO_LARGE: i16 = 18;
    pub const NOT_ENOUGH_REPLICAS: i16 = 19;
    pub const INVALID_REQUIRED_ACKS: i16 = 21;
    pub const TOPIC_AUTHORIZATION_FAILED: i16 = 29;
    pub const GROUP_AUTHORIZATION_FAILED: i16 = 30;
    pub const CLUSTER_AUTHORIZATION_FAILED: i16 = 31;
    pub const UNSUPPORTED_VERSION: i16 = 35;
    pub const TOPIC_ALREADY_EXISTS: i16 = 36;
    pub const INVALID_PARTITIONS: i16 = 37;
    pub const INVALID_REPLICATION_FACTOR: i16 = 38;
    pub const INVALID_REPLICA_ASSIGNMENT: i16 = 39;
    pub const INVALID_CONFIG: i16 = 40;
    pub const INVALID_REQUEST: i16 = 42;
    pub const UNSUPPORTED_FOR_MESSAGE_FORMAT: i16 = 43;
    pub const POLICY_VIOLATION: i16 = 44;
    pub const KAFKA_STORAGE_ERROR: i16 = 56;
    pub const OUT_OF_ORDER_SEQUENCE_NUMBER: i16 = 45;
    pub const INVALID_PRODUCER_EPOCH: i16 = 47;
    pub const INVALID_TXN_STATE: i16 = 48;
    pub const TRANSACTIONAL_ID_AUTHORIZATION_FAILED: i16 = 53;
    pub const TRANSACTIONAL_ID_NOT_FOUND: i16 = 105;
    pub const SECURITY_DISABLED: i16 = 54;
    pub const SASL_AUTHENTICATION_FAILED: i16 = 58;
    pub const UNSUPPORTED_SASL_MECHANISM: i16 = 33;
    pub const ILLEGAL_SASL_STATE: i16 = 34;

    pub const UNKNOWN_TOPIC_ID: i16 = 100;
    pub const INVALID_RECORD: i16 = 87;
    pub const UNSUPPORTED_COMPRESSION_TYPE: i16 = 76;

    // Groups (the classic protocol's own codes are in `group::state`).
    pub const UNKNOWN_MEMBER_ID: i16 = 25;
    pub const GROUP_ID_NOT_FOUND: i16 = 69;
    pub const GROUP_MAX_SIZE_REACHED: i16 = 81;
    pub const FENCED_INSTANCE_ID: i16 = 82;
    pub const FENCED_MEMBER_EPOCH: i16 = 110;
    pub const UNRELEASED_INSTANCE_ID: i16 = 111;
    pub const UNSUPPORTED_ASSIGNOR: i16 = 112;
    pub const STALE_MEMBER_EPOCH: i16 = 113;
    pub const INVALID_REGULAR_EXPRESSION: i16 = 128;
}

/// Everything that can go wrong inside the broker.
#[derive(Debug, Error)]
pub enum Error {
    #[error("corrupt record batch: {0}")]
    CorruptMessage(String),
    #[error("invalid record: {0}")]
    InvalidRecord(String),
    /// Records without a key produced to a compacted topic (their indexes in the batch).
    #[error("Compacted topic cannot accept message without key in topic partition {0}.")]
    KeylessRecords(String, Vec<i32>),
    #[error("record batch too large: {0} bytes")]
    MessageTooLarge(usize),
    #[error("unsupported compression codec {0}")]
    UnsupportedCompression(i16),
    #[error("unsupported record batch magic {0}")]
    UnsupportedMagic(i8),
    #[error("unknown topic or partition")]
    UnknownTopicOrPartition,
    #[error("unknown topic id")]
    UnknownTopicId,
    #[error("offset {offset} out of range [{start}, {end}]")]
    OffsetOutOfRange { offset: i64, start: i64, end: i64 },
    #[error("invalid topic: {0}")]
    InvalidTopic(String),
    #[error("topic already exists: {0}")]
    TopicAlreadyExists(String),
    #[error("invalid partitions: {0}")]
    InvalidPartitions(String),
    #[error("invalid replication factor: {0}")]
    InvalidReplicationFactor(String),
    #[error("invalid replica assignment: {0}")]
    InvalidReplicaAssignment(String),
    #[error("invalid config: {0}")]
    InvalidConfig(String),
    #[error("out of order sequence number: {0}")]
    OutOfOrderSequence(String),
    #[error("invalid producer epoch: {0}")]
    InvalidProducerEpoch(String),
    #[error("invalid required acks {0}")]
    InvalidRequiredAcks(i16),
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    #[error("topic '{0}' is still being deleted; retry")]
    TopicDeletionInProgress(String),
    #[error("broker limit reached: {0}")]
    LimitReached(String),
    #[error("the partition is not available (shutting down or deleted)")]
    NotLeader,
    /// This broker does not coordinate the group (cluster mode: another broker holds its slot).
    #[error("this broker is not the group's coordinator")]
    NotCoordinator,
    /// The partition's leadership moved to another broker (cluster mode: the commit of a flush
    /// found a newer leader epoch): nothing of it was acknowledged.
    #[error("leadership of the partition moved to another broker")]
    Fenced,
    #[error("request timed out")]
    Timeout,
    /// The ACLs do not allow this principal the operation on the topic.
    #[error("Topic authorization failed.")]
    TopicAuthorization,
    #[error("Group authorization failed.")]
    GroupAuthorization,
    #[error("Cluster authorization failed.")]
    ClusterAuthorization,
    /// Transactional records without a transactional id, or one the principal may not use.
    #[error("Transactional Id authorization failed.")]
    TransactionalIdAuthorization,
    /// A transactional operation out of place (e.g. transactional records of a transaction
    /// the partition was not added to, or plain records inside an open transaction).
    #[error("{0}")]
    InvalidTxnState(String),
    #[error("storage: {0}")]
    Storage(String),
    #[error("storage object already exists: {0}")]
    AlreadyExists(String),
    #[error("parquet: {0}")]
    Parquet(String),
    #[error("internal: {0}")]
    Internal(String),
}

impl Error {
    /// The Kafka error code a client sees for this error. The single mapping point.
    pub fn code(&self) -> i16 {
        use code::*;
        match self {
            Error::CorruptMessage(_) => CORRUPT_MESSAGE,
            Error::InvalidRecord(_) | Error::KeylessRecords(..) => INVALID_RECORD,
            Error::MessageTooLarge(_) => MESSAGE_TOO_LARGE,
            Error::UnsupportedCompression(_) => UNSUPPORTED_COMPRESSION_TYPE,
            Error::UnsupportedMagic(_) => UNSUPPORTED_FOR_MESSAGE_FORMAT,
            Error::UnknownTopicOrPartition => UNKNOWN_TOPIC_OR_PARTITION,
            Error::UnknownTopicId => UNKNOWN_TOPIC_ID,
            Error::OffsetOutOfRange { .. } => OFFSET_OUT_OF_RANGE,
            Error::InvalidTopic(_) => INVALID_TOPIC_EXCEPTION,
            Error::TopicAlreadyExists(_) => TOPIC_ALREADY_EXISTS,
            Error::InvalidPartitions(_) => INVALID_PARTITIONS,
            Error::InvalidReplicationFactor(_) => INVALID_REPLICATION_FACTOR,
            Error::InvalidReplicaAssignment(_) => INVALID_REPLICA_ASSIGNMENT,

            Error::InvalidConfig(_) => INVALID_CONFIG,
            Error::InvalidRequiredAcks(_) => INVALID_REQUIRED_ACKS,
            Error::OutOfOrderSequence(_) => OUT_OF_ORDER_SEQUENCE_NUMBER,
            Error::InvalidProducerEpoch(_) => INVALID_PRODUCER_EPOCH,
            Error::InvalidRequest(_) => INVALID_REQUEST,
            // Retriable: the deletion finishes on its own.
            Error::TopicDeletionInProgress(_) => REQUEST_TIMED_OUT,
            Error::LimitReached(_) => POLICY_VIOLATION,
            Error::NotLeader | Error::Fenced => NOT_LEADER_OR_FOLLOWER,
            Error::NotCoordinator => NOT_COORDINATOR,
            Error::Timeout => REQUEST_TIMED_OUT,
            Error::TopicAuthorization => TOPIC_AUTHORIZATION_FAILED,
            Error::GroupAuthorization => GROUP_AUTHORIZATION_FAILED,
            Error::ClusterAuthorization => CLUSTER_AUTHORIZATION_FAILED,
            Error::TransactionalIdAuthorization => TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
            Error::InvalidTxnState(_) => INVALID_TXN_STATE,
            // Retriable: the client retries the produce; nothing was acknowledged.
            Error::Storage(_) | Error::AlreadyExists(_) => KAFKA_STORAGE_ERROR,
            Error::Parquet(_) => KAFKA_STORAGE_ERROR,
            Error::Internal(_) => UNKNOWN_SERVER_ERROR,
        }
    }

    /// A message safe to send to clients: storage and internal failures are described without
    /// their details (object paths, S3 error text), which go to the broker's log instead.
    pub fn message(&self) -> String {
        match self {
            Error::Storage(_) | Error::AlreadyExists(_) | Error::Parquet(_) => {
                "the broker's storage failed; retry (details are in the broker log)".into()
            }
            Error::Internal(_) => "internal broker error (details are in the broker log)".into(),
            other => other.to_string(),
        }
    }
}

impl From<object_store::Error> for Error {
    fn from(e: object_store::Error) -> Self {
        Error::Storage(e.to_string())
    }
}

impl From<parquet::errors::ParquetError> for Error {
    fn from(e: parquet::errors::ParquetError) -> Self {
        Error::Parquet(e.to_string())
    }
}

impl From<arrow::error::ArrowError> for Error {
    fn from(e: arrow::error::ArrowError) -> Self {
        Error::Parquet(e.to_string())
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    /// Client-facing messages used to carry storage paths and S3 error text.
    #[test]
    fn client_messages_hide_storage_details() {
        let e = Error::Storage("s3://bucket/data/topic=x/partition=0/1-2.parquet: 500".into());
        assert!(!e.message().contains("bucket"));
        assert!(!Error::Internal("/var/lib/x".into())
            .message()
            .contains("/var"));
        assert!(Error::InvalidTopic("bad name".into())
            .message()
            .contains("bad name"));
    }

    #[test]
    fn storage_errors_are_retriable_storage_code() {
        assert_eq!(Error::Storage("x".into()).code(), code::KAFKA_STORAGE_ERROR);
        assert_eq!(
            Error::CorruptMessage("crc".into()).code(),
            code::CORRUPT_MESSAGE
        );
        assert_eq!(
            Error::OffsetOutOfRange {
                offset: 5,
                start: 0,
                end: 1
            }
            .code(),
            code::OFFSET_OUT_OF_RANGE
        );
    }
}
