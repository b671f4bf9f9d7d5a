//! The execution explorer (`GET /explorer`) in headless Chromium: finding a
//! flow's runs, a tree with its waterfall, a failed node's error, a chain
//! of single children opened in one request, live updates, tokens; and not
//! one request leaving 127.0.0.1.

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::Request;
use execstore::auth::{sign, Claims, Role};
use execstore::config::Config;
use serde_json::{json, Value};

use crate::api_support::Api;
use crate::browser::{click, eval, screenshot, tree_row as row, wait_until, Chromium};
use crate::harness::Backend;

const SECRET: &str = "explorer-test-secret";

async fn execution(api: &Api, id: &str, parent: Option<&str>, owner: &str, status: &str) {
    let input = json!({ "id": id, "flowId": "shop", "ownerId": owner, "parentExecutionId": parent, "status": status });
    api.ok(
        "mutation($i: CreateExecutionInput!) { createExecution(input: $i) { id } }",
        json!({ "i": input }),
    )
    .await;
}

/// run-1 (running): a (completed) with a chain a.1 → a.1.1 → a.1.1.1,
/// b (failed: "card declined" at node "charge"), c (running).
/// run-2: bob's.
async fn seed(api: &Api) {
    execution(api, "run-1", None, "alice", "RUNNING").await;
    execution(api, "run-1.a", Some("run-1"), "alice", "COMPLETED").await;
    execution(api, "run-1.b", Some("run-1"), "alice", "RUNNING").await;
    api.ok(
        "mutation { updateExecutionStatus(input: { executionId: \"run-1.b\", status: FAILED, errorMessage: \"card declined\", errorNodeId: \"charge\" }) { id } }",
        json!({}),
    )
    .await;
    execution(api, "run-1.c", Some("run-1"), "alice", "RUNNING").await;
    execution(api, "run-1.a.1", Some("run-1.a"), "alice", "COMPLETED").await;
    execution(api, "run-1.a.1.1", Some("run-1.a.1"), "alice", "COMPLETED").await;
    execution(
        api,
        "run-1.a.1.1.1",
        Some("run-1.a.1.1"),
        "alice",
        "COMPLETED",
    )
    .await;
    execution(api, "run-2", None, "bob", "COMPLETED").await;
}

/// The explorer in a new tab, once its form is there.
async fn open_explorer(
    chromium: &Chromium,
    addr: std::net::SocketAddr,
) -> std::sync::Arc<chromiumoxide::Page> {
    let page = chromium.open(&format!("http://{addr}/explorer")).await;
    wait_until(
        &page,
        "document.getElementById('flow')",
        Duration::from_secs(20),
    )
    .await;
    page
}

async fn find_runs(page: &chromiumoxide::Page, flow: &str) {
    let set = format!(
        "(document.getElementById('flow').value = {}, document.getElementById('find').requestSubmit(), true)",
        json!(flow)
    );
    let _: Value = eval(page, &set).await;
}

