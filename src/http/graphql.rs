//! `/graphql` by POST and GET, and `/graphql/ws`: the media type, who asks,
//! where the request reads, the execution, and the fast path's bytes
//! spliced into the answer.

use std::sync::Arc;

use async_graphql::http::ALL_WEBSOCKET_PROTOCOLS;
use async_graphql::{BatchRequest, Data, Request};
use async_graphql_axum::{GraphQLProtocol, GraphQLWebSocket};
use axum::extract::{State, WebSocketUpgrade};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::media::{negotiate, Media};
use super::pages::graphiql;
use super::params;
use super::router::{authorization, error_body, unauthenticated, App, CONSISTENCY_HEADER};
use crate::auth::Viewer;
use crate::graphql::error::code;
use crate::graphql::fast_tree::RawAnswers;
use crate::graphql::persisted;
use crate::graphql::Loaders;
use crate::store::{ExecutionStore, ReadRoute};

/// `POST /graphql`: a JSON body (`application/json`; anything else, or no
/// content type, is 415), one request or a batch.
pub(super) async fn graphql_post(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    let Some(media) = negotiate(&headers, &[Media::Json, Media::GraphqlResponse]) else {
        return not_acceptable();
    };
    let viewer = match app.auth.viewer(authorization(&headers)) {
        Ok(viewer) => viewer,
        Err(err) => return unauthenticated(err),
    };
    if !is_json(&headers) {
        let message = "send the request as JSON: Content-Type: application/json";
        return refused(StatusCode::UNSUPPORTED_MEDIA_TYPE, message);
    }
    let bytes = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(bytes) => bytes,
        Err(err) if body_too_large(&err) => {
            let message = "request body exceeds the configured limit (EXECSTORE_MAX_BODY_BYTES)";
            return refused(StatusCode::PAYLOAD_TOO_LARGE, message);
        }
        Err(err) => {
            return refused(
                StatusCode::BAD_REQUEST,
                &format!("unreadable request body: {err}"),
            )
        }
    };
    let batch = match params::batch(&bytes) {
        Ok(batch) => batch,
        Err(message) => return refused(StatusCode::BAD_REQUEST, &message),
    };
    serve(app, headers, viewer, batch, media, false).await
}

/// `GET /graphql`: GraphiQL for a browser asking for HTML; else a query
/// (`query`, `variables`, `operationName`, `extensions` in the URL, the
/// last three JSON). Mutations are refused (405): a GET must be safe to
/// repeat, cache and prefetch.
pub(super) async fn graphql_get(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    uri: axum::http::Uri,
) -> Response {
    // The answer, page or JSON, depends on the media type asked for; no
    // answer sets Cache-Control, so a cache keeps none of them per viewer
    // (whoever adds cache hints must vary on Authorization too).
    let mut response = answer_get(app, headers, uri).await;
    response
        .headers_mut()
        .insert(header::VARY, HeaderValue::from_static("accept"));
    response
}

async fn answer_get(app: Arc<App>, headers: HeaderMap, uri: axum::http::Uri) -> Response {
    let offered: &[Media] = match app.graphiql {
        true => &[Media::Html, Media::Json, Media::GraphqlResponse],
        false => &[Media::Json, Media::GraphqlResponse],
    };
    let Some(media) = negotiate(&headers, offered) else {
        return not_acceptable();
    };
    if media == Media::Html {
        return graphiql(&app, &headers);
    }
    let viewer = match app.auth.viewer(authorization(&headers)) {
        Ok(viewer) => viewer,
        Err(err) => return unauthenticated(err),
    };
    let request = match params::from_query_string(uri.query().unwrap_or_default()) {
        Ok(request) => request,
        Err(message) => return refused(StatusCode::BAD_REQUEST, &message),
    };
    serve(
        app,
        headers,
        viewer,
        BatchRequest::Single(request),
        media,
        true,
    )
    .await
}

