//! The accept loop: accepts client sockets, applies socket options from config, and starts a
//! Connection actor for each on one of the worker arbiters (round-robin), moving the socket
//! into that arbiter's runtime. Connections beyond `max_connections` (or
//! `max_connections_per_ip` from one address) are closed as soon as they are accepted.

use super::connection::Connection;
use crate::broker::Broker;
use actix::prelude::*;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::net::TcpListener;

/// Connection counters (metrics and connection limits).
#[derive(Debug, Default)]
pub struct ConnStats {
    pub accepted: AtomicU64,
    pub open: AtomicU64,
    /// Open connections per client address.
    per_ip: Mutex<HashMap<IpAddr, usize>>,
}

impl ConnStats {
    /// Count a new connection from `ip` unless that exceeds a limit; `Err` says which.
    pub fn try_open(&self, ip: IpAddr, max: usize, max_per_ip: usize) -> Result<(), String> {
        let mut per_ip = self.per_ip.lock().unwrap_or_else(|e| e.into_inner());
        let open = self.open.load(Ordering::Relaxed) as usize;
        if open >= max {
            return Err(format!(
                "{open} connections are open (max_connections = {max})"
            ));
        }
        let n = per_ip.entry(ip).or_insert(0);
        if *n >= max_per_ip {
            return Err(format!(
                "{n} connections are open from {ip} (max_connections_per_ip = {max_per_ip})"
            ));
        }
        *n += 1;
        self.open.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// A connection from `ip` closed.
    pub fn close(&self, ip: IpAddr) {
        let mut per_ip = self.per_ip.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = per_ip.get_mut(&ip) {
            *n -= 1;
            if *n == 0 {
                per_ip.remove(&ip);
            }
        }
        self.open.fetch_sub(1, Ordering::Relaxed);
    }
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
        let s = &broker.settings;
        if let Err(why) = stats.try_open(peer.ip(), s.max_connections, s.max_connections_per_ip) {
            broker.metrics.connections_refused.inc();
            tracing::warn!("refusing connection from {peer}: {why}");
            drop(stream);
            continue;
        }
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
                        Err(e) => {
                            stats2.close(peer.ip());
                            tracing::warn!("cannot adopt socket from {peer}: {e}")
                        }
                    }
                });
            }
            Err(e) => {
                stats.close(peer.ip());
                tracing::warn!("cannot move socket from {peer}: {e}")
            }
        }
    }
    tracing::info!("kafka listener stopped accepting");
}