async fn explorer_shows_trees_live(backend: Backend) {
    let api = Api::new(backend).await;
    seed(&api).await;
    // `/` leads to the explorer.
    let (status, _) = api
        .raw(Request::get("/").body(Body::empty()).unwrap())
        .await;
    assert_eq!(status, 307);
    let addr = api.serve().await;

    let chromium = Chromium::launch().await;
    let page = open_explorer(&chromium, addr).await;

    // Find the flow's runs: newest first, with levels and nested counts.
    find_runs(&page, "shop").await;
    wait_until(
        &page,
        "document.querySelectorAll('#run-rows tr').length === 2",
        Duration::from_secs(10),
    )
    .await;
    let runs: Vec<Vec<String>> = eval(
        &page,
        "[...document.querySelectorAll('#run-rows tr')].map(tr => [...tr.cells].map(c => c.innerText))",
    )
    .await;
    assert_eq!(runs[0][0], "run-2");
    assert_eq!(runs[1][0], "run-1");
    assert_eq!(
        (runs[1][4].as_str(), runs[1][5].as_str()),
        ("4", "6"),
        "{runs:?}"
    );
    // A status filter, served by the server.
    let _: Value = eval(
        &page,
        "(document.querySelector('#statuses input[value=RUNNING]').checked = true, true)",
    )
    .await;
    find_runs(&page, "shop").await;
    wait_until(
        &page,
        "document.querySelectorAll('#run-rows tr').length === 1 && document.querySelector('#run-rows tr').dataset.id === 'run-1'",
        Duration::from_secs(10),
    )
    .await;

    // Open run-1: the root and its three children, in creation order.
    click(
        &page,
        "document.querySelector('#run-rows tr[data-id=\"run-1\"]')",
    )
    .await;
    wait_until(&page, &row("run-1.c"), Duration::from_secs(10)).await;
    let ids: Vec<String> = eval(
        &page,
        "[...document.querySelectorAll('#tree .row')].sort((a, b) => a.offsetTop - b.offsetTop).map(r => r.dataset.id)",
    )
    .await;
    assert_eq!(ids, ["run-1", "run-1.a", "run-1.b", "run-1.c"]);
    // The waterfall: bars start in the order the children started.
    let starts: Vec<f64> = eval(
        &page,
        "['run-1.a', 'run-1.b', 'run-1.c'].map(id => parseFloat(document.querySelector(`#tree .row[data-id=\"${id}\"] .bar`).style.left))",
    )
    .await;
    assert!(starts.windows(2).all(|w| w[0] <= w[1]), "{starts:?}");
    // The failed node shows its error, in the row and on the bar.
    let error: String = eval(
        &page,
        &format!("{}.querySelector('.error').innerText", row("run-1.b")),
    )
    .await;
    assert!(
        error.contains("card declined") && error.contains("charge"),
        "{error}"
    );
    let tip: String = eval(
        &page,
        &format!("{}.querySelector('.bar').title", row("run-1.b")),
    )
    .await;
    assert_eq!(tip, "card declined (node charge)");

    // run-1.a has one child, which has one child…: one request opens it all.
    let before = chromium.sent("POST /graphql");
    click(
        &page,
        &format!("{}.querySelector('.toggle')", row("run-1.a")),
    )
    .await;
    wait_until(&page, &row("run-1.a.1.1.1"), Duration::from_secs(10)).await;
    assert_eq!(
        chromium.sent("POST /graphql") - before,
        1,
        "the chain in one request"
    );

    // Details of the failed node.
    click(&page, &row("run-1.b")).await;
    wait_until(
        &page,
        "document.querySelector('#details h2') && document.querySelector('#details h2').innerText === 'run-1.b' && document.getElementById('details').innerText.includes('card declined')",
        Duration::from_secs(10),
    )
    .await;
    wait_until(
        &page,
        "!document.getElementById('live').hidden",
        Duration::from_secs(10),
    )
    .await;
    screenshot(&page, &format!("explorer-tree-{backend:?}")).await;

    // Live: a new child appears and a status changes, without a reload.
    let created = Instant::now();
    execution(&api, "run-1.d", Some("run-1"), "alice", "RUNNING").await;
    wait_until(&page, &row("run-1.d"), Duration::from_secs(1)).await;
    let appeared = created.elapsed();
    let changed = Instant::now();
    api.ok(
        "mutation { updateExecutionStatus(input: { executionId: \"run-1.c\", status: COMPLETED }) { id } }",
        json!({}),
    )
    .await;
    wait_until(
        &page,
        &format!(
            "{}.querySelector('.badge').innerText === 'completed'",
            row("run-1.c")
        ),
        Duration::from_secs(1),
    )
    .await;
    eprintln!(
        "explorer live updates: created child shown after {appeared:?}, status change after {:?}",
        changed.elapsed()
    );
    api.ok("mutation { deleteExecution(id: \"run-1.d\") }", json!({}))
        .await;
    wait_until(
        &page,
        &format!("!{}", row("run-1.d")),
        Duration::from_secs(1),
    )
    .await;
    screenshot(&page, &format!("explorer-waterfall-{backend:?}")).await;

    // A child due later, of a higher priority: its row says when and how
    // urgent (it arrives live).
    let due = (execstore::store::now() + chrono::Duration::seconds(40)).to_rfc3339();
    api.ok(
        "mutation($at: DateTime) { createExecution(input: { id: \"run-1.e\", flowId: \"shop\", ownerId: \"alice\", parentExecutionId: \"run-1\", runAt: $at, priority: 10 }) { id } }",
        json!({ "at": due }),
    )
    .await;
    wait_until(&page, &row("run-1.e"), Duration::from_secs(5)).await;
    let shown: String = eval(&page, &format!("{}.innerText", row("run-1.e"))).await;
    assert!(
        shown.contains("p10") && (shown.contains("due in 40 s") || shown.contains("due in 39 s")),
        "{shown}"
    );

    // Keyboard: from the selected row, down moves the selection.
    let _: Value = eval(
        &page,
        "(document.getElementById('tree').focus(), document.getElementById('tree').dispatchEvent(new KeyboardEvent('keydown', { key: 'ArrowDown', bubbles: true })), true)",
    )
    .await;
    wait_until(
        &page,
        &format!("{}.classList.contains('selected')", row("run-1.c")),
        Duration::from_secs(5),
    )
    .await;

    // Every query the page sent was answered without an error: each one is
    // valid against the schema.
    let errors: Vec<String> = eval(&page, "window.explorer.errors").await;
    assert!(errors.is_empty(), "{errors:?}");
    chromium.close_with_nothing_sent_outside().await;
}

