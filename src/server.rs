//! Assembling a running broker: storage, the Broker (writer + recovery), worker arbiters, the
//! Kafka accept loop and the HTTP server — used by `main` and by in-process integration tests.
//! Shutdown is coordinated here: stop accepting, turn `/ready` to 503, flush what is pending,
//! then stop the HTTP server.

use crate::broker::Broker;
use crate::config::Settings;
use crate::error::{Error, Result};
use crate::network::listener::{accept_loop, ConnStats};
use crate::storage::Storage;
use actix::prelude::*;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// A broker that is serving.
pub struct Running {
    pub broker: Arc<Broker>,
    pub kafka_addr: SocketAddr,
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
    let kafka = tokio::net::TcpListener::bind((settings.bind_host.as_str(), settings.kafka_port))
        .await
        .map_err(|e| {
            Error::Internal(format!(
                "cannot bind Kafka port {}: {e}",
                settings.kafka_port
            ))
        })?;
    let kafka_addr = kafka
        .local_addr()
        .map_err(|e| Error::Internal(e.to_string()))?;
    let http_listener =
        std::net::TcpListener::bind((settings.bind_host.as_str(), settings.http_port)).map_err(
            |e| Error::Internal(format!("cannot bind HTTP port {}: {e}", settings.http_port)),
        )?;
    let http_addr = http_listener
        .local_addr()
        .map_err(|e| Error::Internal(e.to_string()))?;

    let mut settings = settings;
    if settings.advertised_port.is_none() {
        // Known before the broker starts: cluster mode registers it in the metadata store.
        settings.advertised_port = Some(kafka_addr.port());
    }
    let metrics = crate::metrics::Metrics::new(&settings.metrics.prefix);
    let storage = storage.with_metrics(metrics.clone());
    let prefix = settings.metrics.prefix.clone();
    let broker = Broker::start(settings, storage, handles.clone(), metrics.clone()).await?;
    broker.set_bound_port(kafka_addr.port());
    let registry = metrics.registry.clone();
    registry
        .register(Box::new(crate::metrics::BrokerCollector::new(
            &broker, &prefix,
        )))
        .map_err(|e| Error::Internal(format!("metrics: {e}")))?;
    let http = crate::http::start(broker.clone(), http_listener, registry)
        .map_err(|e| Error::Internal(format!("HTTP server: {e}")))?;
    let http_handle = http.handle();
    actix::spawn(async move {
        let _ = http.await;
    });
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let conn_stats = Arc::new(ConnStats::default());
    actix::spawn(accept_loop(
        kafka,
        broker.clone(),
        handles,
        conn_stats.clone(),
        stop_rx,
    ));
    tracing::info!(
        "heraclitus serving Kafka on {kafka_addr} (advertised {}:{}), HTTP on {http_addr} \
         (status page /, /metrics, /health), storing in {}",
        broker.advertised_host(),
        broker.advertised_port(),
        broker.storage.describe()
    );
    Ok(Running {
        broker,
        kafka_addr,
        http_addr,
        conn_stats,
        stop_tx,
        http: http_handle,
        arbiters,
    })
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
