//! GraphQL over HTTP as the spec has it: media types and status codes,
//! queries by GET, persisted queries, the allow list, the parser's limits;
//! and clients nobody here wrote (the `graphql-http` audits, graphql-js on
//! the docs' documents) against a real server.

use axum::body::Body;
use axum::http::Request;
use serde_json::{json, Value};

use crate::api_support::{create, Api};
use crate::harness::Backend;
use execstore::config::Config;
use execstore::graphql::persisted::sha256;

const JSON: &str = "application/json";
const GRJ: &str = "application/graphql-response+json";

/// POSTs `body` with the headers given; status, content type and body.
async fn post(api: &Api, headers: &[(&str, &str)], body: &str) -> (u16, String, Value) {
    let mut request = Request::post("/graphql");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    send(api, request.body(Body::from(body.to_owned())).unwrap()).await
}

/// GETs /graphql with `params` in its URL.
async fn get(api: &Api, accept: &str, params: &[(&str, &str)]) -> (u16, String, Value) {
    let query_string = serde_urlencoded::to_string(params).unwrap();
    let request = Request::get(format!("/graphql?{query_string}"))
        .header("accept", accept)
        .body(Body::empty())
        .unwrap();
    send(api, request).await
}

async fn send(api: &Api, request: Request<Body>) -> (u16, String, Value) {
    let response = tower::ServiceExt::oneshot(api.router.clone(), request)
        .await
        .unwrap();
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let bytes = http_body_util::BodyExt::collect(response.into_body())
        .await
        .unwrap()
        .to_bytes();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, content_type, body)
}