/// With a secret, the page asks for a token; a user's token sees only its
/// own runs; a bad token gets a clear message.
async fn explorer_asks_for_a_token(backend: Backend) {
    let mut config = Config::defaults();
    config.jwt_secret = Some(SECRET.into());
    let mut api = Api::with_config(backend, config).await;
    let token = |sub: &str, role: Role| {
        sign(
            SECRET,
            &Claims {
                sub: sub.into(),
                role,
                exp: (chrono::Utc::now().timestamp() + 600) as u64,
            },
        )
    };
    api.token = Some(token("admin", Role::Admin));
    seed(&api).await;
    let addr = api.serve().await;

    let chromium = Chromium::launch().await;
    let page = open_explorer(&chromium, addr).await;
    find_runs(&page, "shop").await;
    wait_until(
        &page,
        "document.getElementById('auth').open",
        Duration::from_secs(10),
    )
    .await;

    let give = |t: String| {
        format!(
            "(document.getElementById('auth-token').value = {}, document.getElementById('auth-form').requestSubmit(), true)",
            json!(t)
        )
    };
    let _: Value = eval(&page, &give("not-a-token".into())).await;
    wait_until(
        &page,
        "document.getElementById('auth').open && document.getElementById('auth-why').innerText.includes('refused')",
        Duration::from_secs(10),
    )
    .await;
    let _: Value = eval(&page, &give(token("alice", Role::User))).await;
    wait_until(
        &page,
        "document.querySelectorAll('#run-rows tr').length === 1",
        Duration::from_secs(10),
    )
    .await;
    let ids: Vec<String> = eval(
        &page,
        "[...document.querySelectorAll('#run-rows tr')].map(tr => tr.dataset.id)",
    )
    .await;
    assert_eq!(ids, ["run-1"], "alice sees only her own run");
    // Bob's run by id: as good as absent.
    let _: Value = eval(
        &page,
        "(document.getElementById('jump-id').value = 'run-2', document.getElementById('jump').requestSubmit(), true)",
    )
    .await;
    wait_until(
        &page,
        "document.getElementById('message').innerText.includes('No execution run-2')",
        Duration::from_secs(10),
    )
    .await;
    let kept: bool = eval(
        &page,
        "localStorage.getItem('execstore.token') === null && sessionStorage.getItem('execstore.token') !== null",
    )
    .await;
    assert!(kept, "the token is kept for the tab only (sessionStorage)");
    chromium.close_with_nothing_sent_outside().await;
}

