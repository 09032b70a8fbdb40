//! Heraclitus: a Kafka-compatible broker whose log is stored as Parquet on object storage.
//!
//! The folder layout follows the data path of a request:
//! `network` (accept loop, Connection actors, frame codec) → `handlers` (one file per Kafka API)
//! → `broker` (topic registry, partition leaders) and `group` (consumer-group coordinators) → `log` (PartitionLeader actor over a plain
//! partition log) → `storage` (SegmentWriter actor, Parquet segments, object_store).
//! `protocol` holds the wire-level pieces we own (frames, record batches, compression).

pub mod alloc;
pub mod auth;
pub mod broker;
pub mod cluster;
pub mod config;
pub mod error;
pub mod group;
pub mod handlers;
pub mod http;
pub mod log;
pub mod metrics;
pub mod network;
pub mod protocol;
pub mod server;
pub mod status;
pub mod storage;
pub mod txn;

/// Every binary linking the library (the broker, tests, benchmarks, fuzzers) gets the
/// allocator that makes hostile array counts harmless (see [`alloc`]).
#[global_allocator]
static GLOBAL: alloc::ReservingAlloc = alloc::ReservingAlloc;