async fn media_types_and_status_codes(backend: Backend) {
    let api = Api::new(backend).await;
    create(&api, "a", None).await;
    let ok = r#"{"query":"{ execution(id: \"a\") { id } }"}"#;
    let ct = ("content-type", JSON);

    // No Accept, */* and application/json: application/json.
    for accept in [None, Some("*/*"), Some(JSON)] {
        let mut headers = vec![ct];
        headers.extend(accept.map(|a| ("accept", a)));
        let (status, content_type, body) = post(&api, &headers, ok).await;
        assert_eq!((status, content_type.as_str()), (200, JSON), "{accept:?}");
        assert_eq!(body["data"]["execution"]["id"], "a");
    }
    let (status, content_type, _) = post(&api, &[ct, ("accept", GRJ)], ok).await;
    assert_eq!((status, content_type.as_str()), (200, GRJ));
    let (status, _, body) = post(&api, &[ct, ("accept", "text/plain")], ok).await;
    assert_eq!(status, 406);
    assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");

    // A request that never ran: 400 and no data with the new type; 200
    // with data null for clients of application/json.
    let never_ran = [
        r#"{"query":"{"}"#,                                                      // parse
        r#"{"query":"{ nope }"}"#,                                               // validation
        r#"{"query":"query($id: ID!) { __typename }","variables":{"id":null}}"#, // coercion
    ];
    for body in never_ran {
        let (status, content_type, answer) = post(&api, &[ct, ("accept", GRJ)], body).await;
        assert_eq!(
            (status, content_type.as_str()),
            (400, GRJ),
            "{body}: {answer}"
        );
        assert!(answer.get("data").is_none(), "{body}: {answer}");
        assert_eq!(answer["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");
        let (status, _, answer) = post(&api, &[ct, ("accept", JSON)], body).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(answer["data"], Value::Null);
        assert!(answer["errors"][0]["message"].is_string());
    }
    // An error while executing keeps 200 and the partial data.
    let partial = r#"{"query":"{ a: execution(id: \"a\") { id } b: execution(id: \"\") { id } }"}"#;
    let (status, _, answer) = post(&api, &[ct, ("accept", GRJ)], partial).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["data"]["a"]["id"], "a", "{answer}");
    assert_eq!(answer["errors"][0]["path"], json!(["b"]), "{answer}");

    // Not JSON, or no content type: 415. A body without `query`: 400.
    for headers in [vec![], vec![("content-type", "text/plain")]] {
        let (status, _, _) = post(&api, &headers, ok).await;
        assert_eq!(status, 415);
    }
    for body in [r#"{"qeury":"{ __typename }"}"#, "", r#"{"query":7}"#] {
        let (status, _, answer) = post(&api, &[ct], body).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(answer["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");
    }
}

async fn queries_by_get(backend: Backend) {
    let api = Api::new(backend).await;
    create(&api, "a", None).await;
    let q = "query One($id: ID!) { execution(id: $id) { id status } }";
    let vars = r#"{"id":"a"}"#;
    let (status, content_type, body) = get(&api, JSON, &[("query", q), ("variables", vars)]).await;
    assert_eq!((status, content_type.as_str()), (200, JSON), "{body}");
    assert_eq!(body["data"]["execution"]["status"], "CREATED");
    let one = [("query", q), ("variables", vars), ("operationName", "One")];
    let (status, content_type, _) = get(&api, GRJ, &one).await;
    assert_eq!((status, content_type.as_str()), (200, GRJ));

    // Mutations are not sent by GET, and nothing is written.
    let mutation =
        serde_urlencoded::to_string([("query", r#"mutation { deleteExecution(id: "a") }"#)])
            .unwrap();
    let request = Request::get(format!("/graphql?{mutation}"))
        .header("accept", JSON)
        .body(Body::empty())
        .unwrap();
    let response = tower::ServiceExt::oneshot(api.router.clone(), request)
        .await
        .unwrap();
    assert_eq!(response.status(), 405);
    assert_eq!(response.headers()["allow"], "POST");
    api.ok(r#"{ execution(id: "a") { id } }"#, json!({})).await;

    // No query: 400; malformed variables: 400.
    let (status, _, _) = get(&api, JSON, &[]).await;
    assert_eq!(status, 400);
    let (status, _, _) = get(&api, JSON, &[("query", q), ("variables", "nope")]).await;
    assert_eq!(status, 400);
}

fn persisted(hash: &str) -> Value {
    json!({ "persistedQuery": { "version": 1, "sha256Hash": hash } })
}

async fn persisted_queries(backend: Backend) {
    let api = Api::new(backend).await;
    create(&api, "a", None).await;
    let text = r#"query Feed { execution(id: "a") { id } }"#;
    let hash = sha256(text);

    // Unknown: the protocol's answer, which clients look for by message.
    let (status, body) = api
        .post_json(&json!({ "extensions": persisted(&hash) }))
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["errors"][0]["message"], "PersistedQueryNotFound");
    assert_eq!(
        body["errors"][0]["extensions"]["code"],
        "PERSISTED_QUERY_NOT_FOUND"
    );

    // A text that is not the hash's is refused and not kept.
    let (_, body) = api
        .post_json(&json!({ "query": "{ __typename }", "extensions": persisted(&hash) }))
        .await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
        "{body}"
    );

    // Registered with its text, then run by its hash (by POST and by GET).
    let (_, body) = api
        .post_json(&json!({ "query": text, "extensions": persisted(&hash) }))
        .await;
    assert_eq!(body["data"]["execution"]["id"], "a", "{body}");
    let (_, body) = api
        .post_json(&json!({ "extensions": persisted(&hash) }))
        .await;
    assert_eq!(body["data"]["execution"]["id"], "a", "{body}");
    let extensions = persisted(&hash).to_string();
    let (status, _, body) = get(&api, JSON, &[("extensions", &extensions)]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["execution"]["id"], "a", "{body}");

    // A registered mutation is not run by GET, whatever case its hash is
    // sent in; an unknown hash by GET is the protocol's answer.
    let mutation = r#"mutation Delete { deleteExecution(id: "zz") }"#;
    let registered = json!({ "query": mutation, "extensions": persisted(&sha256(mutation)) });
    api.post_json(&registered).await;
    let upper = sha256(mutation).to_ascii_uppercase();
    let extensions = persisted(&upper).to_string();
    let (status, _, _) = get(&api, JSON, &[("extensions", &extensions)]).await;
    assert_eq!(status, 405);
    let unknown = persisted(&sha256("{ nothing }")).to_string();
    let (status, _, body) = get(&api, JSON, &[("extensions", &unknown)]).await;
    assert_eq!(status, 200);
    assert_eq!(
        body["errors"][0]["extensions"]["code"],
        "PERSISTED_QUERY_NOT_FOUND"
    );

    // A malformed extension.
    let (_, body) = api
        .post_json(
            &json!({ "extensions": { "persistedQuery": { "version": 2, "sha256Hash": hash } } }),
        )
        .await;
    assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");
}

async fn the_allow_list(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let listed = "query One($id: ID!) {\n  execution(id: $id) {\n    id\n  }\n}\n";
    std::fs::create_dir(dir.path().join("worker")).unwrap();
    std::fs::write(dir.path().join("worker/one.graphql"), listed).unwrap();
    std::fs::write(dir.path().join("notes.txt"), "not a document").unwrap();
    let mut config = Config::defaults();
    config.operations = Some(dir.path().to_owned());
    let api = Api::with_config(backend, config.clone()).await;
    let vars = json!({ "id": "a" });

    // The listed document runs as printed by another tool, and by the hash
    // of the file's text.
    api.ok("query One($id:ID!){execution(id:$id){id}}", vars.clone())
        .await;
    let (_, body) = api
        .post_json(&json!({ "extensions": persisted(&sha256(listed)), "variables": vars }))
        .await;
    assert!(body.get("errors").is_none(), "{body}");

    // Others are refused, by text and by registration.
    let other = "query Two { __typename }";
    assert_eq!(
        api.error_code(other, json!({})).await,
        "OPERATION_NOT_ALLOWED"
    );
    let (_, body) = api
        .post_json(&json!({ "query": other, "extensions": persisted(&sha256(other)) }))
        .await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"],
        "OPERATION_NOT_ALLOWED"
    );
    let (_, body) = api
        .post_json(&json!({ "extensions": persisted(&sha256(other)) }))
        .await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"],
        "PERSISTED_QUERY_NOT_FOUND"
    );

    // Admins through, when the setting says so (open mode: everyone is admin).
    config.operations_admins_run_any = true;
    let api = Api::with_config(backend, config).await;
    api.ok(other, json!({})).await;

    // An unreadable list stops the start.
    let mut broken = Config::defaults();
    std::fs::write(dir.path().join("worker/bad.graphql"), "query {").unwrap();
    broken.operations = Some(dir.path().to_owned());
    let store = api.store.clone();
    let Err(err) = execstore::http::router(store, &broken) else {
        panic!("a list that does not parse must stop the start")
    };
    assert!(err.contains("bad.graphql"), "{err}");
}

async fn directive_overload_is_refused_before_validation(backend: Backend) {
    let api = Api::new(backend).await;
    let query = format!("{{ __typename {} }}", "@include(if: true) ".repeat(20_000));
    let response = api.query(&query, json!({})).await;
    let error = &response["errors"][0];
    assert_eq!(error["extensions"]["code"], "BAD_USER_INPUT", "{response}");
    assert!(
        error["message"].as_str().unwrap().contains("directives"),
        "{response}"
    );
    // A handful still pass.
    api.ok(
        "{ __typename @include(if: true) @skip(if: false) }",
        json!({}),
    )
    .await;
}

/// Runs `tests/js/<script>` under Node with `env`; its output on failure.
pub fn node(script: &str, env: &[(&str, String)]) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/js");
    assert!(
        dir.join("node_modules").is_dir(),
        "tests/js/node_modules is missing: run the suite through scripts/test.sh, which installs it"
    );
    let mut command = std::process::Command::new("node");
    command.arg(script).current_dir(&dir);
    for (name, value) in env {
        command.env(name, value);
    }
    let output = command.output().expect("node runs");
    assert!(
        output.status.success(),
        "node {script} failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Runs `tests/js/<script>` against a fresh server on a loopback port
/// (`EXECSTORE_URL`: its /graphql).
async fn node_against_a_server(backend: Backend, script: &'static str) {
    let api = Api::new(backend).await;
    let addr = api.serve().await;
    let url = format!("http://{addr}/graphql");
    tokio::task::spawn_blocking(move || node(script, &[("EXECSTORE_URL", url)]))
        .await
        .unwrap();
}

async fn the_graphql_over_http_audits_pass(backend: Backend) {
    node_against_a_server(backend, "audit.mjs").await;
}

/// urql with its persisted-queries exchange and GET for queries; the
/// graphql-ws client resuming a subscription from its cursor.
async fn urql_and_graphql_ws_clients(backend: Backend) {
    node_against_a_server(backend, "clients.mjs").await;
}

/// Every ```graphql block of the README and docs/ is a valid document
/// against schema.graphql (graphql-js `validate`).
#[test]
fn the_docs_documents_are_valid() {
    node("docs_documents.mjs", &[]);
}

crate::both_backends!(
    media_types_and_status_codes,
    queries_by_get,
    persisted_queries,
    the_allow_list,
    directive_overload_is_refused_before_validation,
    the_graphql_over_http_audits_pass,
    urql_and_graphql_ws_clients,
);
