//! Transactions (KIP-98): the transaction coordinator's per-id state machine
//! ([`state::TxnMetadata`]) and the coordinator actor over it ([`coordinator`]), which persists
//! every state change before acting on it and writes the markers through partition leaders.
//! Standalone mode only: in cluster mode transactional ids are still refused.

pub mod coordinator;
pub mod state;
