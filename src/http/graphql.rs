//! `POST /graphql` and `/graphql/ws`: who asks, where the request reads,
//! the execution, and the fast path's bytes spliced into the answer.

use std::sync::Arc;

use async_graphql::http::ALL_WEBSOCKET_PROTOCOLS;
use async_graphql::{BatchRequest, Data, Request};
use async_graphql_axum::{
    rejection::GraphQLRejection, GraphQLBatchRequest, GraphQLProtocol, GraphQLResponse,
    GraphQLWebSocket,
};
use axum::extract::{State, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::router::{authorization, error_body, unauthenticated, App, CONSISTENCY_HEADER};
use crate::auth::Viewer;
use crate::graphql::error::code;
use crate::graphql::fast_tree::RawAnswers;
use crate::graphql::Loaders;
use crate::store::{ExecutionStore, ReadRoute};

pub(super) async fn graphql_post(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    request: Result<GraphQLBatchRequest, GraphQLRejection>,
) -> Response {
    let viewer = match app.auth.viewer(authorization(&headers)) {
        Ok(viewer) => viewer,
        Err(err) => return unauthenticated(err),
    };
    let mut batch = match request {
        Ok(request) => request.into_inner(),
        Err(rejection) if body_too_large(&rejection.0) => {
            let message = "request body exceeds the configured limit (EXECSTORE_MAX_BODY_BYTES)";
            return refused(StatusCode::PAYLOAD_TOO_LARGE, message);
        }
        Err(rejection) => {
            let message = format!("malformed GraphQL request: {}", rejection.0);
            return refused(StatusCode::BAD_REQUEST, &message);
        }
    };
    if let BatchRequest::Batch(requests) = &batch {
        if requests.len() > app.max_batch {
            let message = format!(
                "a batch may hold at most {} operations, this one has {}",
                app.max_batch,
                requests.len()
            );
            return refused(StatusCode::BAD_REQUEST, &message);
        }
    }
    // Parsed here, once: execution takes the parsed documents.
    let read_only = app.documents.prepare(&mut batch);
    // Queries take a turn at the read gate (held until the answer is
    // serialised); mutations — the fleet's claims, heartbeats, finishes —
    // never wait here.
    let _turn = match (&app.read_gate, read_only) {
        (Some(gate), true) => gate.clone().acquire_owned().await.ok(),
        _ => None,
    };
    if app.store.standbys().is_none() {
        return execute(&app, batch, &viewer, &app.store)
            .await
            .into_response()
            .await;
    }
    let token = match headers.get(CONSISTENCY_HEADER) {
        None => None,
        Some(value) => match value.to_str().ok().filter(|t| ExecutionStore::is_token(t)) {
            Some(token) => Some(token.to_owned()),
            None => {
                let message = format!("malformed {CONSISTENCY_HEADER} header: send back the token a mutation returned");
                return refused(StatusCode::BAD_REQUEST, &message);
            }
        },
    };
    if !read_only {
        // Mutations (and the rest) run on the primary; the answer carries
        // the token a later query sends back to read its own writes.
        let mut executed = execute(&app, batch, &viewer, &app.store).await;
        let token = app.store.consistency_token().await;
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
    let routed = app.store.route_reads(token.as_deref()).await;
    if routed.route == ReadRoute::Primary {
        crate::metrics::read_routed(routed.route.label());
        return execute(&app, batch, &viewer, &routed.store)
            .await
            .into_response()
            .await;
    }
    let mut again = match &batch {
        BatchRequest::Single(r) => BatchRequest::Single(resend(r)),
        BatchRequest::Batch(rs) => BatchRequest::Batch(rs.iter().map(resend).collect()),
    };
    app.documents.prepare(&mut again); // the documents just kept
    let executed = execute(&app, batch, &viewer, &routed.store).await;
    if routed.failed() {
        // The standby failed under us (down, restarting, a conflict with
        // recovery): the same query again on the primary, no failed request.
        crate::metrics::read_routed(ReadRoute::Primary.label());
        return execute(&app, again, &viewer, &app.store)
            .await
            .into_response()
            .await;
    }
    crate::metrics::read_routed(routed.route.label());
    executed.into_response().await
}

fn refused(status: StatusCode, message: &str) -> Response {
    (status, Json(error_body(code::BAD_USER_INPUT, message))).into_response()
}

/// A copy of the request as the client sent it (to run it again elsewhere).
fn resend(request: &Request) -> Request {
    let mut copy = Request::new(request.query.clone()).variables(request.variables.clone());
    copy.operation_name.clone_from(&request.operation_name);
    copy
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

pub(super) async fn graphql_ws(
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
