//! A GraphQL-over-HTTP request's parameters: `query`, `operationName`,
//! `variables`, `extensions`, from a JSON body (one request or a batch) or
//! from a GET's URL. What does not fit is refused here, before anything
//! parses the document, with a message that says what is wrong: a body
//! without `query` (and no persisted query's hash in its extensions), a
//! `query` that is not a string, `variables` or `extensions` that are not
//! objects.

use async_graphql::{BatchRequest, Extensions, Request, Variables};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Params {
    query: Option<String>,
    operation_name: Option<String>,
    variables: Option<Variables>,
    extensions: Option<Extensions>,
}

/// A JSON body: one request (an object) or a batch (an array of them).
pub fn batch(body: &[u8]) -> Result<BatchRequest, String> {
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    let malformed = |e: serde_json::Error| format!("malformed GraphQL request: {e}");
    match first {
        None => Err("the request body is empty: send {\"query\": \"…\"}".into()),
        Some(b'[') => {
            let all: Vec<Params> = serde_json::from_slice(body).map_err(malformed)?;
            if all.is_empty() {
                return Err("a batch holds at least one operation".into());
            }
            let requests = all.into_iter().map(request).collect::<Result<_, _>>()?;
            Ok(BatchRequest::Batch(requests))
        }
        Some(_) => {
            let one: Params = serde_json::from_slice(body).map_err(malformed)?;
            Ok(BatchRequest::Single(request(one)?))
        }
    }
}

/// A GET's URL query: the same parameters, `variables` and `extensions` as
/// JSON text.
pub fn from_query_string(query: &str) -> Result<Request, String> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Url {
        query: Option<String>,
        operation_name: Option<String>,
        variables: Option<String>,
        extensions: Option<String>,
    }
    let url: Url = serde_urlencoded::from_str(query)
        .map_err(|e| format!("malformed GraphQL request in the URL: {e}"))?;
    fn json<T: serde::de::DeserializeOwned>(
        name: &str,
        text: Option<String>,
    ) -> Result<Option<T>, String> {
        match text.filter(|t| !t.is_empty()) {
            None => Ok(None),
            Some(text) => serde_json::from_str(&text)
                .map(Some)
                .map_err(|e| format!("malformed `{name}` parameter (JSON expected): {e}")),
        }
    }
    request(Params {
        query: url.query,
        operation_name: url.operation_name,
        variables: json("variables", url.variables)?,
        extensions: json("extensions", url.extensions)?,
    })
}

fn request(params: Params) -> Result<Request, String> {
    let extensions = params.extensions.unwrap_or_default();
    let query = match params.query {
        Some(query) => query,
        None if extensions.contains_key("persistedQuery") => String::new(),
        None => return Err(
            "the request has no `query` parameter (nor a persisted query's hash in `extensions`)"
                .into(),
        ),
    };
    let mut request = Request::new(query).variables(params.variables.unwrap_or_default());
    request.operation_name = params.operation_name;
    request.extensions = extensions;
    Ok(request)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies() {
        assert!(matches!(
            batch(br#"{"query":"{a}"}"#),
            Ok(BatchRequest::Single(_))
        ));
        assert!(
            matches!(batch(br#" [{"query":"{a}"},{"query":"{b}"}]"#), Ok(BatchRequest::Batch(r)) if r.len() == 2)
        );
        for bad in [
            &br#""#[..],
            br#"{"qeury":"{a}"}"#,
            br#"{"query":1}"#,
            br#"{"query":"{a}","variables":"x"}"#,
            br#"{"query":"{a}","extensions":[1]}"#,
            br#"[]"#,
            br#"[{"query":"{a}"},{}]"#,
        ] {
            assert!(batch(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
        let hash_only = br#"{"extensions":{"persistedQuery":{"version":1,"sha256Hash":"ab"}}}"#;
        assert!(batch(hash_only).is_ok());
        let nulls = br#"{"query":"{a}","variables":null,"operationName":null,"extensions":null}"#;
        assert!(batch(nulls).is_ok());
    }

    #[test]
    fn urls() {
        let r = from_query_string("query=query%20Q(%24n%3A%20String)%20%7B%20a%20%7D&variables=%7B%22n%22%3A%22x%22%7D&operationName=Q").unwrap();
        assert_eq!(r.operation_name.as_deref(), Some("Q"));
        assert!(from_query_string("").is_err());
        assert!(from_query_string("query={a}&variables=nope").is_err());
    }
}
