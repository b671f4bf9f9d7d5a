use execstore::auth::{sign, Claims, Role};
use execstore::config::Config;
use serde_json::{json, Value};

use crate::api_support::Api;
use crate::harness::Backend;

const SECRET: &str = "test-secret-0123456789";

fn token(sub: &str, role: Role, ttl_secs: i64) -> String {
    let exp = (chrono::Utc::now().timestamp() + ttl_secs) as u64;
    sign(
        SECRET,
        &Claims {
            sub: sub.into(),
            role,
            exp,
        },
    )
}

async fn secured(backend: Backend) -> Api {
    let mut config = Config::defaults();
    config.jwt_secret = Some(SECRET.into());
    Api::with_config(backend, config).await
}

async fn bad_tokens_are_unauthenticated(backend: Backend) {
    let mut api = secured(backend).await;
    let query = json!({ "query": "{ execution(id: \"x\") { id } }" });
    let forged = sign(
        "another-secret",
        &Claims {
            sub: "alice".into(),
            role: Role::Admin,
            exp: u64::MAX / 2,
        },
    );
    let wrong_role = {
        use jsonwebtoken::{encode, EncodingKey, Header};
        let claims =
            json!({ "sub": "alice", "role": "root", "exp": chrono::Utc::now().timestamp() + 60 });
        encode(
            &Header::default(),
            &claims,
            &EncodingKey::from_secret(SECRET.as_bytes()),
        )
        .unwrap()
    };
    for (label, t) in [
        ("missing", None),
        ("garbage", Some("not.a.jwt".to_owned())),
        ("forged", Some(forged)),
        ("expired", Some(token("alice", Role::Admin, -120))),
        ("unknown role", Some(wrong_role)),
    ] {
        api.token = t;
        api.reset_statements();
        let (status, body) = api.post_json(&query).await;
        assert_eq!(status, 401, "{label}");
        assert_eq!(
            body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED",
            "{label}: {body}"
        );
        assert_eq!(
            api.reset_statements(),
            0,
            "{label}: rejected before the database"
        );
    }
    api.token = Some(token("alice", Role::User, 60));
    let (status, body) = api.post_json(&query).await;
    assert_eq!(status, 200);
    assert_eq!(body["data"]["execution"], Value::Null);
}

