use axum::body::Body;
use axum::http::Request;
use execstore::config::Config;
use serde_json::json;

use crate::api_support::{create, Api};
use crate::harness::Backend;

async fn body_limit_is_413(backend: Backend) {
    let api = Api::new(backend).await;
    let big = format!(
        "{{\"query\": \"{{ __typename }}\", \"variables\": {{ \"pad\": \"{}\" }} }}",
        "x".repeat(1 << 20)
    );
    let request = Request::post("/graphql")
        .header("content-type", "application/json")
        .body(Body::from(big))
        .unwrap();
    let (status, _) = api.raw(request).await;
    assert_eq!(status, 413);
    // Just under the limit is fine.
    let ok = format!(
        "{{\"query\": \"{{ __typename }}\", \"variables\": {{ \"pad\": \"{}\" }} }}",
        "x".repeat(1000)
    );
    let request = Request::post("/graphql")
        .header("content-type", "application/json")
        .body(Body::from(ok))
        .unwrap();
    assert_eq!(api.raw(request).await.0, 200);
}

async fn request_timeout_is_408(backend: Backend) {
    let mut config = Config::defaults();
    config.request_timeout_ms = 1;
    let api = Api::with_config(backend, config).await;
    // A tree of 3,000 with every field and four relations (the generic
    // resolvers): many milliseconds however fast the read path gets (300
    // roots came within a timer tick of 1 ms once rows were decoded by
    // position).
    let inputs = std::iter::once(crate::fixtures::input("n", None))
        .chain((0..2999).map(|i| crate::fixtures::input(&format!("n.{i}"), Some("n"))))
        .collect();
    api.store
        .runs()
        .create_many(inputs, &execstore::store::Scope::All)
        .await
        .unwrap();
    let query = "{ executionTree(executionId: \"n\") { id level execution { id flowId ownerId status createdAt updatedAt options children { id } childCount claim { status } recoveryHistory { id } } } }";
    let request = Request::post("/graphql")
        .header("content-type", "application/json")
        .body(Body::from(json!({ "query": query }).to_string()))
        .unwrap();
    let (status, body) = api.raw(request).await;
    assert_eq!(status, 408, "{body:.300}");
}

