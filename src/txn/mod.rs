//! Transactions (KIP-98): the transaction coordinator's per-id state machine
//! ([`state::TxnMetadata`]). It is not served yet — InitProducerId still refuses transactional
//! ids and FindCoordinator(TRANSACTION) fails fast (see `handlers::find_coordinator`) — until the
//! partition side exists: transactional and control batches kept through the Parquet segments,
//! the last stable offset and the aborted-transaction index that read_committed fetches need.

pub mod state;
