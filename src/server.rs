//! Assembling a running broker: storage, the Broker (writer + recovery), worker arbiters, the
//! Kafka accept loop and the HTTP server — used by `main` and by in-process integration tests.
//! Shutdown is coordinated here: stop accepting, turn `/ready` to 503, flush what is pending,
//! then stop the HTTP server.

use crate::broker::Broker;
use crate::config::Settings;
use crate::error::{Error, Result};
use crate::network::listener::{accept_loop, ConnStats};
use crate::network::listeners::Protocol;
use crate::network::tls::Tls;
use crate::network::ListenerInfo;
use crate::storage::Storage;
use actix::prelude::*;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// A broker that is serving.
pub struct Running {
    pub broker: Arc<Broker>,
    /// The first listener's bound address.
    pub kafka_addr: SocketAddr,
    /// Every listener's bound address.
    pub listener_addrs: Vec<(Protocol, SocketAddr)>,
    pub http_addr: SocketAddr,
    pub conn_stats: Arc<ConnStats>,
    stop_tx: tokio::sync::watch::Sender<bool>,
    http: actix_web::dev::ServerHandle,
    arbiters: Vec<Arbiter>,
}

/// Start a broker inside the current actix System.
pub async fn start(settings: Settings) -> Result<Running> {
    let storage = Storage::open(&settings.storage.path)?;
    start_with_storage(settings, storage).await
}

/// Start a broker on an already opened storage (tests inject failure points through it).
pub async fn start_with_storage(settings: Settings, storage: Storage) -> Result<Running> {
    let n = if settings.performance.buffer_pool_size == 0 {
        std::thread::available_parallelism().map_or(2, |n| n.get())
    } else {
        settings.performance.buffer_pool_size
    };
    let arbiters: Vec<Arbiter> = (0..n).map(|_| Arbiter::new()).collect();
    let handles: Vec<ArbiterHandle> = arbiters.iter().map(|a| a.handle()).collect();
    // Bind every listener first: ports are known before the broker starts (cluster mode
    // registers them in the metadata store).
    let specs = crate::network::listeners::resolve(&settings).map_err(Error::InvalidConfig)?;
    let mut bound = Vec::new();
    for spec in &specs {
        let l = tokio::net::TcpListener::bind((spec.bind_host.as_str(), spec.bind_port))
            .await
            .map_err(|e| {
                Error::Internal(format!(
                    "cannot bind the {} listener on {}:{}: {e}",
                    spec.name(),
                    spec.bind_host,
                    spec.bind_port
                ))
            })?;
        let addr = l.local_addr().map_err(|e| Error::Internal(e.to_string()))?;
        let info = ListenerInfo {
            protocol: spec.protocol,
            advertised_host: spec.advertised_host.clone(),
            advertised_port: spec.advertised_port.unwrap_or(addr.port()),
        };
        bound.push((l, addr, Arc::new(info)));
    }
    let tls = if settings.http_tls || specs.iter().any(|l| l.protocol.tls()) {
        Some(Arc::new(
            Tls::load(&settings.tls).map_err(Error::InvalidConfig)?,
        ))
    } else {
        None
    };
    let kafka_addr = bound[0].1;
    let http_listener =
        std::net::TcpListener::bind((settings.bind_host.as_str(), settings.http_port)).map_err(
            |e| Error::Internal(format!("cannot bind HTTP port {}: {e}", settings.http_port)),
        )?;
    let http_addr = http_listener
        .local_addr()
        .map_err(|e| Error::Internal(e.to_string()))?;

    let mut settings = settings;
    if settings.advertised_port.is_none() && settings.listeners.is_none() {
        settings.advertised_port = Some(kafka_addr.port());
    }
    let infos: Vec<ListenerInfo> = bound.iter().map(|(_, _, i)| (**i).clone()).collect();
    let metrics = crate::metrics::Metrics::new(&settings.metrics.prefix);
    let storage = storage.with_metrics(metrics.clone());
    let prefix = settings.metrics.prefix.clone();
    let broker = Broker::start(settings, storage, handles.clone(), metrics.clone(), infos).await?;
    let registry = metrics.registry.clone();
    registry
        .register(Box::new(crate::metrics::BrokerCollector::new(
            &broker, &prefix,
        )))
        .map_err(|e| Error::Internal(format!("metrics: {e}")))?;
    let http_tls = match (&tls, broker.settings.http_tls) {
        (Some(t), true) => Some(t.http_config().map_err(Error::InvalidConfig)?),
        _ => None,
    };
    let http = crate::http::start(broker.clone(), http_listener, registry, http_tls)
        .map_err(|e| Error::Internal(format!("HTTP server: {e}")))?;
    let http_handle = http.handle();
    actix::spawn(async move {
        let _ = http.await;
    });
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let conn_stats = Arc::new(ConnStats::default());
    let mut listener_addrs = Vec::new();
    for (l, addr, info) in bound {
        listener_addrs.push((info.protocol, addr));
        tracing::info!(
            "{} listener on {addr}, advertised {}:{}",
            info.name(),
            info.advertised_host,
            info.advertised_port
        );
        let tls = if info.protocol.tls() {
            tls.clone()
        } else {
            None
        };
        actix::spawn(accept_loop(
            l,
            info,
            tls,
            broker.clone(),
            handles.clone(),
            conn_stats.clone(),
            stop_rx.clone(),
        ));
    }
    if let Some(tls) = tls {
        actix::spawn(reload_certificates(tls, stop_rx.clone()));
    }
    tracing::info!(
        "heraclitus serving Kafka ({}), HTTP on {http_addr} (status page /, /metrics, /health), \
         storing in {}",
        broker.advertised_listeners(),
        broker.storage.describe()
    );
    Ok(Running {
        broker,
        kafka_addr,
        listener_addrs,
        http_addr,
        conn_stats,
        stop_tx,
        http: http_handle,
        arbiters,
    })
}

