//! Runs under control over GraphQL: `cancelExecution`, `pauseExecution`,
//! `resumeExecution`, `retryExecutions`, what a worker holding a cancelled
//! or paused execution is told, and who may control which runs.

use execstore::auth::Role;
use serde_json::json;

use crate::api_access::{secured, token};
use crate::api_support::{create, Api, CREATE};
use crate::harness::Backend;

const CANCEL: &str =
    "mutation($id: ID!, $reason: String) { cancelExecution(id: $id, reason: $reason) }";
const PAUSE: &str = "mutation($id: ID!) { pauseExecution(id: $id) }";
const RESUME: &str = "mutation($id: ID!) { resumeExecution(id: $id) }";
const RETRY: &str = "mutation($root: ID!) { retryExecutions(rootExecutionId: $root) }";
const GET: &str = "query($id: ID!) { execution(id: $id) { status paused completedAt errorMessage failureCount } }";
const CLAIM: &str = "mutation($id: ID!, $worker: String!) { claimExecution(executionId: $id, workerId: $worker, timeoutMs: 60000) { acquired rejection } }";
const SET_STATUS: &str = "mutation($id: ID!, $status: ExecutionStatus!) { updateExecutionStatus(input: { executionId: $id, status: $status }) { id } }";

/// A worker holding an execution that is cancelled: its heartbeats are
/// refused (`extendClaims` says `CANCELLED`) and its finish is `CONFLICT`.
async fn a_cancelled_holder_is_told(backend: Backend) {
    let api = Api::new(backend).await;
    create(&api, "run", None).await;
    create(&api, "run.a", Some("run")).await;
    create(&api, "run.a.x", Some("run.a")).await;
    create(&api, "run.b", Some("run")).await;
    let claim = api.ok(CLAIM, json!({ "id": "run.a", "worker": "w" })).await;
    assert_eq!(claim["claimExecution"]["acquired"], true);

    let n = api
        .ok(
            CANCEL,
            json!({ "id": "run.a", "reason": "no longer needed" }),
        )
        .await;
    assert_eq!(n["cancelExecution"], 2, "run.a and run.a.x");
    let a = api.ok(GET, json!({ "id": "run.a" })).await["execution"].clone();
    assert_eq!(a["status"], "STOPPED");
    assert_eq!(a["errorMessage"], "no longer needed");
    assert!(a["completedAt"].is_string());
    let b = api.ok(GET, json!({ "id": "run.b" })).await["execution"].clone();
    assert_eq!(b["status"], "CREATED", "a sibling is not below it");

    let beat = api
        .ok(
            "mutation { extendClaims(workerId: \"w\", executionIds: [\"run.a\"], timeoutMs: 60000) { executionId extended expiresAt code } }",
            json!({}),
        )
        .await;
    assert_eq!(
        beat["extendClaims"],
        json!([{ "executionId": "run.a", "extended": false, "expiresAt": null, "code": "CANCELLED" }])
    );
    let one = api
        .ok(
            "mutation { extendClaim(executionId: \"run.a\", workerId: \"w\", timeoutMs: 60000) }",
            json!({}),
        )
        .await;
    assert_eq!(one["extendClaim"], false);
    let finish = "mutation { finishExecution(input: { executionId: \"run.a\", workerId: \"w\", status: COMPLETED }) { id } }";
    assert_eq!(api.error_code(finish, json!({})).await, "CONFLICT");
    let again = api
        .ok(CLAIM, json!({ "id": "run.a.x", "worker": "v" }))
        .await;
    assert_eq!(
        again["claimExecution"],
        json!({ "acquired": false, "rejection": "TERMINAL" })
    );
    // Unknown ids are NOT_FOUND, not "0 changed".
    assert_eq!(
        api.error_code(CANCEL, json!({ "id": "nobody" })).await,
        "NOT_FOUND"
    );
}