/// One request or a batch, by POST or GET, from parsing on.
async fn serve(
    app: Arc<App>,
    headers: HeaderMap,
    viewer: Viewer,
    mut batch: BatchRequest,
    media: Media,
    by_get: bool,
) -> Response {
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
    let prepared = app.documents.prepare(&mut batch, &app.persisted);
    if by_get && prepared.unknown_hash {
        // Fail closed: a GET's hash the server could not read the document
        // of now is not left to the hook, which might find it registered
        // a moment later and run a mutation by GET.
        let response = async_graphql::Response::from_errors(vec![persisted::not_found()]);
        return Executed {
            response: response.into(),
            raw: RawAnswers::default(),
        }
        .into_response(media)
        .await;
    }
    if by_get && prepared.writes {
        let message =
            "mutations and subscriptions are not sent by GET: use POST (or the WebSocket)";
        let mut response = refused(StatusCode::METHOD_NOT_ALLOWED, message);
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("POST"));
        return response;
    }
    let read_only = prepared.read_only;
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
            .into_response(media)
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
        let mut response = executed.into_response(media).await;
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
            .into_response(media)
            .await;
    }
    let mut again = match &batch {
        BatchRequest::Single(r) => BatchRequest::Single(resend(r)),
        BatchRequest::Batch(rs) => BatchRequest::Batch(rs.iter().map(resend).collect()),
    };
    app.documents.prepare(&mut again, &app.persisted); // the documents just kept
    let executed = execute(&app, batch, &viewer, &routed.store).await;
    if routed.failed() {
        // The standby failed under us (down, restarting, a conflict with
        // recovery): the same query again on the primary, no failed request.
        crate::metrics::read_routed(ReadRoute::Primary.label());
        return execute(&app, again, &viewer, &app.store)
            .await
            .into_response(media)
            .await;
    }
    crate::metrics::read_routed(routed.route.label());
    executed.into_response(media).await
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
    /// The HTTP response in `media`, its body with the fast path's answers
    /// spliced in. With `application/graphql-response+json` a request that
    /// never ran (it did not parse or validate, its variables did not
    /// coerce, a limit or the allow list refused it) is `400` without
    /// `data`; errors raised while executing keep `200` and partial data.
    async fn into_response(self, media: Media) -> Response {
        let refused = match (&self.response, media) {
            (async_graphql::BatchResponse::Single(r), Media::GraphqlResponse) if never_ran(r) => {
                Some(r)
            }
            _ => None,
        };
        let body = match refused {
            Some(response) => serde_json::to_vec(&Refused(response)),
            None => serde_json::to_vec(&self.response),
        };
        let Ok(bytes) = body else {
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        };
        let mut response = Response::new(axum::body::Body::empty());
        if refused.is_some() {
            *response.status_mut() = StatusCode::BAD_REQUEST;
        }
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(media.content_type()),
        );
        if self.response.is_ok() {
            if let Some(value) = self
                .response
                .cache_control()
                .value()
                .and_then(|v| HeaderValue::from_str(&v).ok())
            {
                headers.insert(header::CACHE_CONTROL, value);
            }
        }
        headers.extend(self.response.http_headers());
        if self.raw.is_empty() {
            headers.insert(header::CONTENT_LENGTH, bytes.len().into());
            *response.body_mut() = axum::body::Body::from(bytes);
            return response;
        }
        let pieces = self.raw.splice(&axum::body::Bytes::from(bytes));
        let length: usize = pieces.iter().map(axum::body::Bytes::len).sum();
        headers.insert(header::CONTENT_LENGTH, length.into());
        let pieces = pieces.into_iter().map(Ok::<_, std::convert::Infallible>);
        *response.body_mut() = axum::body::Body::from_stream(futures_util::stream::iter(pieces));
        response
    }
}

/// A response to a request that never ran: no data, only errors, none of
/// them at a path (errors of fields carry the path of their field).
fn never_ran(response: &async_graphql::Response) -> bool {
    response.data == async_graphql::Value::Null
        && !response.errors.is_empty()
        && response.errors.iter().all(|e| e.path.is_empty())
}

/// A response serialised without its `data` entry.
struct Refused<'a>(&'a async_graphql::Response);

impl serde::Serialize for Refused<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("errors", &self.0.errors)?;
        if !self.0.extensions.is_empty() {
            map.serialize_entry("extensions", &self.0.extensions)?;
        }
        map.end()
    }
}

/// POST bodies must say they are JSON (any parameters, such as charset).
fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/json"))
}

fn not_acceptable() -> Response {
    let message =
        "the answer is JSON: accept application/json or application/graphql-response+json";
    refused(StatusCode::NOT_ACCEPTABLE, message)
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
/// up front) reaches the handler as an error of the body's stream.
fn body_too_large(err: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
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
