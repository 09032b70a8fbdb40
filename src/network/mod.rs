//! The Kafka listener: the accept loop ([`listener`]) and one [`connection::Connection`] actor
//! per client socket.

pub mod connection;
pub mod listener;