/// Pause, then resume, over GraphQL: `paused` follows the mark, a PAUSED
/// execution is refused by id (`PAUSED`), a child created under a paused
/// execution is created PAUSED.
async fn pause_and_resume_over_graphql(backend: Backend) {
    let api = Api::new(backend).await;
    create(&api, "run", None).await;
    create(&api, "run.a", Some("run")).await;
    assert_eq!(
        api.ok(PAUSE, json!({ "id": "run" })).await["pauseExecution"],
        2
    );
    let a = api.ok(GET, json!({ "id": "run.a" })).await["execution"].clone();
    assert_eq!(
        (&a["status"], &a["paused"]),
        (&json!("PAUSED"), &json!(true))
    );
    let claim = api.ok(CLAIM, json!({ "id": "run.a", "worker": "w" })).await;
    assert_eq!(
        claim["claimExecution"],
        json!({ "acquired": false, "rejection": "PAUSED" })
    );
    let child = create(&api, "run.a.x", Some("run.a")).await;
    assert_eq!(child["status"], "PAUSED");
    let pull =
        "mutation { claimNextExecutions(workerId: \"w\", timeoutMs: 60000, limit: 10) { id } }";
    assert_eq!(
        api.ok(pull, json!({})).await["claimNextExecutions"],
        json!([])
    );
    assert_eq!(
        api.ok(RESUME, json!({ "id": "run" })).await["resumeExecution"],
        3
    );
    let a = api.ok(GET, json!({ "id": "run.a" })).await["execution"].clone();
    assert_eq!(
        (&a["status"], &a["paused"]),
        (&json!("CREATED"), &json!(false))
    );
    assert_eq!(
        api.ok(pull, json!({})).await["claimNextExecutions"],
        json!([{ "id": "run" }, { "id": "run.a" }, { "id": "run.a.x" }])
    );
}

/// `retryExecutions` puts back FAILED ones by default, other finished
/// statuses when named; unfinished statuses are `BAD_USER_INPUT`.
async fn retry_over_graphql(backend: Backend) {
    let api = Api::new(backend).await;
    create(&api, "run", None).await;
    for (id, status) in [
        ("run.f", "FAILED"),
        ("run.s", "STOPPED"),
        ("run", "COMPLETED"),
    ] {
        if id != "run" {
            create(&api, id, Some("run")).await;
        }
        api.ok(SET_STATUS, json!({ "id": id, "status": status }))
            .await;
    }
    assert_eq!(
        api.ok(RETRY, json!({ "root": "run" })).await["retryExecutions"],
        1
    );
    let f = api.ok(GET, json!({ "id": "run.f" })).await["execution"].clone();
    assert_eq!(
        (&f["status"], &f["completedAt"]),
        (&json!("CREATED"), &json!(null))
    );
    let both =
        "mutation { retryExecutions(rootExecutionId: \"run\", status: [STOPPED, COMPLETED]) }";
    assert_eq!(api.ok(both, json!({})).await["retryExecutions"], 2);
    let bad = "mutation { retryExecutions(rootExecutionId: \"run\", status: [RUNNING]) }";
    assert_eq!(api.error_code(bad, json!({})).await, "BAD_USER_INPUT");
}

/// A user controls its own runs only (another's is NOT_FOUND, unchanged);
/// workers and admins control every run.
async fn control_follows_the_role(backend: Backend) {
    let mut api = secured(backend).await;
    for owner in ["alice", "bob"] {
        api.token = Some(token(owner, Role::User, 600));
        for id in ["r1", "r2", "r3"] {
            let input = json!({ "id": format!("{owner}-{id}"), "flowId": "f", "ownerId": owner });
            api.ok(CREATE, json!({ "input": input })).await;
        }
    }
    api.token = Some(token("alice", Role::User, 600));
    for (op, vars) in [
        (CANCEL, json!({ "id": "bob-r1" })),
        (PAUSE, json!({ "id": "bob-r1" })),
        (RESUME, json!({ "id": "bob-r1" })),
        (RETRY, json!({ "root": "bob-r1" })),
    ] {
        assert_eq!(api.error_code(op, vars).await, "NOT_FOUND", "{op}");
    }
    assert_eq!(
        api.ok(CANCEL, json!({ "id": "alice-r1" })).await["cancelExecution"],
        1
    );
    api.token = Some(token("bob", Role::User, 600));
    let bob_r1 = api.ok(GET, json!({ "id": "bob-r1" })).await["execution"].clone();
    assert_eq!(
        (&bob_r1["status"], &bob_r1["paused"]),
        (&json!("CREATED"), &json!(false))
    );
    for role in [Role::Worker, Role::Admin] {
        api.token = Some(token("ops", role, 600));
        let id = match role {
            Role::Worker => "bob-r2",
            _ => "bob-r3",
        };
        assert_eq!(
            api.ok(PAUSE, json!({ "id": id })).await["pauseExecution"],
            1
        );
        assert_eq!(
            api.ok(CANCEL, json!({ "id": id })).await["cancelExecution"],
            1
        );
        assert_eq!(
            api.ok(
                "mutation($root: ID!) { retryExecutions(rootExecutionId: $root, status: [STOPPED]) }",
                json!({ "root": id })
            )
            .await["retryExecutions"],
            1
        );
    }
}