async fn users_see_only_their_own(backend: Backend) {
    let mut api = secured(backend).await;
    let alice = token("alice", Role::User, 600);
    let bob = token("bob", Role::User, 600);
    let worker = token("w", Role::Worker, 600);
    let create = "mutation($id: ID!, $owner: ID!, $parent: ID) { createExecution(input: { id: $id, flowId: \"f\", ownerId: $owner, parentExecutionId: $parent }) { id } }";

    api.token = Some(alice.clone());
    api.ok(create, json!({ "id": "a", "owner": "alice" })).await;
    api.ok(
        create,
        json!({ "id": "a1", "owner": "alice", "parent": "a" }),
    )
    .await;
    assert_eq!(
        api.error_code(create, json!({ "id": "x", "owner": "bob" }))
            .await,
        "FORBIDDEN"
    );
    api.token = Some(bob.clone());
    api.ok(create, json!({ "id": "b", "owner": "bob" })).await;
    assert_eq!(
        api.error_code(create, json!({ "id": "b1", "owner": "bob", "parent": "a" }))
            .await,
        "BAD_USER_INPUT",
        "alice's execution does not exist for bob"
    );
    // An admin hangs one of bob's executions under alice's tree.
    api.token = Some(token("root", Role::Admin, 600));
    api.ok(
        create,
        json!({ "id": "a-bob", "owner": "bob", "parent": "a" }),
    )
    .await;
    api.ok("mutation { claimExecution(executionId: \"a1\", workerId: \"w\", timeoutMs: 60000) { acquired } }", json!({})).await;

    api.token = Some(alice.clone());
    let data = api
        .ok(
            "{ mine: execution(id: \"a\") { id childCount children { id parent { id } root { id } claim { workerId } } }
               theirs: execution(id: \"b\") { id }
               roots: rootExecutions(flowId: \"f\") { nodes { execution { id } totalNested } }
               feed: childFeed(rootExecutionId: \"a\") { nodes { id } }
               direct: directChildFeed(parentExecutionId: \"a\") { nodes { id } }
               tree: executionTree(executionId: \"a\") { id }
               foreignTree: executionTree(executionId: \"b\") { id }
               stats: executionStats(rootExecutionId: \"a\") { total }
               claims: activeClaims { executionId }
               recovery: executionsNeedingRecovery { id } }",
            json!({}),
        )
        .await;
    assert_eq!(
        data["mine"]["childCount"], 1,
        "bob's child is not counted for alice"
    );
    assert_eq!(
        data["mine"]["children"],
        json!([{ "id": "a1", "parent": { "id": "a" }, "root": { "id": "a" }, "claim": { "workerId": "w" } }])
    );
    assert_eq!(data["theirs"], Value::Null);
    assert_eq!(
        data["roots"]["nodes"],
        json!([{ "execution": { "id": "a" }, "totalNested": 1 }])
    );
    assert_eq!(data["feed"]["nodes"], json!([{ "id": "a1" }]));
    assert_eq!(data["direct"]["nodes"], json!([{ "id": "a1" }]));
    assert_eq!(data["tree"], json!([{ "id": "a" }, { "id": "a1" }]));
    assert_eq!(data["foreignTree"], json!([]));
    assert_eq!(data["stats"]["total"], 1);
    assert_eq!(data["claims"], json!([{ "executionId": "a1" }]));
    assert_eq!(data["recovery"], json!([{ "id": "a" }]));

    // Writes to another owner's execution: it looks absent.
    assert_eq!(
        api.error_code("mutation { updateExecutionStatus(input: { executionId: \"b\", status: RUNNING }) { id } }", json!({})).await,
        "NOT_FOUND"
    );
    assert_eq!(
        api.ok("mutation { deleteExecution(id: \"b\") }", json!({}))
            .await["deleteExecution"],
        false
    );
    assert_eq!(
        api.error_code("mutation { createExecution(input: { id: \"b\", flowId: \"f\", ownerId: \"alice\" }) { id } }", json!({})).await,
        "CONFLICT"
    );
    // Worker-only mutations.
    for m in [
        "mutation { claimExecution(executionId: \"a\", workerId: \"me\", timeoutMs: 1000) { acquired } }",
        "mutation { claimNextExecutions(workerId: \"me\", timeoutMs: 1000) { id } }",
        "mutation { extendClaim(executionId: \"a1\", workerId: \"w\", timeoutMs: 1000) }",
        "mutation { releaseExecution(executionId: \"a1\", workerId: \"w\") }",
        "mutation { expireOldClaims }",
        "mutation { updateFailureInfo(executionId: \"a\", failureCount: 1, reason: \"x\") }",
        "mutation { recordRecovery(input: { executionId: \"a\", workerId: \"me\", reason: \"x\" }) { id } }",
        "mutation { tryAcquireRecoveryLock(lockId: 1, holderId: \"me\", ttlMs: 1000) }",
        "mutation { releaseRecoveryLock(lockId: 1, holderId: \"me\") }",
    ] {
        assert_eq!(api.error_code(m, json!({})).await, "FORBIDDEN", "{m}");
    }
    let claim = api
        .store
        .get_claim_for_execution("a1", &execstore::store::Scope::All)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        claim.status,
        execstore::store::ClaimStatus::Active,
        "the forbidden release changed nothing"
    );

    // bob sees his child of alice's tree, but not its parent.
    api.token = Some(bob);
    let data = api
        .ok(
            "{ execution(id: \"a-bob\") { id parent { id } } }",
            json!({}),
        )
        .await;
    assert_eq!(data["execution"], json!({ "id": "a-bob", "parent": null }));

    // A worker sees and does everything.
    api.token = Some(worker);
    let data = api
        .ok(
            "{ execution(id: \"a\") { childCount } b: execution(id: \"b\") { id } }",
            json!({}),
        )
        .await;
    assert_eq!(data["execution"]["childCount"], 2);
    assert_eq!(data["b"]["id"], "b");
    api.ok(
        "mutation { releaseExecution(executionId: \"a1\", workerId: \"w\") }",
        json!({}),
    )
    .await;
}

crate::both_backends!(bad_tokens_are_unauthenticated, users_see_only_their_own);