/// How often certificate files are checked for changes.
const CERT_POLL: Duration = Duration::from_secs(10);

/// Reload the TLS certificates on SIGHUP and when their files change; connections are kept.
async fn reload_certificates(tls: Arc<Tls>, mut stop: tokio::sync::watch::Receiver<bool>) {
    let mut hup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!("no SIGHUP handler ({e}): certificates reload on file change only");
            None
        }
    };
    loop {
        let forced = tokio::select! {
            _ = tokio::time::sleep(CERT_POLL) => false,
            Some(()) = async { match hup.as_mut() { Some(h) => h.recv().await, None => None } } => true,
            _ = stop.changed() => break,
        };
        match tls.reload(forced) {
            Ok(true) => tracing::info!("TLS certificates reloaded"),
            Ok(false) => {}
            Err(e) => tracing::error!("TLS certificates not reloaded (keeping the previous): {e}"),
        }
    }
}

impl Running {
    /// Graceful shutdown: stop accepting, report not ready, flush and acknowledge pending
    /// appends (bounded by `timeout`), stop the HTTP server and the worker arbiters.
    pub async fn shutdown(self, timeout: Duration) {
        self.broker.shutting_down.store(true, Ordering::SeqCst);
        let _ = self.stop_tx.send(true);
        if tokio::time::timeout(timeout, self.broker.flush_all())
            .await
            .is_err()
        {
            tracing::warn!("shutdown: pending appends not flushed within {timeout:?}");
        }
        // Cluster mode: hand leadership over now rather than after the session timeout.
        self.broker.leave_cluster().await;
        // Give in-flight responses a moment to be written.
        tokio::time::sleep(Duration::from_millis(100)).await;
        self.http.stop(true).await;
        for a in &self.arbiters {
            a.stop();
        }
        tracing::info!("heraclitus stopped");
    }
}