async fn introspection_and_graphiql_can_be_disabled(backend: Backend) {
    let mut config = Config::defaults();
    config.introspection = false;
    config.graphiql = false;
    let api = Api::with_config(backend, config).await;
    create(&api, "a", None).await;
    let response = api
        .query(
            "{ __schema { types { name } } __type(name: \"Execution\") { name } }",
            json!({}),
        )
        .await;
    assert_eq!(
        response["data"],
        json!({ "__schema": null, "__type": null }),
        "{response}"
    );
    let (status, _) = api
        .raw(
            Request::get("/graphql")
                .header("accept", "text/html")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(
        status, 406,
        "no page to give a browser asking for HTML only"
    );
    let (status, _) = api
        .raw(Request::get("/explorer").body(Body::empty()).unwrap())
        .await;
    assert_eq!(status, 404, "the explorer is off with GraphiQL");
    api.ok("{ execution(id: \"a\") { id } }", json!({})).await;
}

async fn malformed_bodies_are_bad_user_input(backend: Backend) {
    let api = Api::new(backend).await;
    for body in [
        "",
        "{",
        "[]",
        "{\"query\": 5}",
        "null",
        "\u{0}\u{1}",
        "{\"query\": \"{ x }\", \"variables\": []}",
    ] {
        let request = Request::post("/graphql")
            .header("content-type", "application/json")
            .body(Body::from(body))
            .unwrap();
        let (status, text) = api.raw(request).await;
        assert!(
            status.is_client_error() || status == 200,
            "{body:?}: {status}"
        );
        let value: serde_json::Value =
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("JSON for {body:?}: {text}"));
        assert_eq!(
            value["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
            "{body:?}: {text}"
        );
    }
}

/// PostgreSQL stores no U+0000 in text or jsonb; SQLite would. Both refuse
/// it alike, before anything runs: in a literal, a variable, a JSON
/// argument's key, a read's id, a batch's last input.
async fn strings_holding_nul_are_refused(backend: Backend) {
    let api = Api::new(backend).await;
    create(&api, "root", None).await;
    let create_doc =
        "mutation($input: CreateExecutionInput!) { createExecution(input: $input) { id } }";
    let input = |id: &str| json!({ "id": id, "flowId": "flow-1", "ownerId": "owner-1" });
    let mut with_nul_flow = input("n1");
    with_nul_flow["flowId"] = json!("flow\u{0}");
    let mut with_nul_key = input("n2");
    with_nul_key["options"] = json!({ "a\u{0}b": 1 });
    let mut with_nul_value = input("n3");
    with_nul_value["externalEvents"] = json!([{ "payload": "x\u{0}" }]);
    let cases = [
        (
            r#"mutation { createExecution(input: { id: "n0", flowId: "f", ownerId: "o", concurrencyKey: "k\u0000" }) { id } }"#,
            json!({}),
        ),
        (create_doc, json!({ "input": with_nul_flow.clone() })),
        (create_doc, json!({ "input": with_nul_key })),
        (create_doc, json!({ "input": with_nul_value })),
        (
            "mutation($inputs: [CreateExecutionInput!]!) { createExecutions(inputs: $inputs) { id } }",
            json!({ "inputs": [input("n4"), input("n5"), with_nul_flow] }),
        ),
        (r#"{ execution(id: "root\u0000") { id } }"#, json!({})),
        (
            "query($id: ID! = \"r\\u0000\") { execution(id: $id) { id } }",
            json!({}),
        ),
        (
            r#"{ execution(id: "root") { id @include(if: true) children(after: "\u0000") { id } } }"#,
            json!({}),
        ),
    ];
    for (document, variables) in cases {
        let response = api.query(document, variables).await;
        assert_eq!(
            response["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
            "{document}: {response}"
        );
        assert!(response["data"].is_null(), "nothing ran: {response}");
        let message = response["errors"][0]["message"].as_str().unwrap();
        assert!(message.contains("U+0000"), "{message}");
    }
    // Nothing of the refused creates was written, the batch's first two
    // included.
    for id in ["n0", "n1", "n2", "n3", "n4", "n5"] {
        let data = api
            .ok(
                "query($id: ID!) { execution(id: $id) { id } }",
                json!({ "id": id }),
            )
            .await;
        assert!(data["execution"].is_null(), "{id} was written");
    }
    // A string that merely mentions the escape is fine.
    api.ok(r#"{ execution(id: "root\\u0000") { id } }"#, json!({}))
        .await;
}

#[test]
fn open_mode_binds_only_loopback() {
    let mut config = Config::defaults();
    assert!(config.check_bind().is_ok(), "loopback default");
    config.bind = "0.0.0.0:8080".parse().unwrap();
    let err = config.check_bind().unwrap_err();
    assert!(err.contains("--insecure-open"), "{err}");
    config.insecure_open = true;
    assert!(config.check_bind().is_ok());
    config.insecure_open = false;
    config.jwt_secret = Some("s".into());
    assert!(config.check_bind().is_ok());
    config.bind = "[::1]:9000".parse().unwrap();
    config.jwt_secret = None;
    assert!(config.check_bind().is_ok());
}

#[tokio::test]
async fn postgres_statement_timeout_applies() {
    use sea_orm::ConnectionTrait;
    let options = execstore::store::DbOptions {
        statement_timeout: std::time::Duration::from_millis(200),
        ..Default::default()
    };
    let t = crate::harness::fresh_with(Backend::Postgres, &options).await;
    let err =
        t.db.execute_unprepared("SELECT pg_sleep(3)")
            .await
            .unwrap_err();
    assert!(err.to_string().contains("statement timeout"), "{err}");
}

crate::both_backends!(
    body_limit_is_413,
    request_timeout_is_408,
    introspection_and_graphiql_can_be_disabled,
    malformed_bodies_are_bad_user_input,
    strings_holding_nul_are_refused,
);

/// The longest claimNextExecutions wait must fit in the request timeout:
/// a configuration where it cannot stops the start with the reason.
#[test]
fn a_request_timeout_shorter_than_the_longest_wait_is_refused() {
    let config = execstore::config::Config::defaults();
    assert!(config.check().is_ok());
    let mut short = config.clone();
    short.request_timeout_ms = 8_000;
    let err = short.check().expect_err("8 s cannot hold a 25 s wait");
    assert!(err.contains("EXECSTORE_MAX_WAIT"), "{err}");
    short.max_wait = std::time::Duration::from_secs(5);
    assert!(short.check().is_ok());
}

/// A SQLite URL without `?mode=rwc` on a missing file says how to fix it.
#[tokio::test]
async fn a_missing_sqlite_file_names_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("absent.db").display());
    let err = execstore::store::connect(&url, &execstore::store::DbOptions::default())
        .await
        .expect_err("no such file")
        .to_string();
    let hint = execstore::config::database_open_hint(&url, &err).expect("a hint");
    assert!(hint.contains("?mode=rwc"), "{hint}");
    assert!(execstore::config::database_open_hint(&format!("{url}?mode=rwc"), &err).is_none());
}
