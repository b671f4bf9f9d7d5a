//! What operators read: readiness and the Prometheus metrics.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::router::{authorization, error_body, unauthenticated, App};
use crate::graphql::error::code;
use crate::store::ExecutionStore;

pub(super) async fn readyz(State(app): State<Arc<App>>) -> Response {
    if app.store.ping().await {
        (StatusCode::OK, "ready").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "database unavailable").into_response()
    }
}

/// `GET /metrics` on the API's own address. Its labels name every owner's
/// flows, so when tokens are configured only an admin token may read it
/// (401 without a valid token, 403 for another role); on
/// `EXECSTORE_METRICS_BIND` — a private address — it is served freely.
pub(super) async fn metrics_on_api_address(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
) -> Response {
    let viewer = match app.auth.viewer(authorization(&headers)) {
        Ok(viewer) => viewer,
        Err(err) => return unauthenticated(err),
    };
    if viewer.role != crate::auth::Role::Admin {
        return (
            StatusCode::FORBIDDEN,
            Json(error_body(
                code::FORBIDDEN,
                "/metrics needs an admin token (or serve it apart with EXECSTORE_METRICS_BIND)",
            )),
        )
            .into_response();
    }
    metrics_response(&app.store).await
}

pub(super) async fn metrics_response(store: &ExecutionStore) -> Response {
    use crate::metrics::{QUEUE_BOUND, QUEUE_FLOWS};
    let pool = store.pool_stats();
    let queue = store
        .reads()
        .queue_depth(QUEUE_BOUND, QUEUE_FLOWS)
        .await
        .ok();
    let event_log = store.events().log_stats().await.ok();
    let now_ms = chrono::Utc::now().timestamp_millis();
    let readings = crate::metrics::Readings {
        pool_size: pool.size,
        pool_idle: pool.idle,
        pool_max: pool.max,
        queue: queue.map(|q| (q.total, q.by_flow)),
        event_log: event_log.map(|log| {
            let age = log
                .oldest_logged_at_ms
                .map(|at| (now_ms - at).max(0) as f64 / 1000.0);
            (log.events, age)
        }),
        subscribers: store.events().subscriber_backlog(),
        oldest_finished_run: store
            .runs()
            .oldest_finished_run()
            .await
            .ok()
            .flatten()
            .map(|at| (chrono::Utc::now() - at).num_milliseconds().max(0) as f64 / 1000.0),
    };
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        crate::metrics::render(readings),
    )
        .into_response()
}
