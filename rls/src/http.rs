//! The HTTP side: `/healthz` (the process serves), `/readyz` (Redis answers `PING` and no
//! shutdown has begun), `/metrics` (Prometheus text format) and, with an admin key, `/budgets`
//! ([`crate::budgets`]).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

use crate::metrics::Metrics;
use crate::store::Store;

pub struct Health {
    pub store: Arc<Store>,
    pub metrics: Arc<Metrics>,
    /// Set on SIGTERM: a load balancer stops sending new calls while those in flight finish.
    pub draining: AtomicBool,
    /// The SHA-256 of the key `/budgets` requires; `None`: `/budgets` is off.
    pub admin_key_sha256: Option<String>,
}

pub fn router(health: Arc<Health>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .route("/metrics", get(metrics))
        .route("/budgets", get(budgets))
        .with_state(health)
}

async fn ready(State(health): State<Arc<Health>>) -> (StatusCode, String) {
    if health.draining.load(Ordering::Relaxed) {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n".into());
    }
    match health.store.ping().await {
        Ok(()) => (StatusCode::OK, "ready\n".into()),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, format!("redis: {e}\n")),
    }
}

async fn metrics(State(health): State<Arc<Health>>) -> impl IntoResponse {
    match health.metrics.render() {
        Ok(text) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            text,
        ),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            [(header::CONTENT_TYPE, "text/plain")],
            e,
        ),
    }
}

async fn budgets(State(health): State<Arc<Health>>, headers: HeaderMap) -> impl IntoResponse {
    let json = || [(header::CONTENT_TYPE, "application/json")];
    let error = |status: StatusCode, message: &str| {
        let body = serde_json::json!({"error": {"message": message}}).to_string();
        (status, json(), body)
    };
    let Some(expected) = &health.admin_key_sha256 else {
        return error(
            StatusCode::NOT_FOUND,
            "GET /budgets is off: start llmgw-rls with --admin-key-sha256",
        );
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if !crate::budgets::authorized(given, expected) {
        return error(StatusCode::UNAUTHORIZED, "a valid admin key is required");
    }
    match crate::budgets::list(&health.store).await {
        Ok(list) => (StatusCode::OK, json(), list.to_string()),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, &format!("redis: {e}")),
    }
}
