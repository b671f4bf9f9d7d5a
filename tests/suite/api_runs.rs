//! Finding things in big runs: a run's executions by status
//! (`childFeed(status:)`, `directChildFeed(status:)`), an execution's
//! `ancestors`, and the `flows` list; each paged and owner-scoped.

use execstore::auth::Role;
use serde_json::{json, Value};

use crate::api_access::{secured, token};
use crate::api_support::{create, Api};
use crate::harness::Backend;

const SET_STATUS: &str = "mutation($id: ID!, $status: ExecutionStatus!) { updateExecutionStatus(input: { executionId: $id, status: $status }) { id } }";

fn ids(nodes: &Value) -> Vec<String> {
    nodes
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn a_run_is_searched_by_status(backend: Backend) {
    let api = Api::new(backend).await;
    create(&api, "root", None).await;
    for i in 0..10 {
        create(&api, &format!("c{i}"), Some("root")).await;
    }
    for i in 0..5 {
        create(&api, &format!("g{i}"), Some("c3")).await;
    }
    for (id, status) in [
        ("c2", "FAILED"),
        ("g1", "FAILED"),
        ("g3", "FAILED"),
        ("c5", "RUNNING"),
    ] {
        api.ok(SET_STATUS, json!({ "id": id, "status": status }))
            .await;
    }
    let feed = "query($root: ID!, $status: [ExecutionStatus!], $first: Int, $after: String) {
        childFeed(rootExecutionId: $root, status: $status, first: $first, after: $after) {
            nodes { id status } pageInfo { hasNextPage endCursor } } }";
    let failed = api
        .ok(feed, json!({ "root": "root", "status": ["FAILED"] }))
        .await;
    assert_eq!(ids(&failed["childFeed"]["nodes"]), ["g3", "g1", "c2"]);
    let first = api
        .ok(
            feed,
            json!({ "root": "root", "status": ["FAILED"], "first": 2 }),
        )
        .await;
    assert_eq!(ids(&first["childFeed"]["nodes"]), ["g3", "g1"]);
    assert_eq!(first["childFeed"]["pageInfo"]["hasNextPage"], true);
    let after = first["childFeed"]["pageInfo"]["endCursor"].clone();
    let rest = api
        .ok(
            feed,
            json!({ "root": "root", "status": ["FAILED"], "first": 2, "after": after }),
        )
        .await;
    assert_eq!(ids(&rest["childFeed"]["nodes"]), ["c2"]);
    assert_eq!(rest["childFeed"]["pageInfo"]["hasNextPage"], false);
    let two = api
        .ok(
            feed,
            json!({ "root": "root", "status": ["RUNNING", "FAILED", "RUNNING"] }),
        )
        .await;
    assert_eq!(ids(&two["childFeed"]["nodes"]), ["g3", "g1", "c5", "c2"]);
    let everything = api.ok(feed, json!({ "root": "root" })).await;
    assert_eq!(
        everything["childFeed"]["nodes"].as_array().unwrap().len(),
        15
    );
    assert_eq!(
        api.error_code(feed, json!({ "root": "root", "status": [] }))
            .await,
        "BAD_USER_INPUT"
    );

    let direct = "query($parent: ID!, $status: [ExecutionStatus!]) {
        directChildFeed(parentExecutionId: $parent, status: $status) { nodes { id } } }";
    let of_root = api
        .ok(direct, json!({ "parent": "root", "status": ["FAILED"] }))
        .await;
    assert_eq!(ids(&of_root["directChildFeed"]["nodes"]), ["c2"]);
    let of_c3 = api
        .ok(direct, json!({ "parent": "c3", "status": ["FAILED"] }))
        .await;
    assert_eq!(ids(&of_c3["directChildFeed"]["nodes"]), ["g3", "g1"]);

    let up = api
        .ok(
            "{ g3: execution(id: \"g3\") { ancestors { id executionDepth } }
               c3: execution(id: \"c3\") { ancestors { id } }
               root: execution(id: \"root\") { ancestors { id } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        up["g3"]["ancestors"],
        json!([{ "id": "root", "executionDepth": 0 }, { "id": "c3", "executionDepth": 1 }])
    );
    assert_eq!(ids(&up["c3"]["ancestors"]), ["root"]);
    assert_eq!(up["root"]["ancestors"], json!([]));
}

async fn flows_newest_last_run_first(backend: Backend) {
    let api = Api::new(backend).await;
    let run = "mutation($id: ID!, $flow: ID!, $parent: ID) { createExecution(input: { id: $id, flowId: $flow, ownerId: \"o\", parentExecutionId: $parent }) { id } }";
    for (id, flow, parent) in [
        ("r1", "f-a", None),
        ("r2", "f-b", None),
        ("r3", "f-c", None),
        ("r4", "f-a", None),
        // A child of another flow makes no flow of its own: flows are
        // listed by their runs (roots).
        ("k1", "f-child", Some("r2")),
    ] {
        api.ok(run, json!({ "id": id, "flow": flow, "parent": parent }))
            .await;
    }
    let flows = "query($first: Int, $after: String) { flows(first: $first, after: $after) {
        edges { cursor node { flowId lastRunAt lastRun { id createdAt status } } }
        pageInfo { hasNextPage hasPreviousPage endCursor } } }";
    let page = api.ok(flows, json!({ "first": 2 })).await;
    let edges = page["flows"]["edges"].as_array().unwrap();
    let listed: Vec<(&str, &str)> = edges
        .iter()
        .map(|e| {
            (
                e["node"]["flowId"].as_str().unwrap(),
                e["node"]["lastRun"]["id"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(listed, [("f-a", "r4"), ("f-c", "r3")]);
    assert_eq!(
        edges[0]["node"]["lastRunAt"],
        edges[0]["node"]["lastRun"]["createdAt"]
    );
    assert_eq!(page["flows"]["pageInfo"]["hasNextPage"], true);
    let after = page["flows"]["pageInfo"]["endCursor"].clone();
    let rest = api.ok(flows, json!({ "first": 2, "after": after })).await;
    let rest = &rest["flows"];
    assert_eq!(rest["edges"].as_array().unwrap().len(), 1);
    assert_eq!(rest["edges"][0]["node"]["flowId"], "f-b");
    assert_eq!(rest["pageInfo"]["hasNextPage"], false);
    assert_eq!(rest["pageInfo"]["hasPreviousPage"], true);
    assert_eq!(
        api.error_code(flows, json!({ "first": 2, "after": "not a cursor" }))
            .await,
        "BAD_USER_INPUT"
    );
}

async fn flows_and_ancestors_are_owner_scoped(backend: Backend) {
    let mut api = secured(backend).await;
    let admin = token("root", Role::Admin, 600);
    api.token = Some(admin.clone());
    let run = "mutation($id: ID!, $flow: ID!, $owner: ID!, $parent: ID) { createExecution(input: { id: $id, flowId: $flow, ownerId: $owner, parentExecutionId: $parent }) { id } }";
    for (id, flow, owner, parent) in [
        ("a1", "shared", "alice", None),
        ("a2", "alice-only", "alice", None),
        ("b1", "bob-only", "bob", None),
        ("b2", "shared", "bob", None),
        ("a1-bob", "shared", "bob", Some("a1")),
        ("a1-bob-x", "shared", "bob", Some("a1-bob")),
    ] {
        api.ok(
            run,
            json!({ "id": id, "flow": flow, "owner": owner, "parent": parent }),
        )
        .await;
    }
    let flows = "{ flows { nodes { flowId lastRun { id } } } }";
    let listed = |data: &Value| -> Vec<(String, String)> {
        data["flows"]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| {
                (
                    n["flowId"].as_str().unwrap().to_owned(),
                    n["lastRun"]["id"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    let all = api.ok(flows, json!({})).await;
    let pairs = |v: &[(&str, &str)]| -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    };
    assert_eq!(
        listed(&all),
        pairs(&[("shared", "b2"), ("bob-only", "b1"), ("alice-only", "a2")])
    );
    api.token = Some(token("alice", Role::User, 600));
    let mine = api.ok(flows, json!({})).await;
    assert_eq!(
        listed(&mine),
        pairs(&[("alice-only", "a2"), ("shared", "a1")])
    );
    let up = "{ execution(id: \"a1-bob-x\") { ancestors { id } } }";
    assert_eq!(api.ok(up, json!({})).await["execution"], Value::Null);
    api.token = Some(token("bob", Role::User, 600));
    assert_eq!(
        listed(&api.ok(flows, json!({})).await),
        pairs(&[("shared", "b2"), ("bob-only", "b1")])
    );
    // Bob's execution under alice's run: its ancestors that are bob's only.
    let data = api.ok(up, json!({})).await;
    assert_eq!(ids(&data["execution"]["ancestors"]), ["a1-bob"]);
    api.token = Some(admin);
    let data = api.ok(up, json!({})).await;
    assert_eq!(ids(&data["execution"]["ancestors"]), ["a1", "a1-bob"]);
}

crate::both_backends!(
    a_run_is_searched_by_status,
    flows_newest_last_run_first,
    flows_and_ancestors_are_owner_scoped
);
