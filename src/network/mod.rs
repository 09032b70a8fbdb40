//! The Kafka listeners: what they are ([`listeners`]: Kafka's `listeners` strings), TLS for the
//! SSL ones ([`tls`]), the accept loop ([`listener`]) and one [`connection::Connection`] actor
//! per client socket.

pub mod connection;
pub mod listener;
pub mod listeners;
pub mod tls;

use listeners::Protocol;

/// A bound listener as connections and handlers see it: its protocol and the address Metadata
/// advertises to clients that connected through it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerInfo {
    pub protocol: Protocol,
    pub advertised_host: String,
    pub advertised_port: u16,
}

impl ListenerInfo {
    pub fn name(&self) -> &'static str {
        self.protocol.name()
    }
}
