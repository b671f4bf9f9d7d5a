//! Tree reads over HTTP: bounded `children` with cursors, the per-request row
//! budget, and response keys in the order the query asked for them.

use axum::body::Body;
use axum::http::Request;
use serde_json::{json, Value};

use crate::api_support::Api;
use crate::fixtures::create;
use crate::harness::Backend;

async fn children_are_bounded_and_continue_by_cursor(backend: Backend) {
    let api = Api::new(backend).await;
    create(&api.store, "p", None).await;
    let ids: Vec<String> = (0..250).map(|i| format!("c{i:03}")).collect();
    for id in &ids {
        create(&api.store, id, Some("p")).await;
    }
    let ids_of = |v: &Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_str().unwrap().to_owned())
            .collect()
    };

    let data = api
        .ok(
            "{ execution(id: \"p\") { childCount children { id cursor } } }",
            json!({}),
        )
        .await;
    let first_page = &data["execution"]["children"];
    assert_eq!(data["execution"]["childCount"], 250);
    assert_eq!(
        ids_of(first_page),
        ids[..100],
        "default bound: 100, oldest first"
    );

    let cursor = first_page[99]["cursor"].clone();
    let data = api
        .ok(
            "query($after: String) { execution(id: \"p\") { children(first: 1000, after: $after) { id } } }",
            json!({ "after": cursor }),
        )
        .await;
    assert_eq!(
        ids_of(&data["execution"]["children"]),
        ids[100..],
        "the rest, after the cursor"
    );

    // Two windows of the same level in one request.
    let data = api
        .ok(
            "{ execution(id: \"p\") { a: children(first: 2) { id } b: children(first: 5) { id } } }",
            json!({}),
        )
        .await;
    assert_eq!(ids_of(&data["execution"]["a"]), ids[..2]);
    assert_eq!(ids_of(&data["execution"]["b"]), ids[..5]);

    for bad in ["first: 1001", "first: -1", "after: \"not-a-cursor\""] {
        let code = api
            .error_code(
                &format!("{{ execution(id: \"p\") {{ children({bad}) {{ id }} }} }}"),
                json!({}),
            )
            .await;
        assert_eq!(code, "BAD_USER_INPUT", "{bad}");
    }
}

/// Root r, 5 children, 25 grandchildren: 31 executions.
async fn small_tree(api: &Api) {
    create(&api.store, "r", None).await;
    for i in 0..5 {
        let child = format!("r.{i}");
        create(&api.store, &child, Some("r")).await;
        for j in 0..5 {
            create(&api.store, &format!("r.{i}.{j}"), Some(&child)).await;
        }
    }
}

async fn api_with_budget(backend: Backend, max_nodes: i64) -> Api {
    let mut config = execstore::config::Config::defaults();
    config.max_nodes = max_nodes;
    Api::with_config(backend, config).await
}

fn codes(response: &Value) -> Vec<String> {
    response["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .map(|e| e["extensions"]["code"].as_str().unwrap_or("").to_owned())
                .collect()
        })
        .unwrap_or_default()
}

async fn row_budget_refuses_what_would_exceed_it(backend: Backend) {
    let api = api_with_budget(backend, 40).await;
    small_tree(&api).await;

    let one = api
        .ok("{ executionTree(executionId: \"r\") { id } }", json!({}))
        .await;
    assert_eq!(one["executionTree"].as_array().unwrap().len(), 31);

    // Two aliases: 62 rows > 40, so the second load is refused.
    let two = api
        .query(
            "{ a: executionTree(executionId: \"r\") { id } b: executionTree(executionId: \"r\") { id } }",
            json!({}),
        )
        .await;
    assert_eq!(codes(&two), vec!["BUDGET_EXCEEDED"], "{two}");

    // Nested levels count together: 1 + 5 + 25 = 31 fits, twice does not.
    let nested = "{ execution(id: \"r\") { children { children { id } } } }";
    api.ok(nested, json!({})).await;
    let twice = api
        .query(
            "{ a: execution(id: \"r\") { children { children { id } } } b: execution(id: \"r\") { children { children { id } } } }",
            json!({}),
        )
        .await;
    // Every field of the refused level reports it.
    let refused = codes(&twice);
    assert!(
        !refused.is_empty() && refused.iter().all(|c| c == "BUDGET_EXCEEDED"),
        "{twice}"
    );

    // A budget below one tree refuses that tree alone.
    let small = api_with_budget(backend, 30).await;
    small_tree(&small).await;
    let code = small
        .error_code("{ executionTree(executionId: \"r\") { id } }", json!({}))
        .await;
    assert_eq!(code, "BUDGET_EXCEEDED");
}

