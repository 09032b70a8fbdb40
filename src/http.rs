//! The HTTP side (actix-web): `/health` (the process lives), `/ready` (recovery finished, not
//! shutting down, and the object store answers a real write/read probe), `/metrics`
//! (Prometheus text from actix-web-prom's registry, shared with the broker's own metrics), the
//! status page at `/` and its data as JSON under `/api/v1/` (see `status.rs`). With
//! `metrics.bearer_token` (or `metrics.basic_username`/`basic_password`) set, everything but the
//! probes (`/health`, `/ready`) needs those credentials (401 otherwise).

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

/// Whether a request may see the protected pages: no credentials configured, or an
/// `Authorization` header carrying them (compared in constant time).
pub fn authorized(m: &crate::config::MetricsSettings, header: Option<&str>) -> bool {
    use base64::Engine;
    use subtle::ConstantTimeEq;
    let basic = m.basic_username.as_ref().zip(m.basic_password.as_ref());
    if m.bearer_token.is_none() && basic.is_none() {
        return true;
    }
    let Some(h) = header else {
        return false;
    };
    let same = |a: &[u8], b: &[u8]| -> bool {
        crate::auth::scram::sha256(a)
            .ct_eq(&crate::auth::scram::sha256(b))
            .into()
    };
    if let (Some(t), Some(given)) = (&m.bearer_token, h.strip_prefix("Bearer ")) {
        if same(t.as_bytes(), given.trim().as_bytes()) {
            return true;
        }
    }
    if let (Some((u, p)), Some(given)) = (basic, h.strip_prefix("Basic ")) {
        if let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(given.trim()) {
            let want = format!("{u}:{p}");
            return same(want.as_bytes(), &decoded);
        }
    }
    false
}

/// Start the HTTP server on a bound listener (over TLS with `tls`); returns its handle.
pub fn start(
    broker: Arc<Broker>,
    listener: std::net::TcpListener,
    registry: prometheus::Registry,
    tls: Option<rustls::ServerConfig>,
) -> std::io::Result<actix_web::dev::Server> {
    let prefix = broker.settings.metrics.prefix.clone();
    let enabled = broker.settings.metrics.enabled;
    let prom = actix_web_prom::PrometheusMetricsBuilder::new(&prefix)
        .endpoint("/metrics")
        .registry(registry)
        .build()
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    let guard = broker.settings.metrics.clone();
    let server = HttpServer::new(move || {
        let guard = guard.clone();
        App::new()
            .wrap(actix_web::middleware::Condition::new(enabled, prom.clone()))
            // Outermost: checked before the Prometheus middleware answers /metrics.
            .wrap_fn(move |req, srv| {
                use actix_web::dev::Service;
                let open = matches!(req.path(), "/health" | "/ready");
                let header = req
                    .headers()
                    .get(actix_web::http::header::AUTHORIZATION)
                    .and_then(|v| v.to_str().ok());
                use futures::future::{ready, Either, FutureExt};
                if open || authorized(&guard, header) {
                    Either::Left(srv.call(req).map(|r| r.map(|r| r.map_into_left_body())))
                } else {
                    let mut r = HttpResponse::Unauthorized();
                    r.insert_header(("WWW-Authenticate", "Bearer, Basic realm=\"heraclitus\""));
                    let resp = req.into_response(r.body("unauthorized\n").map_into_right_body());
                    Either::Right(ready(Ok(resp)))
                }
            })
            .app_data(web::Data::new(broker.clone()))
            .route("/health", web::get().to(health))
            .route("/ready", web::get().to(ready))
            .route("/", web::get().to(status_page))
            .route("/api/v1/{part}", web::get().to(api))
    })
    .workers(1)
    .disable_signals()
    .shutdown_timeout(2);
    let server = match tls {
        Some(config) => server.listen_rustls_0_23(listener, config)?,
        None => server.listen(listener)?,
    };
    Ok(server.run())
}
