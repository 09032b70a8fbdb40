//! The accept loop: accepts client sockets, applies socket options from config, and starts a
//! Connection actor for each on one of the worker arbiters (round-robin), moving the socket
//! into that arbiter's runtime.

use super::connection::Connection;
use crate::broker::Broker;
use actix::prelude::*;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::net::TcpListener;

/// Connection counters (metrics).
#[derive(Debug, Default)]
pub struct ConnStats {
    pub accepted: AtomicU64,
    pub open: AtomicU64,
}

pub async fn accept_loop(
    listener: TcpListener,
    broker: Arc<Broker>,
    arbiters: Vec<ArbiterHandle>,
    stats: Arc<ConnStats>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut next = 0usize;
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.changed() => break,
        };
        let (stream, peer) = match accepted {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let perf = &broker.settings.performance;
        if let Err(e) = stream.set_nodelay(perf.tcp_nodelay) {
            tracing::debug!("set_nodelay: {e}");
        }
        let sock = socket2::SockRef::from(&stream);
        if perf.socket_send_buffer_bytes > 0 {
            let _ = sock.set_send_buffer_size(perf.socket_send_buffer_bytes);
        }
        if perf.socket_recv_buffer_bytes > 0 {
            let _ = sock.set_recv_buffer_size(perf.socket_recv_buffer_bytes);
        }
        stats.accepted.fetch_add(1, Ordering::Relaxed);
        broker.metrics.connections_accepted.inc();
        tracing::debug!("accepted connection from {peer}");
        let broker = broker.clone();
        let stats2 = stats.clone();
        if arbiters.is_empty() {
            Connection::start_on(stream, peer, broker, stats2);
            continue;
        }
        let arb = &arbiters[next % arbiters.len()];
        next = next.wrapping_add(1);
        match stream.into_std() {
            Ok(std_stream) => {
                arb.spawn(async move {
                    match tokio::net::TcpStream::from_std(std_stream) {
                        Ok(s) => {
                            Connection::start_on(s, peer, broker, stats2);
                        }
                        Err(e) => tracing::warn!("cannot adopt socket from {peer}: {e}"),
                    }
                });
            }
            Err(e) => tracing::warn!("cannot move socket from {peer}: {e}"),
        }
    }
    tracing::info!("kafka listener stopped accepting");
}
