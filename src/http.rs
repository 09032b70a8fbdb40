//! The HTTP side (actix-web): `/health` (the process lives), `/ready` (recovery finished, not
//! shutting down, and the object store answers a real write/read probe) and `/metrics`
//! (Prometheus text from actix-web-prom's registry, shared with the broker's own metrics).

use crate::broker::Broker;
use actix_web::{web, App, HttpResponse, HttpServer};
use std::sync::atomic::Ordering;
use std::sync::Arc;

async fn health() -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain").body("ok\n")
}

async fn ready(broker: web::Data<Arc<Broker>>) -> HttpResponse {
    if !broker.ready.load(Ordering::SeqCst) || broker.shutting_down.load(Ordering::SeqCst) {
        return HttpResponse::ServiceUnavailable().body("not ready\n");
    }
    match broker.storage.probe().await {
        Ok(()) => HttpResponse::Ok()
            .content_type("text/plain")
            .body("ready\n"),
        Err(e) => {
            HttpResponse::ServiceUnavailable().body(format!("object store probe failed: {e}\n"))
        }
    }
}

/// Bind and start the HTTP server; returns the server handle and the bound address.
pub fn start(
    broker: Arc<Broker>,
    listener: std::net::TcpListener,
    registry: prometheus::Registry,
) -> std::io::Result<actix_web::dev::Server> {
    let prefix = broker.settings.metrics.prefix.clone();
    let enabled = broker.settings.metrics.enabled;
    let prom = actix_web_prom::PrometheusMetricsBuilder::new(&prefix)
        .endpoint("/metrics")
        .registry(registry)
        .build()
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    let server = HttpServer::new(move || {
        App::new()
            .wrap(actix_web::middleware::Condition::new(enabled, prom.clone()))
            .app_data(web::Data::new(broker.clone()))
            .route("/health", web::get().to(health))
            .route("/ready", web::get().to(ready))
    })
    .workers(1)
    .disable_signals()
    .shutdown_timeout(2)
    .listen(listener)?
    .run();
    Ok(server)
}
