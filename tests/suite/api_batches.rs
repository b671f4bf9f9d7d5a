//! The batch mutations through the API: answers in input order, a bad input
//! coded and nothing written, per-item outcomes, and the worker guard.

use execstore::auth::{sign, Claims, Role};
use execstore::config::Config;
use serde_json::json;

use crate::api_support::Api;
use crate::harness::Backend;

const CREATE_MANY: &str = "mutation($inputs: [CreateExecutionInput!]!) { createExecutions(inputs: $inputs) { id executionDepth } }";

async fn batches_through_the_api(backend: Backend) {
    let secret = "batch-secret";
    let mut config = Config::defaults();
    config.jwt_secret = Some(secret.into());
    let mut api = Api::with_config(backend, config).await;
    let token = |sub: &str, role: Role| {
        let exp = (chrono::Utc::now().timestamp() + 600) as u64;
        sign(
            secret,
            &Claims {
                sub: sub.into(),
                role,
                exp,
            },
        )
    };
    api.token = Some(token("alice", Role::User));
    let inputs: Vec<_> = (0..5)
        .map(|i| {
            json!({ "id": format!("n{i}"), "flowId": "f", "ownerId": "alice",
                         "parentExecutionId": if i == 0 { None } else { Some("n0") } })
        })
        .collect();
    let data = api.ok(CREATE_MANY, json!({ "inputs": inputs })).await;
    let ids: Vec<&str> = data["createExecutions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["n0", "n1", "n2", "n3", "n4"]);
    assert_eq!(data["createExecutions"][4]["executionDepth"], 1);
    let bad = json!([{ "id": "m1", "flowId": "f", "ownerId": "alice" },
                     { "id": "m2", "flowId": "f", "ownerId": "alice", "parentExecutionId": "nope" }]);
    let response = api.query(CREATE_MANY, json!({ "inputs": bad })).await;
    assert_eq!(
        response["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
        "{response}"
    );
    assert_eq!(
        api.ok("{ execution(id: \"m1\") { id } }", json!({})).await["execution"],
        serde_json::Value::Null,
        "nothing written"
    );
    // Finishing and heartbeats are for workers.
    for mutation in [
        "mutation { finishExecutions(inputs: [{ executionId: \"n1\", workerId: \"w\", status: COMPLETED }]) { finished } }",
        "mutation { extendClaims(workerId: \"w\", executionIds: [\"n1\"], timeoutMs: 1000) { extended } }",
    ] {
        assert_eq!(api.error_code(mutation, json!({})).await, "FORBIDDEN", "{mutation}");
    }
    api.token = Some(token("w", Role::Worker));
    api.ok("mutation { claimExecution(executionId: \"n1\", workerId: \"w\", timeoutMs: 60000) { acquired } }", json!({})).await;
    let data = api
        .ok(
            "mutation { extendClaims(workerId: \"w\", executionIds: [\"n1\", \"n2\"], timeoutMs: 60000) { executionId extended expiresAt } }",
            json!({}),
        )
        .await;
    assert_eq!(data["extendClaims"][0]["extended"], true);
    assert!(data["extendClaims"][0]["expiresAt"].is_string());
    assert_eq!(data["extendClaims"][1]["extended"], false);
    let data = api
        .ok(
            "mutation { finishExecutions(inputs: [{ executionId: \"n1\", workerId: \"w\", status: COMPLETED }, { executionId: \"n2\", workerId: \"w\", status: COMPLETED }]) { executionId finished code execution { status } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        data["finishExecutions"],
        json!([
            { "executionId": "n1", "finished": true, "code": null, "execution": { "status": "COMPLETED" } },
            { "executionId": "n2", "finished": false, "code": "CONFLICT", "execution": null }
        ])
    );
}

crate::both_backends!(batches_through_the_api);