/// The response's keys in the order they appear in the raw JSON text.
async fn raw_response(api: &Api, query: &str) -> String {
    let request = Request::post("/graphql")
        .header("content-type", "application/json")
        .body(Body::from(json!({ "query": query }).to_string()))
        .unwrap();
    api.raw(request).await.1
}

fn assert_in_order(text: &str, keys: &[&str]) {
    let positions: Vec<usize> = keys
        .iter()
        .map(|k| {
            text.find(&format!("\"{k}\":"))
                .unwrap_or_else(|| panic!("{k} missing in {text}"))
        })
        .collect();
    assert!(
        positions.windows(2).all(|w| w[0] < w[1]),
        "keys {keys:?} out of order in {text}"
    );
}

async fn response_keys_in_request_order(backend: Backend) {
    let api = Api::new(backend).await;
    small_tree(&api).await;
    api.store
        .queue()
        .claim_execution("r.0", "w", 60_000)
        .await
        .unwrap();
    let query = "{ zRoot: execution(id: \"r\") { zStatus: status yKids: children(first: 1) { \
                 zCount: childCount yClaim: claim { status } xId: id wParent: parent { id } } \
                 xId: id } \
                 yStats: executionStats(rootExecutionId: \"r\") { total } \
                 xTree: executionTree(executionId: \"r.0\") { id } \
                 wAgain: execution(id: \"r\") { id } }";
    // Completion order varies run to run; the answer's order must not.
    for _ in 0..20 {
        let text = raw_response(&api, query).await;
        assert_in_order(&text, &["zRoot", "yStats", "xTree", "wAgain"]);
        assert_in_order(&text, &["zStatus", "yKids", "xId"]);
        assert_in_order(&text, &["zCount", "yClaim", "xId", "wParent"]);
    }
}

/// A small deterministic generator (no dependency, same cases every run).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// What a random selection draws from: every scalar of the field table,
/// and what the fast path answers besides them.
fn fields() -> Vec<&'static str> {
    let mut fields = execstore::graphql::types::SCALAR_FIELDS.to_vec();
    fields.extend(["childCount", "__typename"]);
    fields
}

/// A random selection of `Execution`: scalars (some aliased, some inside
/// inline or named fragments) and nested `children` windows.
fn selection(rng: &mut Lcg, depth: usize, fragments: &mut Vec<String>) -> String {
    let mut parts = Vec::new();
    let mut used = std::collections::HashSet::new();
    let fields = fields();
    for _ in 0..1 + rng.below(6) {
        let field = fields[rng.below(fields.len())];
        let key = if rng.below(4) == 0 {
            format!("k{}", rng.below(1000))
        } else {
            field.to_owned()
        };
        if !used.insert(key.clone()) {
            continue;
        }
        let text = if key == field {
            field.to_owned()
        } else {
            format!("{key}: {field}")
        };
        parts.push(match rng.below(6) {
            0 => format!("... on Execution {{ {text} }}"),
            1 => {
                let name = format!("F{}", fragments.len());
                fragments.push(format!("fragment {name} on Execution {{ {text} }}"));
                format!("...{name}")
            }
            _ => text,
        });
    }
    if depth > 0 && rng.below(3) > 0 {
        let key = format!("kids{}", rng.below(100));
        if used.insert(key.clone()) {
            let args = match rng.below(4) {
                0 => String::new(),
                1 => "(first: 1)".to_owned(),
                2 => "(first: 3)".to_owned(),
                _ => "(first: 0)".to_owned(),
            };
            parts.push(format!(
                "{key}: children{args} {{ {} }}",
                selection(rng, depth - 1, fragments)
            ));
        }
    }
    parts.join(" ")
}

