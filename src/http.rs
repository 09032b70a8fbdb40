//! The HTTP side (actix-web): `/health` (the process lives), `/ready` (recovery finished, not
//! shutting down, and the object store answers a real write/read probe), `/metrics`
//! (Prometheus text from actix-web-prom's registry, shared with the broker's own metrics), the
//! status page at `/` and its data as JSON under `/api/v1/` (see `status.rs`).

use crate::broker::Broker;
use crate::status::{render_html, Status};
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

async fn status_page(broker: web::Data<Arc<Broker>>) -> HttpResponse {
    let s = Status::collect(&broker);
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header(("Cache-Control", "no-store"))
        .body(render_html(&s))
}

/// `/api/v1/status` (everything) and `/api/v1/{brokers,topics,groups,storage}`.
async fn api(broker: web::Data<Arc<Broker>>, part: web::Path<String>) -> HttpResponse {
    let s = Status::collect(&broker);
    let body = match part.as_str() {
        "status" => serde_json::to_value(&s),
        "brokers" => serde_json::to_value([&s.broker]),
        "topics" => serde_json::to_value(&s.topics),
        "groups" => serde_json::to_value(&s.groups),
        "storage" => serde_json::to_value(&s.storage),
        other => {
            return HttpResponse::NotFound()
                .json(serde_json::json!({ "error": format!("no such resource: {other}") }))
        }
    };
    match body {
        Ok(v) => HttpResponse::Ok().json(v),
        Err(e) => HttpResponse::InternalServerError().body(e.to_string()),
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
            .route("/", web::get().to(status_page))
            .route("/api/v1/{part}", web::get().to(api))
    })
    .workers(1)
    .disable_signals()
    .shutdown_timeout(2)
    .listen(listener)?
    .run();
    Ok(server)
}
