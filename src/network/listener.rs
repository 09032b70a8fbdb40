//! The accept loop of one listener: accepts client sockets, applies socket options from config,
//! and starts a Connection actor for each on one of the worker arbiters (round-robin), moving
//! the socket into that arbiter's runtime (where an SSL listener's TLS handshake runs first). Connections beyond `max_connections` (or
//! `max_connections_per_ip` from one address) are closed as soon as they are accepted.

use super::connection::Connection;
use super::tls::Tls;
use super::ListenerInfo;
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
    info: Arc<ListenerInfo>,
    tls: Option<Arc<Tls>>,
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
        let info = info.clone();
        let tls = tls.clone();
        if arbiters.is_empty() {
            actix::spawn(start_connection(stream, peer, info, tls, broker, stats2));
            continue;
        }
        let arb = &arbiters[next % arbiters.len()];
        next = next.wrapping_add(1);
        match stream.into_std() {
            Ok(std_stream) => {
                arb.spawn(async move {
                    match tokio::net::TcpStream::from_std(std_stream) {
                        Ok(s) => start_connection(s, peer, info, tls, broker, stats2).await,
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
    tracing::info!("{} listener stopped accepting", info.name());
}

/// Start a Connection actor on the current arbiter, after the TLS handshake on SSL listeners.
/// A handshake that fails (a plaintext client, an untrusted or expired client certificate,
/// garbage) or does not finish within `tls.handshake_timeout_ms` closes the socket; the
/// accept loop never waits for it.
async fn start_connection(
    stream: tokio::net::TcpStream,
    peer: std::net::SocketAddr,
    info: Arc<ListenerInfo>,
    tls: Option<Arc<Tls>>,
    broker: Arc<Broker>,
    stats: Arc<ConnStats>,
) {
    let Some(tls) = tls else {
        let (rd, wr) = stream.into_split();
        let anonymous = Arc::from(crate::auth::acl::ANONYMOUS);
        Connection::start_on(
            Box::new(rd),
            Box::new(wr),
            peer,
            info,
            broker,
            stats,
            anonymous,
        );
        return;
    };
    let handshake = tokio::time::timeout(tls.handshake_timeout(), tls.acceptor().accept(stream));
    let s = match handshake.await {
        Ok(Ok(s)) => s,
        failed => {
            let (result, why) = match failed {
                Ok(Err(e)) => ("failed", e.to_string()),
                _ => (
                    "timeout",
                    "the handshake did not finish in time".to_string(),
                ),
            };
            broker
                .metrics
                .tls_handshakes
                .with_label_values(&[result])
                .inc();
            tracing::info!("TLS handshake with {peer} on {}: {why}", info.name());
            stats.close(peer.ip());
            return;
        }
    };
    broker
        .metrics
        .tls_handshakes
        .with_label_values(&["ok"])
        .inc();
    // Mutual TLS: the client certificate names the principal (SASL_SSL replaces it with the
    // SASL user once authenticated, as Kafka does).
    let rule = broker.settings.authorization.ssl_principal.as_str();
    let principal: Arc<str> = s
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|chain| chain.first())
        .and_then(|cert| crate::auth::principal::from_certificate(cert, rule))
        .map(Arc::from)
        .unwrap_or_else(|| Arc::from(crate::auth::acl::ANONYMOUS));
    tracing::debug!("TLS client {peer} is {principal}");
    let (rd, wr) = tokio::io::split(s);
    Connection::start_on(
        Box::new(rd),
        Box::new(wr),
        peer,
        info,
        broker,
        stats,
        principal,
    );
}
