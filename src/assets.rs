//! Browser assets embedded in the binary, served under `/assets/`:
//! GraphiQL and its libraries (from their npm packages:
//! `assets/graphiql/README.md`) and the execution explorer (ours, plain ES
//! modules: `assets/explorer/`). Nothing a page of ours loads comes from outside the server.

use axum::extract::Path;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// One embedded file.
pub struct Asset {
    pub path: &'static str,
    pub content_type: &'static str,
    pub bytes: &'static [u8],
}

macro_rules! asset {
    ($path:literal, $type:expr) => {
        Asset {
            path: $path,
            content_type: $type,
            bytes: include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/assets/", $path)),
        }
    };
}

const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const HTML: &str = "text/html; charset=utf-8";

static ASSETS: [Asset; 22] = [
    asset!("graphiql/index.html", HTML),
    asset!("graphiql/start.js", JS),
    asset!("graphiql/react.production.min.js", JS),
    asset!("graphiql/react-dom.production.min.js", JS),
    asset!("graphiql/graphiql.min.js", JS),
    asset!("graphiql/graphiql.min.css", CSS),
    asset!("graphiql/plugin-explorer.umd.js", JS),
    asset!("graphiql/plugin-explorer.css", CSS),
    asset!("explorer/index.html", HTML),
    asset!("explorer/explorer.js", JS),
    asset!("explorer/api.js", JS),
    asset!("explorer/ui.js", JS),
    asset!("explorer/state.js", JS),
    asset!("explorer/flows.js", JS),
    asset!("explorer/tree.js", JS),
    asset!("explorer/waterfall.js", JS),
    asset!("explorer/find.js", JS),
    asset!("explorer/details.js", JS),
    asset!("explorer/controls.js", JS),
    asset!("explorer/live.js", JS),
    asset!("explorer/links.js", JS),
    asset!("explorer/explorer.css", CSS),
];

/// Pages may load only from this server (scripts, styles, fetches,
/// websockets); inline styles are allowed because GraphiQL sets them.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; \
     connect-src 'self'; worker-src 'self' blob:; base-uri 'none'; form-action 'none'; \
     frame-ancestors 'none'";

pub fn find(path: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|a| a.path == path)
}

/// `GET /assets/{*path}`.
pub async fn serve(Path(path): Path<String>, headers: HeaderMap) -> Response {
    match find(&path) {
        Some(asset) => asset.response(&headers),
        None => (StatusCode::NOT_FOUND, "no such asset").into_response(),
    }
}

impl Asset {
    /// The file as embedded (no copy). Compression, when the client accepts
    /// it, is tower-http's layer on these routes (`http::router`).
    pub fn response(&self, _request: &HeaderMap) -> Response {
        let mut response = self.bytes.into_response();
        let h = response.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(self.content_type),
        );
        h.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=3600"),
        );
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        );
        h.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        response
    }
}
