//! The browser pages (GraphiQL, the explorer) and the SDL.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use super::router::App;

/// GraphiQL, from assets embedded in the binary (`assets/graphiql/`): what
/// `GET /graphql` answers a browser asking for HTML.
pub(super) fn graphiql(app: &App, headers: &HeaderMap) -> Response {
    page(app, "graphiql/index.html", headers)
}

/// The execution explorer (`assets/explorer/`), on with GraphiQL.
pub(super) async fn explorer(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    page(&app, "explorer/index.html", &headers)
}

/// A page of ours; both are off with `EXECSTORE_GRAPHIQL=false`.
fn page(app: &App, asset: &str, headers: &HeaderMap) -> Response {
    match crate::assets::find(asset) {
        Some(page) if app.graphiql => page.response(headers),
        _ => (StatusCode::NOT_FOUND, "the browser pages are disabled").into_response(),
    }
}

pub(super) async fn schema_sdl(State(app): State<Arc<App>>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        app.schema.sdl(),
    )
        .into_response()
}