/// A tree of 11,111 executions (fanout 10, four levels below the root),
/// expanded four levels deep in one request: every row is laid out, only
/// those on screen are in the DOM. Then 1,000 children created at the
/// open root as fast as the store takes them: the page shows them all.
async fn explorer_keeps_up_with_large_trees(backend: Backend) {
    use entity::execution;
    use sea_orm::{ActiveValue::Set, EntityTrait};
    let api = Api::new(backend).await;
    let at = execstore::store::now();
    let mut rows = Vec::new();
    let mut level = vec!["big".to_owned()];
    rows.push(("big".to_owned(), None::<String>, 0));
    for depth in 1..=4 {
        let mut next = Vec::new();
        for parent in &level {
            for i in 0..10 {
                let id = format!("{parent}.{i}");
                rows.push((id.clone(), Some(parent.clone()), depth));
                next.push(id);
            }
        }
        level = next;
    }
    assert_eq!(rows.len(), 11_111);
    for chunk in rows.chunks(500) {
        let models = chunk
            .iter()
            .map(|(id, parent, depth)| execution::ActiveModel {
                id: Set(id.clone()),
                flow_id: Set("big".into()),
                owner_id: Set("o".into()),
                root_execution_id: Set("big".into()),
                parent_execution_id: Set(parent.clone()),
                status: Set(execstore::store::ExecutionStatus::Completed),
                execution_depth: Set(*depth),
                created_at: Set(at),
                updated_at: Set(at),
                started_at: Set(Some(at)),
                completed_at: Set(Some(
                    at + chrono::Duration::milliseconds(5 * i64::from(*depth)),
                )),
                failure_count: Set(0),
                ..Default::default()
            });
        execution::Entity::insert_many(models)
            .exec(&api.t.db)
            .await
            .unwrap();
    }
    let addr = api.serve().await;
    let chromium = Chromium::launch().await;
    let page = chromium
        .open(&format!("http://{addr}/explorer?execution=big"))
        .await;
    wait_until(&page, &row("big.9"), Duration::from_secs(20)).await;
    click(&page, "document.getElementById('expand-all')").await;
    wait_until(
        &page,
        "window.explorer.expandedInMs",
        Duration::from_secs(30),
    )
    .await;
    let expanded_ms: f64 = eval(&page, "window.explorer.expandedInMs").await;
    let answered_ms: f64 = eval(&page, "window.explorer.expandAnsweredInMs").await;
    let laid_out: f64 = eval(
        &page,
        "parseFloat(document.getElementById('tree-spacer').style.height) / 26",
    )
    .await;
    assert_eq!(laid_out, 11_111.0, "every row laid out");
    let in_dom: usize = eval(&page, "document.querySelectorAll('#tree .row').length").await;
    assert!(in_dom < 120, "only the rows on screen are drawn: {in_dom}");
    // The deepest level is there: scroll to the end.
    let _: Value = eval(
        &page,
        "(document.getElementById('tree').scrollTop = 1e9, true)",
    )
    .await;
    wait_until(&page, &row("big.9.9.9.9"), Duration::from_secs(5)).await;
    screenshot(&page, &format!("explorer-large-{backend:?}")).await;
    let _: Value = eval(
        &page,
        "(document.getElementById('tree').scrollTop = 0, true)",
    )
    .await;
    wait_until(&page, &row("big"), Duration::from_secs(5)).await;

    // 1,000 children of the open root, created as fast as the store goes.
    let store = api.store.clone();
    let started = Instant::now();
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                for i in 0..250 {
                    let mut input =
                        crate::fixtures::input(&format!("big.new.{w}.{i}"), Some("big"));
                    input.flow_id = "big".into();
                    store
                        .runs()
                        .create(input, &execstore::store::Scope::All)
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for writer in writers {
        writer.await.unwrap();
    }
    let rate = 1000.0 / started.elapsed().as_secs_f64();
    let written = Instant::now();
    wait_until(
        &page,
        &format!(
            "{}.querySelector('.count').innerText === '(1010)'",
            row("big")
        ),
        Duration::from_secs(1),
    )
    .await;
    eprintln!(
        "explorer ({backend:?}): 11,111 rows expanded and drawn in {expanded_ms:.0} ms \
         (the server's answer took {answered_ms:.0} ms of it); \
         1,000 creates at {rate:.0}/s all shown {:?} after the last",
        written.elapsed()
    );
    chromium.close_with_nothing_sent_outside().await;
}

/// The server goes away while a run is open, changes are made meanwhile,
/// and a new server process on the same database comes back at the same
/// address: the page says it is reconnecting, resumes from its last event,
/// and shows every change made while it was down, none missing, none twice.
async fn explorer_reconnects_and_resumes(backend: Backend) {
    use crate::api_support::Proxy;
    let api = Api::new(backend).await;
    seed(&api).await;
    let first_server = api.serve().await;
    let proxy = Proxy::start("127.0.0.1:0".parse().unwrap(), first_server).await;
    let addr = proxy.addr;
    let chromium = Chromium::launch().await;
    let page = chromium
        .open(&format!("http://{addr}/explorer?execution=run-1"))
        .await;
    let live = "document.getElementById('live')";
    wait_until(
        &page,
        &format!("{} && {live}.innerText === '● live'", row("run-1.c")),
        Duration::from_secs(20),
    )
    .await;

    proxy.stop();
    wait_until(
        &page,
        &format!("!{live}.hidden && {live}.innerText === 'reconnecting…'"),
        Duration::from_secs(10),
    )
    .await;
    for id in ["run-1.x", "run-1.y", "run-1.z"] {
        execution(&api, id, Some("run-1"), "alice", "RUNNING").await;
    }
    api.ok(
        "mutation { updateExecutionStatus(input: { executionId: \"run-1.c\", status: COMPLETED }) { id } }",
        json!({}),
    )
    .await;
    api.ok("mutation { deleteExecution(id: \"run-1.b\") }", json!({}))
        .await;

    // Another server process (its own event reader) on the same database.
    let store = execstore::store::ExecutionStore::new(api.t.db.clone());
    let router = execstore::http::router(store, &Config::defaults()).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let second_server = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.ok() });
    let _back = Proxy::start(addr, second_server).await;

    wait_until(
        &page,
        &format!(
            "{} && {} && {} && !{} && {}.querySelector('.badge').innerText === 'completed' && {live}.innerText === '● live'",
            row("run-1.x"),
            row("run-1.y"),
            row("run-1.z"),
            row("run-1.b"),
            row("run-1.c"),
        ),
        Duration::from_secs(30),
    )
    .await;
    let events: Vec<String> = eval(&page, "window.explorer.events").await;
    let mut cursors: Vec<&str> = events.iter().filter_map(|e| e.rsplit(':').next()).collect();
    cursors.sort();
    cursors.dedup();
    assert_eq!(cursors.len(), events.len(), "no event twice: {events:?}");
    for expected in [
        "CREATED:run-1.x",
        "CREATED:run-1.y",
        "CREATED:run-1.z",
        "UPDATED:run-1.c",
        "DELETED:run-1.b",
    ] {
        let n = events
            .iter()
            .filter(|e| e.starts_with(&format!("{expected}:")))
            .count();
        assert_eq!(n, 1, "{expected} once: {events:?}");
    }
    let rows: Vec<String> = eval(
        &page,
        "[...document.querySelectorAll('#tree .row[data-id]')].map(r => r.dataset.id)",
    )
    .await;
    let mut unique = rows.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), rows.len(), "each row once: {rows:?}");
    screenshot(&page, &format!("explorer-reconnected-{backend:?}")).await;
    chromium.close_with_nothing_sent_outside().await;
}

crate::both_backends!(
    explorer_reconnects_and_resumes,
    explorer_shows_trees_live,
    explorer_asks_for_a_token,
    explorer_keeps_up_with_large_trees
);
