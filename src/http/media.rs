//! Content negotiation for `/graphql`, as the GraphQL-over-HTTP spec has it:
//! which media type the answer is in, read off the request's `Accept`.
//!
//! The two JSON types carry the same body but differ in status codes: with
//! `application/json` (the legacy type every client understands) a request
//! that cannot be parsed or validated still answers `200`; with
//! `application/graphql-response+json` it answers `400` and no `data`, so a
//! client, a proxy or a CDN tells a broken request from a failed field by
//! the status alone.

use axum::http::{header, HeaderMap};

/// What a `/graphql` answer can be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Media {
    /// `application/json`: no `Accept`, `*/*` and `application/*` get it.
    Json,
    /// `application/graphql-response+json`, when asked for by name.
    GraphqlResponse,
    /// GraphiQL's page (GET only): a browser asking for `text/html`.
    Html,
}

impl Media {
    pub fn content_type(self) -> &'static str {
        match self {
            Media::Json => "application/json",
            Media::GraphqlResponse => "application/graphql-response+json",
            Media::Html => "text/html; charset=utf-8",
        }
    }
}

/// The media type of `offered` the request's `Accept` ranks highest (by
/// `q`, then by the order the client listed them), or `None` when it
/// accepts none of them. No `Accept` at all is `application/json`, as the
/// spec asks of servers.
pub fn negotiate(headers: &HeaderMap, offered: &[Media]) -> Option<Media> {
    let accept: Vec<&str> = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    if accept.iter().all(|a| a.trim().is_empty()) {
        return offered.contains(&Media::Json).then_some(Media::Json);
    }
    let mut best: Option<(f32, Media)> = None;
    for range in accept.iter().flat_map(|a| a.split(',')) {
        let mut parts = range.split(';');
        let name = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let q = parts
            .filter_map(|p| p.trim().strip_prefix("q="))
            .find_map(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        if q <= 0.0 {
            continue;
        }
        let Some(media) = matching(&name, offered) else {
            continue;
        };
        // Strictly higher only: among equals the client's first wins.
        if best.is_none_or(|(known, _)| q > known) {
            best = Some((q, media));
        }
    }
    best.map(|(_, media)| media)
}

/// Which offered type a media range names: wildcards mean JSON (a client
/// that takes anything gets the type every client reads).
fn matching(range: &str, offered: &[Media]) -> Option<Media> {
    let media = match range {
        "application/graphql-response+json" => Media::GraphqlResponse,
        "application/json" | "application/*" | "*/*" => Media::Json,
        "text/html" | "application/xhtml+xml" => Media::Html,
        _ => return None,
    };
    offered.contains(&media).then_some(media)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT, value.parse().unwrap());
        headers
    }

    const API: &[Media] = &[Media::Json, Media::GraphqlResponse];
    const GET: &[Media] = &[Media::Html, Media::Json, Media::GraphqlResponse];

    #[test]
    fn no_accept_is_json() {
        assert_eq!(negotiate(&HeaderMap::new(), API), Some(Media::Json));
    }

    #[test]
    fn named_types_and_wildcards() {
        let cases = [
            ("application/json", Some(Media::Json)),
            ("*/*", Some(Media::Json)),
            ("application/*", Some(Media::Json)),
            (
                "application/graphql-response+json",
                Some(Media::GraphqlResponse),
            ),
            (
                "application/graphql-response+json, application/json, multipart/mixed",
                Some(Media::GraphqlResponse),
            ),
            (
                "application/json;q=0.9, application/graphql-response+json",
                Some(Media::GraphqlResponse),
            ),
            (
                "application/graphql-response+json;q=0.5, application/json",
                Some(Media::Json),
            ),
            ("application/json;q=0", None),
            ("text/plain", None),
            ("text/html", None),
        ];
        for (value, expected) in cases {
            assert_eq!(negotiate(&accept(value), API), expected, "{value}");
        }
    }

    #[test]
    fn a_browser_gets_the_page_and_a_client_the_answer() {
        let browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
        assert_eq!(negotiate(&accept(browser), GET), Some(Media::Html));
        assert_eq!(
            negotiate(&accept("application/json"), GET),
            Some(Media::Json)
        );
        assert_eq!(negotiate(&HeaderMap::new(), GET), Some(Media::Json));
    }
}