const SET_LIMIT: &str = "mutation($key: String!, $limit: Int) { setConcurrencyLimit(key: $key, limit: $limit) { key limit running } }";
const LIMITS: &str = "{ concurrencyLimits { key limit running } }";
const CREATE_KEYED: &str = "mutation($input: CreateExecutionInput!) { createExecution(input: $input) { id concurrencyKey } }";

/// Concurrency limits over GraphQL: a run's `maxConcurrency` and a key's
/// limit keep the rest waiting (a claim by id says `CONCURRENCY_LIMIT`);
/// `concurrencyKey` is read back; setting a key's limit is for admins only,
/// reading them for workers and admins; bad limits are `BAD_USER_INPUT`.
async fn concurrency_limits_over_graphql(backend: Backend) {
    let mut api = secured(backend).await;
    api.token = Some(token("alice", Role::User, 600));
    let root = json!({ "id": "run", "flowId": "f", "ownerId": "alice",
                       "options": { "execution": { "maxConcurrency": 1 } } });
    api.ok(CREATE, json!({ "input": root })).await;
    for i in 0..2 {
        let child = json!({ "id": format!("run.{i}"), "flowId": "f", "ownerId": "alice",
                            "parentExecutionId": "run", "concurrencyKey": "api" });
        let made = api.ok(CREATE_KEYED, json!({ "input": child })).await;
        assert_eq!(made["createExecution"]["concurrencyKey"], "api");
    }
    let bad = json!({ "id": "bad", "flowId": "f", "ownerId": "alice",
                      "options": { "execution": { "maxConcurrency": "two" } } });
    assert_eq!(
        api.error_code(CREATE, json!({ "input": bad })).await,
        "BAD_USER_INPUT"
    );
    for role in [Role::User, Role::Worker] {
        api.token = Some(token("ops", role, 600));
        let vars = json!({ "key": "api", "limit": 1 });
        assert_eq!(
            api.error_code(SET_LIMIT, vars).await,
            "FORBIDDEN",
            "{role:?}"
        );
    }
    api.token = Some(token("alice", Role::User, 600));
    assert_eq!(api.error_code(LIMITS, json!({})).await, "FORBIDDEN");

    api.token = Some(token("ops", Role::Worker, 600));
    let first = api.ok(CLAIM, json!({ "id": "run.0", "worker": "w" })).await;
    assert_eq!(first["claimExecution"]["acquired"], true);
    let second = api.ok(CLAIM, json!({ "id": "run.1", "worker": "w" })).await;
    assert_eq!(
        second["claimExecution"],
        json!({ "acquired": false, "rejection": "CONCURRENCY_LIMIT" })
    );
    assert_eq!(
        api.ok(LIMITS, json!({})).await["concurrencyLimits"],
        json!([])
    );

    api.token = Some(token("ops", Role::Admin, 600));
    let set = api.ok(SET_LIMIT, json!({ "key": "api", "limit": 3 })).await;
    assert_eq!(
        set["setConcurrencyLimit"],
        json!({ "key": "api", "limit": 3, "running": 1 })
    );
    assert_eq!(
        api.ok(LIMITS, json!({})).await["concurrencyLimits"],
        json!([{ "key": "api", "limit": 3, "running": 1 }])
    );
    for limit in [0, -1, 1_000_001] {
        let vars = json!({ "key": "api", "limit": limit });
        assert_eq!(
            api.error_code(SET_LIMIT, vars).await,
            "BAD_USER_INPUT",
            "{limit}"
        );
    }
    let removed = api
        .ok(SET_LIMIT, json!({ "key": "api", "limit": null }))
        .await;
    assert_eq!(removed["setConcurrencyLimit"], json!(null));
}

crate::both_backends!(
    concurrency_limits_over_graphql,
    a_cancelled_holder_is_told,
    pause_and_resume_over_graphql,
    retry_over_graphql,
    control_follows_the_role,
);
