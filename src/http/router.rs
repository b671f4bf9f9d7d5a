//! The router: every route, its limits and layers (body, batch and time
//! limits, request ids, traces, the panic guard), and what every request
//! shares (`App`).

use std::sync::Arc;

use async_graphql::Request;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::compression::CompressionLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};

use super::graphql::{graphql_get, graphql_post, graphql_ws};
use super::ops::{metrics_on_api_address, metrics_response, readyz};
use super::pages::{explorer, schema_sdl};
use crate::auth::{AuthError, Authenticator, Viewer};
use crate::config::Config;
use crate::graphql::budget::RowBudget;
use crate::graphql::documents::Documents;
use crate::graphql::error::code;
use crate::graphql::fast_tree::{FastPath, RawAnswers};
use crate::graphql::persisted::PersistedOperations;
use crate::graphql::{build_schema, AppSchema, Loaders};
use crate::store::ExecutionStore;

pub struct App {
    pub schema: AppSchema,
    pub store: ExecutionStore,
    pub auth: Authenticator,
    pub max_batch: usize,
    pub graphiql: bool,
    pub max_nodes: i64,
    pub fast_path: FastPath,
    /// Queries run at most this many at a time (None: no bound), so that
    /// big tree answers cannot take every core and connection from the
    /// fleet's claims, heartbeats and finishes, which never wait here.
    pub read_gate: Option<Arc<tokio::sync::Semaphore>>,
    /// Documents parsed once per request, the last ones kept.
    pub documents: Documents,
    /// Persisted queries and the allow list (shared with the schema).
    pub persisted: Arc<PersistedOperations>,
}

impl App {
    pub fn new(store: ExecutionStore, config: &Config) -> Result<Self, String> {
        let persisted = Arc::new(config.persisted_operations()?);
        Ok(Self {
            schema: build_schema(store.clone(), &config.schema_limits(), persisted.clone()),
            store,
            auth: config.authenticator()?,
            max_batch: config.max_batch,
            graphiql: config.graphiql,
            max_nodes: config.max_nodes,
            fast_path: FastPath(config.tree_fast_path),
            read_gate: match config.concurrent_reads() {
                0 => None,
                n => Some(Arc::new(tokio::sync::Semaphore::new(n))),
            },
            documents: Documents::default(),
            persisted,
        })
    }

    /// Per-request data: who asks, DataLoaders scoped to them, and the
    /// request's row budget.
    /// `store` is the one this request reads through (the primary, or a
    /// standby chosen for it); resolvers and loaders find it in the data.
    /// `raw` collects the fast path's answers, spliced into the body by
    /// `Executed::into_response`.
    pub(super) fn request_data(
        &self,
        request: Request,
        viewer: &Viewer,
        store: &ExecutionStore,
        raw: &RawAnswers,
    ) -> Request {
        let budget = RowBudget::new(self.max_nodes);
        let loaders = Loaders::new(store, &viewer.scope(), Some(budget.clone()));
        request
            .data(store.clone())
            .data(viewer.clone())
            .data(loaders)
            .data(budget)
            .data(self.fast_path)
            .data(raw.clone())
    }
}

/// The header that carries a consistency token (read-your-writes).
pub const CONSISTENCY_HEADER: &str = "x-execstore-consistency";

/// The whole HTTP surface; fails only when the configured key files or the
/// allow list cannot be read or used.
pub fn router(store: ExecutionStore, config: &Config) -> Result<Router, String> {
    let app = Arc::new(App::new(store, config)?);
    // GET and POST alike: queries by GET are answers (GraphiQL's page only
    // for a browser asking for HTML), under the same time and body limits.
    // (Compressed on GET only: the page, and answers a CDN may cache; POST
    // answers go uncompressed as before, their CPU kept for the fleet.)
    let graphql = axum::routing::post(graphql_post)
        .merge(get(graphql_get).layer(CompressionLayer::new()))
        .layer::<_, std::convert::Infallible>(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            config.request_timeout(),
        ))
        .layer::<_, std::convert::Infallible>(RequestBodyLimitLayer::new(config.max_body_bytes));
    crate::metrics::install();
    let graphql = graphql.layer(axum::middleware::from_fn(count_responses));
    let mut router = Router::new();
    if config.metrics_bind.is_none() {
        router = router.route("/metrics", get(metrics_on_api_address));
    }
    Ok(router
        .route("/graphql", graphql)
        .route("/graphql/ws", get(graphql_ws))
        .route(
            "/assets/{*path}",
            get(crate::assets::serve).layer(CompressionLayer::new()),
        )
        .route(
            "/",
            get(|| async { axum::response::Redirect::temporary("/explorer") }),
        )
        .route("/explorer", get(explorer).layer(CompressionLayer::new()))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/schema.graphql", get(schema_sdl))
        .layer(CatchPanicLayer::custom(panic_response))
        // One INFO line per request (method, path, status, latency), in a
        // span that carries the request id.
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(request_span)
                .on_response(DefaultOnResponse::new().level(tracing::Level::INFO)),
        )
        // Every request gets an `x-request-id` (the client's, or a new
        // UUID), logged with it and sent back in the response.
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .with_state(app))
}

/// `GET /metrics` alone, for `EXECSTORE_METRICS_BIND`.
pub fn metrics_router(store: ExecutionStore) -> Router {
    crate::metrics::install();
    Router::new().route(
        "/metrics",
        get(move || {
            let store = store.clone();
            async move { metrics_response(&store).await }
        }),
    )
}

async fn count_responses(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let response = next.run(request).await;
    crate::metrics::http_response(response.status().as_u16());
    response
}

fn request_span(request: &axum::http::Request<axum::body::Body>) -> tracing::Span {
    let id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    tracing::info_span!(
        "request",
        method = %request.method(),
        uri = %request.uri(),
        request_id = %id,
    )
}

/// Last line of defence: a panic is a bug, but it still answers as an
/// INTERNAL error with an id (the panic text goes to the log only).
fn panic_response(panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let text = panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default();
    let error = crate::graphql::error::internal(&format!("panic: {text}"));
    let body = serde_json::json!({ "errors": [{ "message": error.message, "extensions": { "code": code::INTERNAL } }] });
    (StatusCode::INTERNAL_SERVER_ERROR, Json(body)).into_response()
}

pub(super) fn error_body(code: &str, message: &str) -> serde_json::Value {
    serde_json::json!({ "errors": [{ "message": message, "extensions": { "code": code } }] })
}

pub(super) fn authorization(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
}

pub(super) fn unauthenticated(err: AuthError) -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Bearer")],
        Json(error_body(code::UNAUTHENTICATED, &err.to_string())),
    )
        .into_response()
}
