use std::collections::HashSet;

use axum::body::Body;
use axum::http::Request;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tower::ServiceExt;

use crate::api_support::{create, Api};
use crate::harness::Backend;

#[test]
fn schema_file_matches_the_code() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql");
    let committed = std::fs::read_to_string(path).expect("schema.graphql at the repository root");
    let produced = execstore::graphql::sdl();
    assert!(
        committed == produced,
        "schema.graphql is stale: run `cargo run -- schema > schema.graphql`"
    );
}

async fn health_ready_graphiql_and_sdl(backend: Backend) {
    let api = Api::new(backend).await;
    let get = |uri: &str| Request::get(uri).body(Body::empty()).unwrap();
    let (status, body) = api.raw(get("/healthz")).await;
    assert_eq!((status.as_u16(), body.as_str()), (200, "ok"));
    let (status, _) = api.raw(get("/readyz")).await;
    assert_eq!(status, 200);
    let page = Request::get("/graphql")
        .header("accept", "text/html,application/xhtml+xml,*/*;q=0.8")
        .body(Body::empty())
        .unwrap();
    let (status, body) = api.raw(page).await;
    assert_eq!(status, 200);
    assert!(
        body.contains("/assets/graphiql/graphiql.min.js"),
        "GraphiQL page"
    );
    assert!(
        !body.contains("://"),
        "the page names no other host: {body}"
    );
    // Its assets, embedded: plain, and gzipped (tower-http's compression,
    // which honours q-values) for clients that take it.
    let asset = api
        .router
        .clone()
        .oneshot(
            Request::get("/assets/graphiql/graphiql.min.js")
                .header("accept-encoding", "gzip, br")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(asset.status(), 200);
    assert_eq!(asset.headers()["content-encoding"], "gzip");
    assert!(asset.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/javascript"));
    assert!(asset.headers().contains_key("content-security-policy"));
    // A client that refuses gzip (q=0) gets the bytes as they are.
    let refused = api
        .router
        .clone()
        .oneshot(
            Request::get("/assets/graphiql/graphiql.min.js")
                .header("accept-encoding", "gzip;q=0, identity")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(refused.status(), 200);
    assert!(!refused.headers().contains_key("content-encoding"));
    let (status, body) = api.raw(get("/assets/graphiql/graphiql.min.css")).await;
    assert_eq!(status, 200);
    assert!(body.len() > 100_000, "the whole stylesheet, uncompressed");
    let (status, _) = api.raw(get("/assets/graphiql/../../Cargo.toml")).await;
    assert_eq!(status, 404);
    let (status, body) = api.raw(get("/schema.graphql")).await;
    assert_eq!(status, 200);
    assert!(body.contains(
        "claimExecution(executionId: ID!, workerId: String!, timeoutMs: Int!): ClaimOutcome!"
    ));

    // The database goes away: readiness says so, liveness does not.
    api.t.db.clone().close().await.unwrap();
    let (status, _) = api.raw(get("/readyz")).await;
    assert_eq!(status, 503);
    let (status, _) = api.raw(get("/healthz")).await;
    assert_eq!(status, 200);
    let response = api
        .query("{ execution(id: \"x\") { id } }", json!({}))
        .await;
    let code = response["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap();
    assert!(code == "UNAVAILABLE" || code == "INTERNAL", "{response}");
    let message = response["errors"][0]["message"].as_str().unwrap();
    assert!(
        !message.to_lowercase().contains("select"),
        "no SQL leaks: {message}"
    );
}

/// 24 workers race over real HTTP for each of 5 executions: one winner each.
async fn concurrent_claimers_over_http(backend: Backend) {
    let api = Api::new(backend).await;
    let addr = api.serve().await;
    let client = reqwest::Client::new();
    for round in 0..5 {
        let id = format!("job-{round}");
        create(&api, &id, None).await;
        let tasks: Vec<_> = (0..24)
            .map(|w| {
                let (client, id) = (client.clone(), id.clone());
                tokio::spawn(async move {
                    let body = json!({
                        "query": "mutation($id: ID!, $w: String!) { claimExecution(executionId: $id, workerId: $w, timeoutMs: 30000) { acquired rejection } }",
                        "variables": { "id": id, "w": format!("w{w}") }
                    });
                    let response: Value = client
                        .post(format!("http://{addr}/graphql"))
                        .json(&body)
                        .send()
                        .await
                        .unwrap()
                        .json()
                        .await
                        .unwrap();
                    response["data"]["claimExecution"].clone()
                })
            })
            .collect();
        let mut winners = 0;
        for task in tasks {
            let outcome = task.await.unwrap();
            if outcome["acquired"] == true {
                winners += 1;
            } else {
                assert_eq!(outcome["rejection"], "HELD_BY_OTHER", "{outcome}");
            }
        }
        assert_eq!(winners, 1, "round {round}");
    }
}

/// A subscriber over graphql-transport-ws sees creates, updates, claims and
/// deletes of its root's tree, and nothing of other trees.
async fn subscription_streams_tree_events(backend: Backend) {
    let api = Api::new(backend).await;
    create(&api, "root", None).await;
    create(&api, "elsewhere", None).await;
    let addr = api.serve().await;
    let mut ws = subscribe(
        &api,
        addr,
        json!({}),
        "subscription { executionEvents(rootExecutionId: \"root\") { kind executionId execution { status } } }",
    )
    .await;
    // Each change is made once the previous one's event arrived: an event
    // carries the execution as it is when delivered, so this pins each one.
    let mut got = Vec::new();
    let mut expect_next = async |ws: &mut Ws| {
        let message = next_json(ws).await;
        assert_eq!(message["type"], "next", "{message}");
        let event = &message["payload"]["data"]["executionEvents"];
        got.push((
            event["kind"].as_str().unwrap().to_owned(),
            event["executionId"].as_str().unwrap().to_owned(),
            event["execution"]["status"].clone(),
        ));
    };
    create(&api, "other-child", Some("elsewhere")).await;
    create(&api, "kid", Some("root")).await;
    expect_next(&mut ws).await;
    api.ok("mutation { claimExecution(executionId: \"kid\", workerId: \"w\", timeoutMs: 1000) { acquired } }", json!({})).await;
    expect_next(&mut ws).await;
    api.ok("mutation { updateExecutionStatus(input: {executionId: \"kid\", status: COMPLETED}) { id } }", json!({})).await;
    expect_next(&mut ws).await;
    api.ok("mutation { deleteExecution(id: \"kid\") }", json!({}))
        .await;
    expect_next(&mut ws).await;
    assert_eq!(
        got,
        vec![
            ("CREATED".into(), "kid".into(), json!("CREATED")),
            ("UPDATED".into(), "kid".into(), json!("CREATED")),
            ("UPDATED".into(), "kid".into(), json!("COMPLETED")),
            ("DELETED".into(), "kid".into(), Value::Null),
        ]
    );
    let ids: HashSet<_> = got.iter().map(|g| g.1.clone()).collect();
    assert!(!ids.contains("other-child"));
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn ws_connect(addr: std::net::SocketAddr) -> Ws {
    let mut request = format!("ws://{addr}/graphql/ws")
        .into_client_request()
        .unwrap();
    request.headers_mut().insert(
        "sec-websocket-protocol",
        "graphql-transport-ws".parse().unwrap(),
    );
    tokio_tungstenite::connect_async(request)
        .await
        .expect("websocket")
        .0
}

/// Connects with `init_payload`, subscribes, and returns once the server has
/// registered the subscriber (a bounded wait), so later writes are seen.
pub(crate) async fn subscribe(
    api: &Api,
    addr: std::net::SocketAddr,
    init_payload: Value,
    query: &str,
) -> Ws {
    let mut ws = ws_connect(addr).await;
    let init = json!({"type": "connection_init", "payload": init_payload});
    ws.send(Message::text(init.to_string())).await.unwrap();
    assert_eq!(next_json(&mut ws).await["type"], "connection_ack");
    let subscribe = json!({"id": "1", "type": "subscribe", "payload": {"query": query}});
    ws.send(Message::text(subscribe.to_string())).await.unwrap();
    for _ in 0..400 {
        if api.store.events().has_subscribers() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    assert!(
        api.store.events().has_subscribers(),
        "subscription registered"
    );
    ws
}

pub(crate) async fn next_json<S>(ws: &mut S) -> Value
where
    S: futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    loop {
        let message = tokio::time::timeout(std::time::Duration::from_secs(10), ws.next())
            .await
            .expect("a websocket message within 10 s")
            .expect("stream open")
            .expect("message");
        if let Message::Text(text) = message {
            let value: Value = serde_json::from_str(&text).unwrap();
            if value["type"] != "ping" {
                return value;
            }
        }
    }
}

crate::both_backends!(
    health_ready_graphiql_and_sdl,
    concurrent_claimers_over_http,
    subscription_streams_tree_events,
    subscription_resumes_from_a_cursor,
    user_subscription_sees_only_own_events,
);

/// Over graphql-transport-ws: `after` resumes right after an event's
/// cursor (what was missed, then live); a cursor taken from `eventCursor`
/// before writes replays them; a pruned cursor ends the stream with
/// EVENTS_EXPIRED; a malformed one is BAD_USER_INPUT.
async fn subscription_resumes_from_a_cursor(backend: Backend) {
    let api = Api::new(backend).await;
    create(&api, "root", None).await;
    let start = api.ok("{ eventCursor }", json!({})).await["eventCursor"]
        .as_str()
        .unwrap()
        .to_owned();
    create(&api, "kid1", Some("root")).await;
    create(&api, "kid2", Some("root")).await;
    let addr = api.serve().await;
    let query = |after: &str| {
        format!("subscription {{ executionEvents(rootExecutionId: \"root\", after: \"{after}\") {{ kind executionId cursor execution {{ id }} }} }}")
    };
    let event = |message: &Value| {
        assert_eq!(message["type"], "next", "{message}");
        message["payload"]["data"]["executionEvents"].clone()
    };
    // With `after` nothing is missed whenever the server registers the
    // subscriber (what came before is replayed): no need to wait for it.
    let open = async |query: String| {
        let mut ws = ws_connect(addr).await;
        let init = json!({"type": "connection_init", "payload": {}});
        ws.send(Message::text(init.to_string())).await.unwrap();
        assert_eq!(next_json(&mut ws).await["type"], "connection_ack");
        let subscribe = json!({"id": "1", "type": "subscribe", "payload": {"query": query}});
        ws.send(Message::text(subscribe.to_string())).await.unwrap();
        ws
    };
    let mut ws = open(query(&start)).await;
    // The cursor is "the log's position now": on PostgreSQL an event
    // committed just before it (root's, while another test's transaction
    // was running on the shared cluster) may still lie after it and come
    // again, as docs/api.md says. Nothing after it is missed.
    let mut first = event(&next_json(&mut ws).await);
    if first["executionId"] == "root" {
        first = event(&next_json(&mut ws).await);
    }
    assert_eq!(
        (first["kind"].as_str(), first["executionId"].as_str()),
        (Some("CREATED"), Some("kid1"))
    );
    assert_eq!(first["execution"]["id"], "kid1");
    let second = event(&next_json(&mut ws).await);
    assert_eq!(second["executionId"], "kid2");
    drop(ws);

    // Resume after kid1: kid2 again (it is after that cursor), then live.
    let cursor = first["cursor"].as_str().unwrap();
    let mut ws = open(query(cursor)).await;
    assert_eq!(event(&next_json(&mut ws).await)["executionId"], "kid2");
    create(&api, "kid3", Some("root")).await;
    let third = event(&next_json(&mut ws).await);
    assert_eq!(third["executionId"], "kid3");
    assert_ne!(third["cursor"], second["cursor"]);
    drop(ws);

    // Everything so far pruned: the old cursor is refused, coded.
    let pruned = api
        .store
        .events()
        .prune_log(i64::MAX, execstore::store::PRUNE_BATCH)
        .await
        .unwrap();
    assert!(pruned >= 3, "{pruned}");
    let mut ws = open(query(&start)).await;
    let message = next_json(&mut ws).await;
    assert_eq!(
        message["payload"]["errors"][0]["extensions"]["code"], "EVENTS_EXPIRED",
        "{message}"
    );
    assert_eq!(next_json(&mut ws).await["type"], "complete");

    let mut ws = open(query("not-a-cursor")).await;
    let message = next_json(&mut ws).await;
    let errors = if message["payload"].is_array() {
        message["payload"].clone()
    } else {
        message["payload"]["errors"].clone()
    };
    assert_eq!(
        errors[0]["extensions"]["code"], "BAD_USER_INPUT",
        "{message}"
    );
}

/// A `user` subscriber authenticates in connection_init and sees only its own
/// executions' events, deletions included, even inside its own tree.
async fn user_subscription_sees_only_own_events(backend: Backend) {
    use execstore::auth::{sign, Claims, Role};
    let secret = "sub-secret";
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
    let mut config = execstore::config::Config::defaults();
    config.jwt_secret = Some(secret.into());
    let mut api = Api::with_config(backend, config).await;
    api.token = Some(token("root", Role::Admin));
    let create = "mutation($id: ID!, $owner: ID!, $parent: ID) { createExecution(input: { id: $id, flowId: \"f\", ownerId: $owner, parentExecutionId: $parent }) { id } }";
    api.ok(create, json!({ "id": "tree", "owner": "alice" }))
        .await;
    let addr = api.serve().await;

    let alice = json!({ "Authorization": format!("Bearer {}", token("alice", Role::User)) });
    let mut ws = subscribe(
        &api,
        addr,
        alice,
        "subscription { executionEvents(rootExecutionId: \"tree\") { kind executionId } }",
    )
    .await;
    api.ok(
        create,
        json!({ "id": "bobs", "owner": "bob", "parent": "tree" }),
    )
    .await;
    api.ok("mutation { deleteExecution(id: \"bobs\") }", json!({}))
        .await;
    api.ok(
        create,
        json!({ "id": "alices", "owner": "alice", "parent": "tree" }),
    )
    .await;
    let message = next_json(&mut ws).await;
    assert_eq!(
        message["payload"]["data"]["executionEvents"],
        json!({ "kind": "CREATED", "executionId": "alices" }),
        "bob's create and delete are not shown to alice: {message}"
    );

    // Without a token the connection is refused.
    let mut anonymous = ws_connect(addr).await;
    anonymous
        .send(Message::text(
            json!({"type": "connection_init", "payload": {}}).to_string(),
        ))
        .await
        .unwrap();
    let closed = tokio::time::timeout(std::time::Duration::from_secs(10), anonymous.next())
        .await
        .expect("an answer within 10 s");
    match closed {
        Some(Ok(Message::Close(_))) | None | Some(Err(_)) => {}
        other => panic!("expected the connection to be closed, got {other:?}"),
    }
}
