//! The HTTP surface: /graphql (POST, GraphiQL on GET, /graphql/ws), health,
//! readiness, the SDL; with body, batch and time limits.

use std::sync::Arc;

use async_graphql::http::ALL_WEBSOCKET_PROTOCOLS;
use async_graphql::{BatchRequest, Data, Request};
use async_graphql_axum::{
    rejection::GraphQLRejection, GraphQLBatchRequest, GraphQLProtocol, GraphQLResponse,
    GraphQLWebSocket,
};
use axum::extract::{State, WebSocketUpgrade};
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

use crate::auth::{AuthError, Authenticator, Viewer};
use crate::config::Config;
use crate::graphql::budget::RowBudget;
use crate::graphql::error::code;
use crate::graphql::fast_tree::{FastPath, RawAnswers};
use crate::graphql::{build_schema, AppSchema, Loaders};
use crate::store::{ExecutionStore, ReadRoute};

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
}

impl App {
    pub fn new(store: ExecutionStore, config: &Config) -> Result<Self, String> {
        Ok(Self {
            schema: build_schema(store.clone(), &config.schema_limits()),
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
        })
    }

    /// Per-request data: who asks, DataLoaders scoped to them, and the
    /// request's row budget.
    /// `store` is the one this request reads through (the primary, or a
    /// standby chosen for it); resolvers and loaders find it in the data.
    /// `raw` collects the fast path's answers, spliced into the body by
    /// `Executed::into_response`.
    fn request_data(
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

/// True when every operation of the batch is a query (so it may read from a
/// standby). Anything that does not parse goes to the primary, where it
/// fails as usual.
fn only_queries(batch: &BatchRequest) -> bool {
    use async_graphql::parser::types::{DocumentOperations, OperationType};
    let is_query = |request: &Request| {
        let Ok(document) = async_graphql::parser::parse_query(&request.query) else {
            return false;
        };
        let ty = match (&document.operations, &request.operation_name) {
            (DocumentOperations::Single(op), _) => Some(op.node.ty),
            (DocumentOperations::Multiple(ops), Some(name)) => {
                ops.get(name.as_str()).map(|op| op.node.ty)
            }
            (DocumentOperations::Multiple(_), None) => None,
        };
        ty == Some(OperationType::Query)
    };
    match batch {
        BatchRequest::Single(request) => is_query(request),
        BatchRequest::Batch(requests) => requests.iter().all(is_query),
    }
}

/// A copy of the request as the client sent it (to run it again elsewhere).
fn resend(request: &Request) -> Request {
    let mut copy = Request::new(request.query.clone()).variables(request.variables.clone());
    copy.operation_name.clone_from(&request.operation_name);
    copy
}

fn failed_on_the_database(response: &async_graphql::BatchResponse) -> bool {
    let errors: Vec<&async_graphql::ServerError> = match response {
        async_graphql::BatchResponse::Single(r) => r.errors.iter().collect(),
        async_graphql::BatchResponse::Batch(rs) => rs.iter().flat_map(|r| &r.errors).collect(),
    };
    errors.iter().any(|e| {
        e.extensions
            .as_ref()
            .and_then(|x| x.get("code"))
            .is_some_and(|c| {
                *c == async_graphql::Value::from(code::UNAVAILABLE)
                    || *c == async_graphql::Value::from(code::INTERNAL)
            })
    })
}

/// The whole HTTP surface; fails only when the configured key files cannot
/// be read or used.
pub fn router(store: ExecutionStore, config: &Config) -> Result<Router, String> {
    let app = Arc::new(App::new(store, config)?);
    let graphql = axum::routing::post(graphql_post)
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
        .route(
            "/graphql",
            get(graphiql).layer(CompressionLayer::new()).merge(graphql),
        )
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

/// `GET /metrics` on the API's own address. Its labels name every owner's
/// flows, so when tokens are configured only an admin token may read it
/// (401 without a valid token, 403 for another role); on
/// `EXECSTORE_METRICS_BIND` — a private address — it is served freely.
async fn metrics_on_api_address(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
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

async fn metrics_response(store: &ExecutionStore) -> Response {
    use crate::metrics::{QUEUE_BOUND, QUEUE_FLOWS};
    let pool = store.pool_stats();
    let queue = store.queue_depth(QUEUE_BOUND, QUEUE_FLOWS).await.ok();
    let event_log = store.event_log_stats().await.ok();
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

fn error_body(code: &str, message: &str) -> serde_json::Value {
    serde_json::json!({ "errors": [{ "message": message, "extensions": { "code": code } }] })
}

fn authorization(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
}

fn unauthenticated(err: AuthError) -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Bearer")],
        Json(error_body(code::UNAUTHENTICATED, &err.to_string())),
    )
        .into_response()
}

async fn graphql_post(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    request: Result<GraphQLBatchRequest, GraphQLRejection>,
) -> Response {
    let viewer = match app.auth.viewer(authorization(&headers)) {
        Ok(viewer) => viewer,
        Err(err) => return unauthenticated(err),
    };
    let batch = match request {
        Ok(request) => request.into_inner(),
        Err(rejection) if body_too_large(&rejection.0) => {
            let message = "request body exceeds the configured limit (EXECSTORE_MAX_BODY_BYTES)";
            return (
                StatusCode::PAYLOAD_TOO_LARGE,
                Json(error_body(code::BAD_USER_INPUT, message)),
            )
                .into_response();
        }
        Err(rejection) => {
            let message = format!("malformed GraphQL request: {}", rejection.0);
            return (
                StatusCode::BAD_REQUEST,
                Json(error_body(code::BAD_USER_INPUT, &message)),
            )
                .into_response();
        }
    };
    if let BatchRequest::Batch(requests) = &batch {
        if requests.len() > app.max_batch {
            let message = format!(
                "a batch may hold at most {} operations, this one has {}",
                app.max_batch,
                requests.len()
            );
            return (
                StatusCode::BAD_REQUEST,
                Json(error_body(code::BAD_USER_INPUT, &message)),
            )
                .into_response();
        }
    }
    let read_only = only_queries(&batch);
    // Queries take a turn at the read gate (held until the answer is
    // serialised); mutations — the fleet's claims, heartbeats, finishes —
    // never wait here.
    let _turn = match (&app.read_gate, read_only) {
        (Some(gate), true) => gate.clone().acquire_owned().await.ok(),
        _ => None,
    };
    let Some(standbys) = app.store.standbys() else {
        return execute(&app, batch, &viewer, &app.store)
            .await
            .into_response()
            .await;
    };
    let token = match headers.get(CONSISTENCY_HEADER) {
        None => None,
        Some(value) => match value.to_str().ok().and_then(crate::store::decode_token) {
            Some(token) => Some(token),
            None => {
                let message = format!("malformed {CONSISTENCY_HEADER} header: send back the token a mutation returned");
                return (
                    StatusCode::BAD_REQUEST,
                    Json(error_body(code::BAD_USER_INPUT, &message)),
                )
                    .into_response();
            }
        },
    };
    if !read_only {
        // Mutations (and the rest) run on the primary; the answer carries
        // the token a later query sends back to read its own writes.
        let mut executed = execute(&app, batch, &viewer, &app.store).await;
        let token = standbys.token().await.map(crate::store::encode_token);
        if let Some(token) = &token {
            let value = async_graphql::Value::String(token.clone());
            match &mut executed.response {
                async_graphql::BatchResponse::Single(r) => {
                    r.extensions.insert("consistency".into(), value);
                }
                async_graphql::BatchResponse::Batch(rs) => {
                    for r in rs {
                        r.extensions.insert("consistency".into(), value.clone());
                    }
                }
            }
        }
        let mut response = executed.into_response().await;
        if let Some(value) = token.and_then(|t| axum::http::HeaderValue::from_str(&t).ok()) {
            response.headers_mut().insert(CONSISTENCY_HEADER, value);
        }
        return response;
    }
    let (route, standby) = standbys.route(token).await;
    let Some(standby) = standby else {
        crate::metrics::read_routed(route.label());
        return execute(&app, batch, &viewer, &app.store)
            .await
            .into_response()
            .await;
    };
    let again = match &batch {
        BatchRequest::Single(r) => BatchRequest::Single(resend(r)),
        BatchRequest::Batch(rs) => BatchRequest::Batch(rs.iter().map(resend).collect()),
    };
    let executed = execute(&app, batch, &viewer, &app.store.reading_from(standby)).await;
    if failed_on_the_database(&executed.response) {
        // The standby failed under us (down, restarting, a conflict with
        // recovery): the same query again on the primary, no failed request.
        standbys.mark_failed(&route);
        crate::metrics::read_routed(ReadRoute::Primary.label());
        return execute(&app, again, &viewer, &app.store)
            .await
            .into_response()
            .await;
    }
    crate::metrics::read_routed(route.label());
    executed.into_response().await
}

/// An executed batch and the fast path's answers for it.
struct Executed {
    response: async_graphql::BatchResponse,
    raw: RawAnswers,
}

impl Executed {
    /// The HTTP response (async-graphql-axum's: status, headers, cache
    /// control), its body with the fast path's answers spliced in.
    async fn into_response(self) -> Response {
        let response = GraphQLResponse(self.response).into_response();
        if self.raw.is_empty() {
            return response;
        }
        let (mut parts, body) = response.into_parts();
        let Ok(bytes) = axum::body::to_bytes(body, usize::MAX).await else {
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        };
        let pieces = self.raw.splice(&bytes);
        let length: usize = pieces.iter().map(axum::body::Bytes::len).sum();
        parts
            .headers
            .insert(axum::http::header::CONTENT_LENGTH, length.into());
        let pieces = pieces.into_iter().map(Ok::<_, std::convert::Infallible>);
        let body = axum::body::Body::from_stream(futures_util::stream::iter(pieces));
        Response::from_parts(parts, body)
    }
}

/// Runs the batch with `store` as the one its queries read through.
async fn execute(
    app: &App,
    batch: BatchRequest,
    viewer: &Viewer,
    store: &ExecutionStore,
) -> Executed {
    let raw = RawAnswers::default();
    let batch = match batch {
        BatchRequest::Single(request) => {
            BatchRequest::Single(app.request_data(request, viewer, store, &raw))
        }
        BatchRequest::Batch(requests) => BatchRequest::Batch(
            requests
                .into_iter()
                .map(|r| app.request_data(r, viewer, store, &raw))
                .collect(),
        ),
    };
    // Codes for async-graphql's own errors are set by graphql::request_hooks.
    let response = app.schema.execute_batch(batch).await;
    Executed { response, raw }
}

/// A body cut off by `RequestBodyLimitLayer` (no Content-Length to reject
/// up front) reaches the extractor as an I/O error.
fn body_too_large(err: &async_graphql::ParseRequestError) -> bool {
    use async_graphql::ParseRequestError as E;
    match err {
        E::PayloadTooLarge => true,
        E::Io(io) => {
            let mut source: Option<&(dyn std::error::Error + 'static)> = Some(io);
            while let Some(e) = source {
                if e.is::<http_body_util::LengthLimitError>()
                    || e.to_string().contains("length limit exceeded")
                {
                    return true;
                }
                source = e.source();
            }
            false
        }
        _ => false,
    }
}

/// GraphiQL, from assets embedded in the binary (`assets/graphiql/`).
async fn graphiql(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    page(&app, "graphiql/index.html", &headers)
}

/// The execution explorer (`assets/explorer/`), on with GraphiQL.
async fn explorer(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    page(&app, "explorer/index.html", &headers)
}

/// A page of ours; both are off with `EXECSTORE_GRAPHIQL=false`.
fn page(app: &App, asset: &str, headers: &HeaderMap) -> Response {
    match crate::assets::find(asset) {
        Some(page) if app.graphiql => page.response(headers),
        _ => (StatusCode::NOT_FOUND, "the browser pages are disabled").into_response(),
    }
}

async fn graphql_ws(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    protocol: GraphQLProtocol,
    upgrade: WebSocketUpgrade,
) -> Response {
    let header_token = authorization(&headers).map(str::to_owned);
    upgrade
        .protocols(ALL_WEBSOCKET_PROTOCOLS)
        // Events are small: 8 KiB buffers instead of tungstenite's 128 KiB
        // each way, which a thousand idle connections would pay 256 MB for.
        .read_buffer_size(8 * 1024)
        .write_buffer_size(8 * 1024)
        .on_upgrade(move |socket| {
            let schema = app.schema.clone();
            GraphQLWebSocket::new(socket, schema, protocol)
                .on_connection_init(move |payload| async move {
                    // The token may come in the upgrade request's header or,
                    // as browsers cannot set one, in connection_init's payload.
                    let token = ["Authorization", "authorization"]
                        .iter()
                        .find_map(|k| payload.get(k).and_then(|v| v.as_str()).map(str::to_owned))
                        .or(header_token);
                    let viewer = app.auth.viewer(token.as_deref()).map_err(|e| {
                        crate::graphql::error::coded(code::UNAUTHENTICATED, e.to_string())
                    })?;
                    let mut data = Data::default();
                    data.insert(Loaders::new(&app.store, &viewer.scope(), None));
                    data.insert(viewer);
                    Ok(data)
                })
                .serve()
        })
}

async fn readyz(State(app): State<Arc<App>>) -> Response {
    if app.store.ping().await {
        (StatusCode::OK, "ready").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "database unavailable").into_response()
    }
}

async fn schema_sdl(State(app): State<Arc<App>>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        app.schema.sdl(),
    )
        .into_response()
}
