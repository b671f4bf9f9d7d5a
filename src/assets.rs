//! Browser assets embedded in the binary, served under `/assets/`:
//! GraphiQL and its libraries (from their npm packages:
//! `assets/graphiql/README.md`) and the execution explorer (ours, plain ES
//! modules: `assets/explorer/`). Nothing a page of ours loads comes from outside the server.

use std::sync::OnceLock;

use axum::extract::Path;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// One embedded file.
pub struct Asset {
    pub path: &'static str,
    pub content_type: &'static str,
    pub bytes: &'static [u8],
    gzipped: OnceLock<Vec<u8>>,
}

macro_rules! asset {
    ($path:literal, $type:expr) => {
        Asset {
            path: $path,
            content_type: $type,
            bytes: include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/assets/", $path)),
            gzipped: OnceLock::new(),
        }
    };
}

const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const HTML: &str = "text/html; charset=utf-8";

static ASSETS: [Asset; 11] = [
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
    /// The file, gzipped when the client accepts it.
    pub fn response(&self, request: &HeaderMap) -> Response {
        let gzip_ok = request
            .get(header::ACCEPT_ENCODING)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.split(',').any(|e| e.trim().starts_with("gzip")));
        let mut response = if gzip_ok {
            let body = self.gzipped.get_or_init(|| gzip(self.bytes)).clone();
            let mut r = body.into_response();
            r.headers_mut()
                .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            r
        } else {
            self.bytes.into_response()
        };
        let h = response.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(self.content_type),
        );
        h.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
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

fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    // Writing to a Vec cannot fail.
    let _ = encoder.write_all(bytes);
    encoder.finish().unwrap_or_default()
}