/// The fast path answers exactly what the generic resolvers answer.
async fn fast_path_answers_as_the_generic_path(backend: Backend) {
    let api = Api::new(backend).await;
    small_tree(&api).await;
    let mut with_json = crate::fixtures::input("r.0.0.x", Some("r.0.0"));
    with_json.options = Some(json!({ "retries": 3, "nested": { "a": [1, 2.5, null, "s"] } }));
    api.store
        .runs()
        .create(with_json, &execstore::store::Scope::All)
        .await
        .unwrap();
    let mut failed =
        execstore::store::StatusUpdate::new("r.1", execstore::store::ExecutionStatus::Failed);
    failed.error_message = Some("boom \"quoted\" ünïcode".into());
    failed.error_node_id = Some("node-7".into());
    api.store
        .runs()
        .update_execution_status(failed, &execstore::store::Scope::All)
        .await
        .unwrap();
    api.store
        .queue()
        .claim_execution("r.2", "w", 60_000)
        .await
        .unwrap();

    let mut generic_config = execstore::config::Config::defaults();
    generic_config.tree_fast_path = false;
    let generic = execstore::http::router(api.store.clone(), &generic_config).expect("router");
    let ask_with = |router: axum::Router, query: String, variables: Value| async move {
        let request = Request::post("/graphql")
            .header("content-type", "application/json")
            .body(Body::from(
                json!({ "query": query, "variables": variables }).to_string(),
            ))
            .unwrap();
        let response = tower::ServiceExt::oneshot(router, request).await.unwrap();
        let bytes = http_body_util::BodyExt::collect(response.into_body())
            .await
            .unwrap()
            .to_bytes();
        String::from_utf8(bytes.to_vec()).unwrap()
    };
    let ask = |router: axum::Router, query: String| ask_with(router, query, json!({}));
    let mut rng = Lcg(0x5eed);
    let mut asked = std::collections::HashSet::new();
    let written_before = execstore::graphql::fast_tree::answers_written();
    for case in 0..60 {
        let mut fragments = Vec::new();
        let query = if case % 3 == 0 {
            let inner = selection(&mut rng, 2, &mut fragments);
            format!("{{ executionTree(executionId: \"r\") {{ id parentId level __typename execution {{ {inner} }} }} }}")
        } else {
            let id = ["r", "r.0", "r.0.0"][rng.below(3)];
            format!(
                "{{ execution(id: \"{id}\") {{ {} }} }}",
                selection(&mut rng, 3, &mut fragments)
            )
        };
        let query = format!("{query} {}", fragments.join(" "));
        asked.extend(fields().into_iter().filter(|f| query.contains(f)));
        let fast = ask(api.router.clone(), query.clone()).await;
        let slow = ask(generic.clone(), query.clone()).await;
        let parsed: Value = serde_json::from_str(&slow).unwrap();
        assert!(parsed.get("errors").is_none(), "{query}: {slow}");
        // Byte for byte: the same values, and the keys in the same order.
        assert_eq!(fast, slow, "case {case}: {query}");
    }
    // Cases the random ones do not build: two `execution` selections of one
    // tree node (each reading columns of its own), `after` from a cursor,
    // arguments from variables.
    let first_child = ask(
        generic.clone(),
        "{ execution(id: \"r\") { children(first: 1) { cursor } } }".into(),
    )
    .await;
    let first_child: Value = serde_json::from_str(&first_child).unwrap();
    let cursor = first_child["data"]["execution"]["children"][0]["cursor"].clone();
    let fixed = [
        (
            "{ executionTree(executionId: \"r\") { id a: execution { id failureCount } b: execution { status flowId createdAt options } } }".to_owned(),
            json!({}),
        ),
        (
            format!("{{ execution(id: \"r\") {{ children(first: 2, after: {cursor}) {{ id cursor }} }} }}"),
            json!({}),
        ),
        (
            "query($f: Int, $a: String) { execution(id: \"r\") { children(first: $f, after: $a) { id kids: children(first: $f) { id status } } } }".to_owned(),
            json!({ "f": 2, "a": cursor }),
        ),
    ];
    for (query, variables) in fixed {
        let fast = ask_with(api.router.clone(), query.clone(), variables.clone()).await;
        let slow = ask_with(generic.clone(), query.clone(), variables).await;
        let parsed: Value = serde_json::from_str(&slow).unwrap();
        assert!(parsed.get("errors").is_none(), "{query}: {slow}");
        assert_eq!(fast, slow, "{query}");
    }
    // The fast path answered (every case is one it takes), and the cases
    // covered every field of the table.
    assert!(execstore::graphql::fast_tree::answers_written() >= written_before + 63);
    let missing: Vec<_> = fields()
        .into_iter()
        .filter(|f| !asked.contains(f))
        .collect();
    assert!(missing.is_empty(), "never selected: {missing:?}");
}

crate::both_backends!(
    fast_path_answers_as_the_generic_path,
    children_are_bounded_and_continue_by_cursor,
    row_budget_refuses_what_would_exceed_it,
    response_keys_in_request_order,
);
