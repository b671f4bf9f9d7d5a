use serde_json::{json, Value};

use crate::api_support::{create, Api, CREATE};
use crate::harness::Backend;

const FIELDS: &str = "id flowId ownerId rootExecutionId parentExecutionId status executionDepth createdAt updatedAt startedAt completedAt errorMessage errorNodeId options integration externalEvents failureCount lastFailureReason lastFailureAt processingStartedAt processingWorkerId";

async fn every_field_reachable(backend: Backend) {
    let api = Api::new(backend).await;
    let input = json!({ "id": "root", "flowId": "flow-1", "ownerId": "owner-1", "options": {"retries": 3}, "integration": null, "externalEvents": [1, "two"] });
    let q = format!("mutation($input: CreateExecutionInput!) {{ createExecution(input: $input) {{ {FIELDS} }} }}");
    let root = api.ok(&q, json!({ "input": input })).await["createExecution"].clone();
    assert_eq!(root["status"], "CREATED");
    assert_eq!(root["options"], json!({"retries": 3}));
    assert_eq!(root["externalEvents"], json!([1, "two"]));
    assert_eq!(root["rootExecutionId"], "root");
    assert_eq!(root["executionDepth"], 0);
    assert!(
        root["createdAt"].as_str().unwrap().contains('T'),
        "RFC 3339"
    );
    create(&api, "child", Some("root")).await;
    create(&api, "grandchild", Some("child")).await;

    let data = api
        .ok(
            "query { execution(id: \"grandchild\") { id parent { id } root { id } children { id } childCount claim { status } recoveryHistory { id } }
                     missing: execution(id: \"nope\") { id }
                     executionTree(executionId: \"child\") { id parentId level execution { id } }
                     childFeed(rootExecutionId: \"root\") { edges { cursor node { id } } nodes { id } pageInfo { hasNextPage hasPreviousPage startCursor endCursor } }
                     directChildFeed(parentExecutionId: \"root\", first: 1) { nodes { id } pageInfo { hasNextPage } }
                     rootExecutions(flowId: \"flow-1\") { nodes { execution { id } levels totalNested } }
                     executionStats(rootExecutionId: \"root\") { total created running paused completed failed stopped maxDepth firstCreatedAt lastCompletedAt completedPerMinute }
                     activeClaims { executionId }
                     claim(executionId: \"root\") { status }
                     executionsNeedingRecovery(limit: 10) { id }
                     recoveryHistory(executionId: \"root\") { id } }",
            json!({}),
        )
        .await;
    let e = &data["execution"];
    assert_eq!(e["parent"]["id"], "child");
    assert_eq!(e["root"]["id"], "root");
    assert_eq!(e["children"], json!([]));
    assert_eq!(e["childCount"], 0);
    assert_eq!(e["claim"], Value::Null);
    assert_eq!(data["missing"], Value::Null);
    assert_eq!(
        data["executionTree"],
        json!([
            {"id": "child", "parentId": "root", "level": 0, "execution": {"id": "child"}},
            {"id": "grandchild", "parentId": "child", "level": 1, "execution": {"id": "grandchild"}}
        ])
    );
    assert_eq!(
        data["childFeed"]["nodes"],
        json!([{"id": "grandchild"}, {"id": "child"}])
    );
    assert_eq!(data["childFeed"]["pageInfo"]["hasNextPage"], false);
    assert_eq!(data["childFeed"]["pageInfo"]["hasPreviousPage"], false);
    assert_eq!(
        data["childFeed"]["edges"][1]["cursor"],
        data["childFeed"]["pageInfo"]["endCursor"]
    );
    assert_eq!(data["directChildFeed"]["nodes"], json!([{"id": "child"}]));
    assert_eq!(
        data["rootExecutions"]["nodes"],
        json!([{"execution": {"id": "root"}, "levels": 2, "totalNested": 2}])
    );
    assert_eq!(data["executionStats"]["total"], 2);
    assert_eq!(data["executionStats"]["maxDepth"], 2);
    assert_eq!(data["executionStats"]["completedPerMinute"], Value::Null);
    assert_eq!(
        data["executionsNeedingRecovery"].as_array().unwrap().len(),
        3
    );

    // Mutations, each with the contract's name and shape.
    let data = api
        .ok(
            "mutation {
                status: updateExecutionStatus(input: { executionId: \"child\", status: RUNNING, processingWorkerId: \"w0\" }) { status startedAt processingWorkerId }
                claim: claimExecution(executionId: \"grandchild\", workerId: \"w1\", timeoutMs: 60000) { acquired claim { executionId workerId status claimedAt expiresAt heartbeatAt execution { id } } rejection }
                lost: claimExecution(executionId: \"grandchild\", workerId: \"w2\", timeoutMs: 60000) { acquired claim { status } rejection }
                extend: extendClaim(executionId: \"grandchild\", workerId: \"w1\", timeoutMs: 120000)
                release: releaseExecution(executionId: \"grandchild\", workerId: \"w1\")
                expired: expireOldClaims
                failure: updateFailureInfo(executionId: \"root\", failureCount: 1, reason: \"flaky\")
                recovery: recordRecovery(input: { executionId: \"child\", workerId: \"rw\", reason: \"orphan\", previousStatus: \"running\", previousWorkerId: \"w0\" }) { id executionId recoveredAt recoveredByWorker recoveryReason previousStatus previousWorkerId }
                lock: tryAcquireRecoveryLock(lockId: 7, holderId: \"rw\", ttlMs: 1000)
                unlock: releaseRecoveryLock(lockId: 7, holderId: \"rw\")
                next: claimNextExecutions(workerId: \"w3\", timeoutMs: 1000, limit: 5) { id processingWorkerId }
            }",
            json!({}),
        )
        .await;
    assert_eq!(data["status"]["status"], "RUNNING");
    assert!(data["status"]["startedAt"].is_string());
    assert_eq!(data["claim"]["acquired"], true);
    assert_eq!(data["claim"]["claim"]["status"], "ACTIVE");
    assert_eq!(data["claim"]["claim"]["execution"]["id"], "grandchild");
    assert_eq!(data["claim"]["rejection"], Value::Null);
    assert_eq!(
        data["lost"],
        json!({"acquired": false, "claim": null, "rejection": "HELD_BY_OTHER"})
    );
    assert_eq!(data["extend"], true);
    assert_eq!(data["release"], true);
    assert_eq!(data["expired"], 0);
    assert_eq!(data["failure"], true);
    assert_eq!(data["recovery"]["recoveredByWorker"], "rw");
    assert_eq!(data["lock"], true);
    assert_eq!(data["unlock"], true);
    // Every due CREATED execution without a live claim, oldest first
    // (grandchild was released; root's failure, counted, is a retry that
    // waits for its backoff).
    assert_eq!(
        data["next"],
        json!([{"id": "grandchild", "processingWorkerId": "w3"}])
    );

    let data = api
        .ok("query { execution(id: \"child\") { recoveryHistory { recoveredByWorker } } recoveryHistory(executionId: \"child\") { recoveryReason } claim(executionId: \"grandchild\") { workerId } }", json!({}))
        .await;
    assert_eq!(
        data["execution"]["recoveryHistory"],
        json!([{"recoveredByWorker": "rw"}])
    );
    assert_eq!(
        data["recoveryHistory"],
        json!([{"recoveryReason": "orphan"}])
    );
    assert_eq!(data["claim"]["workerId"], "w3");
    assert_eq!(
        api.ok("mutation { deleteExecution(id: \"child\") }", json!({}))
            .await["deleteExecution"],
        true
    );
    assert_eq!(
        api.ok("mutation { deleteExecution(id: \"child\") }", json!({}))
            .await["deleteExecution"],
        false
    );
}

/// Fanout 5, depth 4: 781 executions.
async fn build_tree(api: &Api) {
    create(api, "n", None).await;
    let mut level = vec!["n".to_owned()];
    for _ in 0..4 {
        let mut next = Vec::new();
        for parent in &level {
            for k in 0..5 {
                let id = format!("{parent}.{k}");
                api.store
                    .runs()
                    .create(
                        crate::fixtures::input(&id, Some(parent)),
                        &execstore::store::Scope::All,
                    )
                    .await
                    .unwrap();
                next.push(id);
            }
        }
        level = next;
    }
}

async fn nested_children_batched_per_level(backend: Backend) {
    let api = Api::new(backend).await;
    build_tree(&api).await;
    api.reset_statements();
    let data = api
        .ok(
            "{ execution(id: \"n\") { id status children { id status childCount children { id createdAt children { id parentExecutionId children { id executionDepth } } } } } }",
            json!({}),
        )
        .await;
    let statements = api.reset_statements();
    let l1 = data["execution"]["children"].as_array().unwrap();
    assert_eq!(l1.len(), 5);
    let ids: Vec<_> = l1.iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(ids, vec!["n.0", "n.1", "n.2", "n.3", "n.4"], "oldest first");
    assert!(l1.iter().all(|c| c["childCount"] == 5));
    let l4: Vec<&Value> = l1
        .iter()
        .flat_map(|c| c["children"].as_array().unwrap())
        .flat_map(|c| c["children"].as_array().unwrap())
        .flat_map(|c| c["children"].as_array().unwrap())
        .collect();
    assert_eq!(l4.len(), 625);
    assert!(l4.iter().all(|c| c["executionDepth"] == 4));
    assert_eq!(l4[0]["id"], "n.0.0.0.0");
    // execution + 4 levels of children + 1 childCount batch.
    assert_eq!(statements, 6, "one statement per level (781 nodes)");
}

async fn feeds_page_through_cursors(backend: Backend) {
    let api = Api::new(backend).await;
    create(&api, "root", None).await;
    let ids: Vec<String> = (0..23).map(|i| format!("c{i:02}")).collect();
    for id in &ids {
        create(&api, id, Some("root")).await;
    }
    // Many share one createdAt: paging must still visit each exactly once.
    crate::fixtures::set_created_at(&api.t.db, &ids[3..15], crate::fixtures::ts(7)).await;
    let q = "query($after: String) { childFeed(rootExecutionId: \"root\", first: 4, after: $after) { edges { cursor node { id } } pageInfo { hasNextPage hasPreviousPage endCursor } } }";
    let mut after = Value::Null;
    let mut seen = Vec::new();
    for page in 0.. {
        let data = api.ok(q, json!({ "after": after })).await;
        let feed = &data["childFeed"];
        assert_eq!(feed["pageInfo"]["hasPreviousPage"], page > 0);
        for edge in feed["edges"].as_array().unwrap() {
            seen.push(edge["node"]["id"].as_str().unwrap().to_owned());
        }
        if feed["pageInfo"]["hasNextPage"] == false {
            break;
        }
        after = feed["pageInfo"]["endCursor"].clone();
    }
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(seen.len(), 23);
    assert_eq!(sorted, ids);

    for (query, vars) in [
        (q, json!({ "after": "not-a-cursor" })),
        ("{ childFeed(rootExecutionId: \"root\", first: 501) { nodes { id } } }", json!({})),
        ("{ directChildFeed(parentExecutionId: \"root\", first: -1) { nodes { id } } }", json!({})),
        ("{ rootExecutions(flowId: \"flow-1\", after: \"Zm9v\") { nodes { levels } } }", json!({})),
        ("mutation { claimExecution(executionId: \"root\", workerId: \"w\", timeoutMs: 0) { acquired } }", json!({})),
        ("mutation { claimNextExecutions(workerId: \"w\", timeoutMs: 10, limit: 101) { id } }", json!({})),
        ("mutation { updateFailureInfo(executionId: \"root\", failureCount: -1, reason: \"x\") }", json!({})),
        ("{ execution(id: \"\") { id } }", json!({})),
        (CREATE, json!({ "input": { "flowId": "f", "ownerId": "o", "parentExecutionId": "ghost" } })),
        ("{ execution(id: 5) { nope } }", json!({})),
        ("{ execution(", json!({})),
    ] {
        assert_eq!(api.error_code(query, vars.clone()).await, "BAD_USER_INPUT", "{query} {vars}");
    }
    let response = api.query(q, json!({ "after": "not-a-cursor" })).await;
    assert_eq!(response["errors"][0]["extensions"]["field"], "after");
    assert_eq!(
        api.error_code("mutation { updateExecutionStatus(input: { executionId: \"ghost\", status: RUNNING }) { id } }", json!({})).await,
        "NOT_FOUND"
    );
    let response = api
        .query(
            CREATE,
            json!({ "input": { "id": "root", "flowId": "f", "ownerId": "someone-else" } }),
        )
        .await;
    assert_eq!(response["errors"][0]["extensions"]["code"], "CONFLICT");
}

async fn batch_requests_and_limits(backend: Backend) {
    let api = Api::new(backend).await;
    create(&api, "a", None).await;
    let (status, body) = api
        .post_json(&json!([{ "query": "{ execution(id: \"a\") { id } }" }, { "query": "{ execution(id: \"b\") { id } }" }]))
        .await;
    assert_eq!(status, 200);
    assert_eq!(body[0]["data"]["execution"]["id"], "a");
    assert_eq!(body[1]["data"]["execution"], Value::Null);

    let too_many: Vec<Value> = (0..17)
        .map(|_| json!({ "query": "{ __typename }" }))
        .collect();
    let (status, body) = api.post_json(&Value::from(too_many)).await;
    assert_eq!(status, 400);
    assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");

    // 200 levels deep is refused before any SQL runs.
    let deep = format!(
        "{{ execution(id: \"a\") {{ {} id {} }} }}",
        "children { ".repeat(200),
        "}".repeat(200)
    );
    api.reset_statements();
    assert_eq!(api.error_code(&deep, json!({})).await, "BAD_USER_INPUT");
    assert_eq!(
        api.reset_statements(),
        0,
        "refused before touching the database"
    );
    // 12 levels (a TraceView tree) passes.
    let ok = format!(
        "{{ execution(id: \"a\") {{ {} id status createdAt {} }} }}",
        "children { ".repeat(11),
        "}".repeat(11)
    );
    api.ok(&ok, json!({})).await;
}

crate::both_backends!(
    every_field_reachable,
    nested_children_batched_per_level,
    feeds_page_through_cursors,
    batch_requests_and_limits,
);

/// GraphiQL's default query (in `assets/graphiql/start.js`) is valid
/// against the schema: a newcomer's first click must not fail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graphiql_default_query_is_valid() {
    let script = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/assets/graphiql/start.js"
    ))
    .expect("start.js");
    let start = script.find("defaultQuery: '").expect("a default query") + "defaultQuery: '".len();
    let end = start + script[start..].find("',").expect("its end");
    let query = script[start..end].replace("\\n", "\n");
    let api = Api::new(Backend::Sqlite).await;
    let data = api.ok(&query, serde_json::json!({})).await;
    assert!(data["rootExecutions"]["edges"].is_array(), "{data}");
}
